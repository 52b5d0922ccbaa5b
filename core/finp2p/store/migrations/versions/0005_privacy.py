"""The private store and access notices.

Revision ID: 0005_privacy
Revises: 0004_discovery
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_privacy"
down_revision: str | None = "0004_discovery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "private_record",
        sa.Column("resource_id", sa.String(length=300), primary_key=True),
        sa.Column("owner_org", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("replica", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_private_record_owner_org", "private_record", ["owner_org"])
    op.create_table(
        "access_notice",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_org", sa.String(length=100), nullable=False),
        sa.Column("resource", sa.String(length=300), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=True),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_access_notice_owner_org", "access_notice", ["owner_org"])


def downgrade() -> None:
    op.drop_index("ix_access_notice_owner_org", table_name="access_notice")
    op.drop_table("access_notice")
    op.drop_index("ix_private_record_owner_org", table_name="private_record")
    op.drop_table("private_record")
