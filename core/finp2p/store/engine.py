"""The database engine, sessions run off the event loop, and schema migrations."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session

from finp2p.edge.files import private_file
from finp2p.edge.workers import Workers
from finp2p.errors import ErrorCode, FinP2PError

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 0x46503250  # "FP2P": one migrator at a time when several nodes share a database


def normalise_url(url: str) -> str:
    """Accept the URL forms operators write and return the one SQLAlchemy needs (psycopg 3 for PostgreSQL)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise FinP2PError(ErrorCode.STORE_URL, f"cannot parse {url!r}: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise FinP2PError(ErrorCode.STORE_URL, "an SQLite store needs a file path: state must survive a restart")
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise FinP2PError(ErrorCode.STORE_URL, f"database kind {backend!r} is not supported")


def _sqlite_pragmas(synchronous: str) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL lets readers run beside the writer; FULL makes a commit durable across power loss, not only crashes.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    return on_connect


class Store:
    """The node's database. Synchronous SQLModel sessions, run off the event loop by :meth:`run`.

    SQLite gets one worker thread (one writer, no ``database is locked``); PostgreSQL gets ``pool_size`` workers.
    """

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 8) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            # Created 0600 in a 0700 directory before SQLite opens it (its WAL files take the file's mode).
            private_file(Path(parsed.database or ""))
            # Pooled connections: opening one (and setting its pragmas) costs milliseconds, a transaction far less.
            self.engine: Engine = sa.create_engine(
                self.url, connect_args={"check_same_thread": False}, pool_size=4, max_overflow=4
            )
            sa.event.listen(self.engine, "connect", _sqlite_pragmas(sqlite_synchronous.upper()))
            workers = 1
        else:
            self.engine = sa.create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=0,
                pool_pre_ping=True,
                connect_args={"connect_timeout": 10},
            )
            workers = pool_size
        self._workers = Workers(workers, "finp2p-store")
        self._closed = threading.Event()

    # -- sessions ------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on an exception."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def call(self, fn: Callable[[Session], T]) -> T:
        with self.session() as session:
            return fn(session)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in one transaction on a store worker; the commit is done when this returns."""
        return await self._workers.run(functools.partial(self.call, fn))

    def call_driver(self, fn: Callable[[Any, str], T]) -> T:
        """``fn(cursor, mark)`` in one transaction on a pooled connection of the driver itself, ``mark`` its
        parameter mark (sqlite3 ``?``, psycopg ``%s``): for the hottest writes, which a session would cost twice
        over (a delivery stored at every subscriber). Committed when it returns, rolled back when it raises."""
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                out = fn(cursor, "?" if self.is_sqlite else "%s")
            finally:
                cursor.close()
            conn.commit()
            return out
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()  # back to the pool

    async def run_driver(self, fn: Callable[[Any, str], T]) -> T:
        """:meth:`call_driver` on a store worker; the commit is done when this returns."""
        return await self._workers.run(functools.partial(self.call_driver, fn))

    # -- migrations ----------------------------------------------------------------------------------------------
    def _alembic_config(self) -> AlembicConfig:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def head_revision(self) -> str:
        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        assert head is not None, "the migrations directory has no revisions"
        return head

    def current_revision(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        except OperationalError as exc:
            raise FinP2PError(ErrorCode.STORE_UNREACHABLE, _first_line(exc)) from None

    def migrate(self) -> tuple[str | None, str]:
        """Bring the schema to this code's head revision; return ``(revision before, revision after)``.

        Refuses (FP1203) a database whose revision this code does not know: it was written by a newer finp2p.
        """
        cfg = self._alembic_config()
        script = ScriptDirectory.from_config(cfg)
        try:
            with self.engine.connect() as conn:
                if not self.is_sqlite:
                    conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                try:
                    before = MigrationContext.configure(conn).get_current_revision()
                    known = {rev.revision for rev in script.walk_revisions()}
                    if before is not None and before not in known:
                        raise FinP2PError(
                            ErrorCode.STORE_TOO_NEW,
                            f"the database is at revision {before}, which this finp2p does not know "
                            f"(its newest is {script.get_current_head()})",
                        )
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                    conn.commit()
                finally:
                    if not self.is_sqlite:
                        conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                        conn.commit()
        except OperationalError as exc:
            raise FinP2PError(ErrorCode.STORE_UNREACHABLE, _first_line(exc)) from None
        except FinP2PError:
            raise
        except Exception as exc:
            raise FinP2PError(ErrorCode.STORE_MIGRATION, f"{type(exc).__name__}: {_first_line(exc)}") from exc
        return before, self.head_revision()

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._workers.close()  # the calls queued so far finish first
            self.engine.dispose()


def placeholder(s: Session) -> str:
    """The parameter mark of the session's driver, for statements written out for it (sqlite3 ``?``, psycopg
    ``%s``): hot paths whose statements SQLAlchemy would build afresh on every call."""
    return "?" if s.connection().dialect.paramstyle == "qmark" else "%s"


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
