"""The replay window keeps a durable horizon per sender instead of every nonce.

Revision ID: 0010_replay_horizon
Revises: 0009_operation_deadline
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_replay_horizon"
down_revision: str | None = "0009_operation_deadline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replay_horizon",
        sa.Column("sender", sa.String(length=66), primary_key=True),
        sa.Column("horizon_ms", sa.BigInteger(), nullable=False),
        sa.Column("boot_id", sa.String(length=16), nullable=False),
    )
    # No replay slips through the upgrade: each sender's floor is its last nonce's expiry (its timestamp plus the
    # window, which the migration does not know), at or above every timestamp accepted from it. A node upgraded
    # within a window of its last message refuses that sender until the floor passes (FP2010, "send it again").
    op.execute(
        "INSERT INTO replay_horizon (sender, horizon_ms, boot_id) "
        "SELECT sender, MAX(expires_ms), 'migrated' FROM seen_nonce GROUP BY sender"
    )
    op.drop_index("ix_seen_nonce_expires_ms", table_name="seen_nonce")
    op.drop_table("seen_nonce")


def downgrade() -> None:
    op.create_table(
        "seen_nonce",
        sa.Column("sender", sa.String(length=66), primary_key=True),
        sa.Column("nonce", sa.String(length=64), primary_key=True),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_seen_nonce_expires_ms", "seen_nonce", ["expires_ms"])
    op.drop_table("replay_horizon")
