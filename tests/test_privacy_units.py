"""The private store's rules and the ACL cache (unit tests, on a real SQLite store)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from finp2p.builtins.sql_acl_backend import SqlAclBackend
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.network.transport import Peer
from finp2p.privacy import records
from finp2p.privacy.acl import AclRule
from finp2p.privacy.cache import AclCache
from finp2p.store import Store


@pytest.fixture
def store(tmp_path: Path):
    s = Store(f"sqlite:///{tmp_path / 'p.db'}")
    s.migrate()
    yield s
    s.close()


def test_user_information_is_validated(store: Store) -> None:
    ok = store.call(
        lambda s: records.put(s, "bank-a", "bank-a:101:alice", {"legal_name": "Alice", "nationality": "FR"})
    )
    assert ok.version == 1 and ok.kind == "user"
    for bad in (
        {"nationality": "FR"},
        {"legal_name": "A", "nationality": "France"},
        {"legal_name": "A", "kyc_status": "probably"},
        {"legal_name": "A", "shoe_size": 42},
    ):
        with pytest.raises(FinP2PError) as info:
            store.call(functools.partial(records.put, owner_org="bank-a", resource_id="bank-a:101:alice", data=bad))
        assert info.value.code is ErrorCode.MALFORMED
    asset = store.call(lambda s: records.put(s, "bank-a", "bank-a:102:bond", {"name": "Bond", "isin": "FR0000120271"}))
    assert asset.kind == "asset"


def test_only_the_owner_writes_and_replicas_only_move_forward(store: Store) -> None:
    with pytest.raises(FinP2PError) as info:
        store.call(lambda s: records.put(s, "bank-b", "bank-a:101:alice", {"legal_name": "Alice"}))
    assert info.value.code is ErrorCode.ACL_DENIED
    assert store.call(lambda s: records.keep_replica(s, "bank-a", "bank-a:101:alice", 2, {"legal_name": "v2"}))
    assert not store.call(lambda s: records.keep_replica(s, "bank-a", "bank-a:101:alice", 1, {"legal_name": "v1"}))
    with pytest.raises(FinP2PError):
        store.call(lambda s: records.keep_replica(s, "bank-x", "bank-a:101:alice", 3, {}))  # not its resource
    assert not store.call(lambda s: records.drop_replica(s, "bank-x", "bank-a:101:alice")), "only its owner"
    assert store.call(lambda s: records.drop_replica(s, "bank-a", "bank-a:101:alice"))


async def test_the_acl_cache_knows_who_has_any_grant(store: Store) -> None:
    acl = SqlAclBackend(store)
    await acl.grant(AclRule("org:bank-b", "read", "bank-a:101:*"))
    await acl.grant(AclRule("group:auditors", "read", "bank-a:102:*"))
    await acl.set_group("auditors", {"bank-c"})
    cache = AclCache(acl)
    await cache.refresh()
    assert cache.may_have_access("bank-b") and cache.may_have_access("bank-c")
    assert not cache.may_have_access("bank-d") and not cache.may_have_access(None)
    with pytest.raises(FinP2PError) as info:
        cache.precheck(Peer("bank-d", None, None, "x"), None)  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.ACL_DENIED
    await acl.grant(AclRule("*", "read", "bank-a:102:public"))
    await cache.refresh()
    assert cache.may_have_access("bank-d")
