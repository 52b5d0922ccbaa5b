"""Every table of the node, grouped by the part that owns it. Schema changes go through a migration in
``migrations/versions``; ``tests/test_store.py`` fails when these models and the migrations disagree."""

from __future__ import annotations

from sqlalchemy import BigInteger, UniqueConstraint
from sqlmodel import Field, SQLModel

metadata = SQLModel.metadata


# -- privacy: the built-in SQL ACL backend -------------------------------------------------------------------------
class AclRuleRow(SQLModel, table=True):
    """Grants ``subject`` the ``action`` on resources matching ``resource``.

    ``subject`` is ``org:<orgId>``, ``group:<name>`` or ``*`` (every member); ``resource`` is a resource id or a
    pattern with ``*`` wildcards (``orgA:101:*``).
    """

    __tablename__ = "acl_rule"
    __table_args__ = (UniqueConstraint("subject", "action", "resource", name="uq_acl_rule"),)

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=200, index=True)
    action: str = Field(max_length=40)
    resource: str = Field(max_length=300, index=True)
    created_ms: int = Field(sa_type=BigInteger)


class AclGroupMemberRow(SQLModel, table=True):
    """Membership of an organization in a named group that ACL rules can name."""

    __tablename__ = "acl_group_member"

    group_name: str = Field(primary_key=True, max_length=100)
    org_id: str = Field(primary_key=True, max_length=200)
