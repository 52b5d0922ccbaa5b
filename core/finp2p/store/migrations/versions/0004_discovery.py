"""Registrar adverts and their index; the node's own advert and shared resources.

Revision ID: 0004_discovery
Revises: 0003_messaging
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_discovery"
down_revision: str | None = "0003_messaging"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "advert",
        sa.Column("org_id", sa.String(length=100), primary_key=True),
        sa.Column("fin_id", sa.String(length=66), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("home", sa.Boolean(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
    )
    op.create_index("ix_advert_expires_ms", "advert", ["expires_ms"])
    op.create_index("ix_advert_received_ms", "advert", ["received_ms"])
    op.create_table(
        "advert_index",
        sa.Column("kind", sa.String(length=16), primary_key=True),
        sa.Column("value", sa.String(length=300), primary_key=True),
        sa.Column("org_id", sa.String(length=100), primary_key=True),
    )
    op.create_table(
        "own_advert",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
    )
    op.create_table(
        "shared_resource",
        sa.Column("resource_id", sa.String(length=300), primary_key=True),
        sa.Column("topic", sa.String(length=300), nullable=True),
        sa.Column("visible_to", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for table in ("shared_resource", "own_advert", "advert_index"):
        op.drop_table(table)
    op.drop_index("ix_advert_received_ms", table_name="advert")
    op.drop_index("ix_advert_expires_ms", table_name="advert")
    op.drop_table("advert")
