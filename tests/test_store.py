"""The store on SQLite and on a real PostgreSQL server: migrations from empty, schema agreement, the newer-database
guard, durability across reopening, and the built-in SQL ACL backend on top."""

from __future__ import annotations

import asyncio
import functools
import json

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from finp2p.builtins.sql_acl_backend import SqlAclBackend
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.network.pubsub import append
from finp2p.privacy.acl import AclRule
from finp2p.store import Store, normalise_url
from finp2p.store.models import metadata


@pytest.fixture
def store(store_url: str):
    s = Store(store_url, pool_size=4)
    s.migrate()
    yield s
    s.close()


def test_migrations_run_from_empty_to_head(store_url: str) -> None:
    s = Store(store_url)
    try:
        assert s.current_revision() is None
        before, after = s.migrate()
        assert before is None and after == s.head_revision() == s.current_revision()
        assert s.migrate() == (after, after)  # a second start has nothing to do
        tables = set(sa.inspect(s.engine).get_table_names())
        assert {"acl_rule", "acl_group_member", "alembic_version"} <= tables
    finally:
        s.close()


def test_models_and_migrations_agree(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == [], f"the models differ from the migrated schema: write a migration for {diff}"


def test_the_advert_index_table_goes_and_comes_back_filled_from_the_adverts(store: Store) -> None:
    """Revision 0011 drops the discovery index table (the registrar holds it in memory); going back to 0010 rebuilds
    it from the adverts themselves, as the code of 0010 wrote it."""
    from alembic import command

    document = {
        "capabilities": {"finp2p.pubsub": "1.0"},
        "ledgers": ["eip155:1"],
        "groups": ["club"],
        "resources": [{"resource_id": "org-a:102:bond"}],
    }
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO advert (org_id, fin_id, role, sequence, expires_ms, received_ms, home, document) "
                "VALUES ('org-a', '02', 'organization', 1, 1, 1, true, :d)"
            ),
            {"d": json.dumps(document)},
        )
    assert "advert_index" not in sa.inspect(store.engine).get_table_names()
    config = store._alembic_config()
    with store.engine.connect() as conn:  # the store's own connection, as its migrate passes it: closed after
        config.attributes["connection"] = conn
        command.downgrade(config, "0010_replay_horizon")
        conn.commit()
        rows = set(conn.execute(sa.text("SELECT kind, value, org_id FROM advert_index")))
        assert rows == {
            ("capability", "finp2p.pubsub", "org-a"),
            ("ledger", "eip155:1", "org-a"),
            ("group", "club", "org-a"),
            ("resource", "org-a:102:bond", "org-a"),
        }
        command.upgrade(config, "head")
        conn.commit()
    assert store.current_revision() == store.head_revision()
    assert "advert_index" not in sa.inspect(store.engine).get_table_names()


async def test_a_driver_transaction_commits_whole_or_not_at_all(store: Store) -> None:
    """The driver's own cursor, for the hottest writes: what it wrote is there once it returns, and nothing of what
    it wrote before it raised is."""

    def write(cursor: object, m: str, *, fail: bool) -> int:
        insert = f"INSERT INTO acl_group_member (group_name, org_id) VALUES ({m}, {m})"  # noqa: S608
        cursor.execute(insert, ("g", "first" if not fail else "never"))  # type: ignore[attr-defined]
        if fail:
            raise FinP2PError(ErrorCode.MALFORMED, "refused half way")
        return 1

    assert await store.run_driver(lambda c, m: write(c, m, fail=False)) == 1
    with pytest.raises(FinP2PError):
        await store.run_driver(lambda c, m: write(c, m, fail=True))
    with store.engine.connect() as conn:
        members = [r[0] for r in conn.execute(sa.text("SELECT org_id FROM acl_group_member WHERE group_name = 'g'"))]
    assert members == ["first"]


