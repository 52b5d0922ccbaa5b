"""The registrar answers discovery from its adverts held in memory: the advert_index table goes.

Revision ID: 0011_advert_index_in_memory
Revises: 0010_replay_horizon
Create Date: 2026-12-03
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_advert_index_in_memory"
down_revision: str | None = "0010_replay_horizon"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("advert_index")


def downgrade() -> None:
    index = op.create_table(
        "advert_index",
        sa.Column("kind", sa.String(length=16), primary_key=True),
        sa.Column("value", sa.String(length=300), primary_key=True),
        sa.Column("org_id", sa.String(length=100), primary_key=True),
    )
    # Rebuilt from the adverts themselves, as the code of revision 0010 wrote it.
    rows: set[tuple[str, str, str]] = set()
    for org_id, document in op.get_bind().execute(sa.text("SELECT org_id, document FROM advert")):
        d = json.loads(document)
        rows |= {("capability", p, org_id) for p in d.get("capabilities", {})}
        rows |= {("ledger", v, org_id) for v in d.get("ledgers", [])}
        rows |= {("group", v, org_id) for v in d.get("groups", [])}
        rows |= {("resource", r["resource_id"], org_id) for r in d.get("resources", [])}
    if rows:
        op.bulk_insert(index, [{"kind": k, "value": v, "org_id": o} for k, v, o in sorted(rows)])
