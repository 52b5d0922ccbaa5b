"""ACL rules and groups of the built-in SQL ACL backend.

Revision ID: 0001_acl
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_acl"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "acl_rule",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("resource", sa.String(length=300), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("subject", "action", "resource", name="uq_acl_rule"),
    )
    op.create_index("ix_acl_rule_subject", "acl_rule", ["subject"])
    op.create_index("ix_acl_rule_resource", "acl_rule", ["resource"])
    op.create_table(
        "acl_group_member",
        sa.Column("group_name", sa.String(length=100), primary_key=True),
        sa.Column("org_id", sa.String(length=200), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("acl_group_member")
    op.drop_index("ix_acl_rule_resource", table_name="acl_rule")
    op.drop_index("ix_acl_rule_subject", table_name="acl_rule")
    op.drop_table("acl_rule")
