"""Persistent state: SQLModel tables over SQLite (default) or PostgreSQL, with Alembic migrations applied on start."""

from finp2p.store.engine import Store, normalise_url

__all__ = ["Store", "normalise_url"]
