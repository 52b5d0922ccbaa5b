"""Idempotent requests; pub/sub topics, outbox, subscribers, subscriptions and inbox.

Revision ID: 0003_messaging
Revises: 0002_identity
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_messaging"
down_revision: str | None = "0002_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotent_request",
        sa.Column("sender", sa.String(length=66), primary_key=True),
        sa.Column("key", sa.String(length=128), primary_key=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("boot_id", sa.String(length=32), nullable=False),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_idempotent_request_created_ms", "idempotent_request", ["created_ms"])
    op.create_table(
        "topic",
        sa.Column("topic", sa.String(length=300), primary_key=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "topic_message",
        sa.Column("topic", sa.String(length=300), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "subscriber",
        sa.Column("topic", sa.String(length=300), primary_key=True),
        sa.Column("org_id", sa.String(length=100), primary_key=True),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("acked_seq", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "subscription",
        sa.Column("publisher_org", sa.String(length=100), primary_key=True),
        sa.Column("topic", sa.String(length=300), primary_key=True),
        sa.Column("publisher_address", sa.String(length=300), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "inbox_message",
        sa.Column("publisher_org", sa.String(length=100), primary_key=True),
        sa.Column("topic", sa.String(length=300), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for table in ("inbox_message", "subscription", "subscriber", "topic_message", "topic"):
        op.drop_table(table)
    op.drop_index("ix_idempotent_request_created_ms", table_name="idempotent_request")
    op.drop_table("idempotent_request")
