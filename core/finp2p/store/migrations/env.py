"""Alembic environment: the node passes its own connection in ``config.attributes['connection']``."""

from alembic import context

from finp2p.store.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # run from the alembic CLI during development
    from sqlalchemy import create_engine

    connection = create_engine(context.config.get_main_option("sqlalchemy.url") or "").connect()

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
