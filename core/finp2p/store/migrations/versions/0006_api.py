"""API tokens of the REST API.

Revision ID: 0006_api
Revises: 0005_privacy
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_api"
down_revision: str | None = "0005_privacy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("token_hash", sa.String(length=64), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_api_token_name", "api_token", ["name"])


def downgrade() -> None:
    op.drop_index("ix_api_token_name", table_name="api_token")
    op.drop_table("api_token")