def test_a_database_newer_than_the_code_is_refused(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(FinP2PError) as info:
        store.migrate()
    assert info.value.code is ErrorCode.STORE_TOO_NEW
    assert "9999_from_the_future" in info.value.detail


def test_unreachable_database_is_a_clear_error() -> None:
    from tests.support.ports import free_port

    s = Store(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    try:
        with pytest.raises(FinP2PError) as info:
            s.migrate()
        assert info.value.code is ErrorCode.STORE_UNREACHABLE
    finally:
        s.close()


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://", "sqlite:///:memory:", "::not a url::"])
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(FinP2PError) as info:
        normalise_url(url)
    assert info.value.code is ErrorCode.STORE_URL


def test_postgres_url_uses_psycopg3() -> None:
    assert normalise_url("postgresql://u:p@h:5/d") == "postgresql+psycopg://u:p@h:5/d"


async def test_committed_state_survives_reopening(store_url: str) -> None:
    first = Store(store_url)
    first.migrate()
    await SqlAclBackend(first).grant(AclRule("org:orgB", "read", "orgA:101:*"))
    first.close()
    second = Store(store_url)
    try:
        second.migrate()
        assert await SqlAclBackend(second).rules() == [AclRule("org:orgB", "read", "orgA:101:*", id=1)]
    finally:
        second.close()


async def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    acl = SqlAclBackend(store)

    def half_then_fail(session):
        from finp2p.store.models import AclGroupMemberRow

        session.add(AclGroupMemberRow(group_name="g", org_id="o"))
        session.flush()
        raise RuntimeError("crash in the middle")

    with pytest.raises(RuntimeError):
        await store.run(half_then_fail)
    assert await acl.groups_of("o") == frozenset()


async def test_sql_acl_backend(store: Store) -> None:
    acl = SqlAclBackend(store)
    rule = await acl.grant(AclRule("org:orgB", "read", "orgA:101:*"))
    assert rule.id is not None
    assert await acl.grant(AclRule("org:orgB", "read", "orgA:101:*")) == rule  # idempotent
    await acl.grant(AclRule("group:auditors", "*", "orgA:102:bond-1"))
    await acl.grant(AclRule("*", "subscribe", "orgA:102:*"))
    await acl.set_group("auditors", {"orgC", "orgD"})

    assert await acl.is_allowed("orgB", "read", "orgA:101:alice")
    assert not await acl.is_allowed("orgB", "read", "orgA:102:bond-1")
    assert not await acl.is_allowed("orgB", "write", "orgA:101:alice")
    assert not await acl.is_allowed("orgC", "read", "orgA:101:alice")
    assert await acl.is_allowed("orgC", "write", "orgA:102:bond-1")
    assert await acl.is_allowed("orgZ", "subscribe", "orgA:102:anything")
    assert await acl.groups_of("orgD") == frozenset({"auditors"})

    assert await acl.withdraw(AclRule("org:orgB", "read", "orgA:101:*"))
    assert not await acl.withdraw(AclRule("org:orgB", "read", "orgA:101:*"))
    assert not await acl.is_allowed("orgB", "read", "orgA:101:alice")
    await acl.set_group("auditors", {"orgD"})
    assert not await acl.is_allowed("orgC", "write", "orgA:102:bond-1")
    assert [r.subject for r in await acl.rules()] == ["group:auditors", "*"]


async def test_concurrent_grants_of_one_rule_store_it_once(store: Store) -> None:
    acl = SqlAclBackend(store)
    rules = await asyncio.gather(*(acl.grant(AclRule("org:orgB", "read", "orgA:101:x")) for _ in range(20)))
    assert len({r.id for r in rules}) == 1
    assert len(await acl.rules(subject="org:orgB")) == 1


async def test_concurrent_appends_to_a_topic_number_each_message_once(store: Store) -> None:
    seqs = await asyncio.gather(*(store.run(functools.partial(append, topic="t/x", body={"i": i})) for i in range(20)))
    assert sorted(seqs) == list(range(1, 21))
    rows = store.call(lambda s: s.connection().exec_driver_sql("SELECT seq, body FROM topic_message").all())
    assert {int(seq): json.loads(body)["i"] for seq, body in rows} == dict(zip(seqs, range(20), strict=True))
    assert store.call(lambda s: append(s, "t/y", {})) == 1, "each topic counts on its own"


async def test_concurrent_claims_of_one_idempotency_key_make_one_operation(store: Store) -> None:
    """The adapter's claim, written out for the driver: twenty requests with one key at once (on PostgreSQL, on
    eight connections) leave one operation, and every other request is handed that one."""
    from finp2p.adapter.service import _claim_key
    from finp2p.store.models import AdapterOperationRow

    def row(i: int) -> AdapterOperationRow:
        return AdapterOperationRow(
            cid=f"cid-{i}",
            idempotency_key="transfer:key-1",
            kind="receipt",
            operation="transfer",
            request=json.dumps({"i": i}),
            request_hash="00" * 32,
            state="pending",
            created_ms=i,
            updated_ms=i,
        )

    claims = await asyncio.gather(*(store.run_driver(functools.partial(_claim_key, row=row(i))) for i in range(20)))
    assert sum(new for _, new in claims) == 1
    (winner,) = [r for r, new in claims if new]
    assert all(r.cid == winner.cid and r.request == winner.request for r, _ in claims)
    held = store.call(lambda s: s.connection().exec_driver_sql("SELECT cid, state FROM adapter_operation").all())
    assert [tuple(h) for h in held] == [(winner.cid, "pending")]
