"""Requested operations end: each has a deadline, and a pending one says what it waits for.

Revision ID: 0009_operation_deadline
Revises: 0008_adapter
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_operation_deadline"
down_revision: str | None = "0008_adapter"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("requested_operation", sa.Column("deadline_ms", sa.BigInteger(), nullable=True))
    op.add_column("requested_operation", sa.Column("waiting", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requested_operation") as batch:
        batch.drop_column("waiting")
        batch.drop_column("deadline_ms")
