"""Replay window, revocation lists, registrations.

Revision ID: 0002_identity
Revises: 0001_acl
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_identity"
down_revision: str | None = "0001_acl"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seen_nonce",
        sa.Column("sender", sa.String(length=66), primary_key=True),
        sa.Column("nonce", sa.String(length=64), primary_key=True),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_seen_nonce_expires_ms", "seen_nonce", ["expires_ms"])
    op.create_table(
        "revocation_list",
        sa.Column("issuer", sa.String(length=66), primary_key=True),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
    )
    op.create_table(
        "registration",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("org_id", sa.String(length=100), nullable=False),
        sa.Column("fin_id", sa.String(length=66), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("credential", sa.Text(), nullable=True),
        sa.Column("cert_chain", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("decided_ms", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_registration_org_id", "registration", ["org_id"])
    op.create_index("ix_registration_fin_id", "registration", ["fin_id"])
    op.create_index("ix_registration_status", "registration", ["status"])


def downgrade() -> None:
    op.drop_table("registration")
    op.drop_table("revocation_list")
    op.drop_index("ix_seen_nonce_expires_ms", table_name="seen_nonce")
    op.drop_table("seen_nonce")
