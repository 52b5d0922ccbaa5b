"""Managed assets, operations executed as primary node, operations requested by this organization.

Revision ID: 0007_assets
Revises: 0006_api
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_assets"
down_revision: str | None = "0006_api"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "managed_asset",
        sa.Column("asset_id", sa.String(length=300), primary_key=True),
        sa.Column("ledger_id", sa.String(length=200), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "primary_operation",
        sa.Column("operation_id", sa.String(length=300), primary_key=True),
        sa.Column("operation", sa.String(length=20), primary_key=True),
        sa.Column("requester", sa.String(length=100), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("transaction_id", sa.String(length=200), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_primary_operation_requester", "primary_operation", ["requester"])
    op.create_index("ix_primary_operation_state", "primary_operation", ["state"])
    op.create_table(
        "requested_operation",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False, unique=True),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("bundle", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_requested_operation_state", "requested_operation", ["state"])


def downgrade() -> None:
    op.drop_index("ix_requested_operation_state", table_name="requested_operation")
    op.drop_table("requested_operation")
    op.drop_index("ix_primary_operation_state", table_name="primary_operation")
    op.drop_index("ix_primary_operation_requester", table_name="primary_operation")
    op.drop_table("primary_operation")
    op.drop_table("managed_asset")
