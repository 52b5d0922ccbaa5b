"""The ledger-adapter API: its operations, owner mappings and execution plans.

Revision ID: 0008_adapter
Revises: 0007_assets
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_adapter"
down_revision: str | None = "0007_assets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "adapter_operation",
        sa.Column("cid", sa.String(length=64), primary_key=True),
        sa.Column("idempotency_key", sa.String(length=300), nullable=False, unique=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("operation", sa.String(length=20), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("operation_id", sa.String(length=300), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("transaction_id", sa.String(length=200), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("callback", sa.String(length=16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_adapter_operation_state", "adapter_operation", ["state"])
    op.create_index("ix_adapter_operation_transaction_id", "adapter_operation", ["transaction_id"])
    op.create_index("ix_adapter_operation_callback", "adapter_operation", ["callback"])
    op.create_table(
        "adapter_owner",
        sa.Column("fin_id", sa.String(length=66), primary_key=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("accounts", sa.Text(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "adapter_plan",
        sa.Column("plan_id", sa.String(length=300), primary_key=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("proposals", sa.Text(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("adapter_plan")
    op.drop_table("adapter_owner")
    op.drop_index("ix_adapter_operation_callback", table_name="adapter_operation")
    op.drop_index("ix_adapter_operation_transaction_id", table_name="adapter_operation")
    op.drop_index("ix_adapter_operation_state", table_name="adapter_operation")
    op.drop_table("adapter_operation")
