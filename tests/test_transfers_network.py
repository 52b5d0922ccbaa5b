"""Asset transactions between organizations as processes on loopback, over mutual TLS, on a real Hardhat node:
routed to the asset's primary node, the user query, the owner's consent, the receipt recorded by the requester and
verified by the auditor command; idempotent retries; refusals."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from devnet.hardhat import HardhatNode
from finp2p.identity.keys import SigningKey
from finp2p.ledger_profiles import load_profile, save_profile
from tests.support.cli import run_cli
from tests.support.fuzz import run_schemathesis
from tests.support.network import Net, make_net
from tests.support.nodes import NodeProcess
from tests.support.rest import Org, call, consented, run_operation, until_done

pytestmark = [pytest.mark.slow, pytest.mark.hardhat]
ASSET = "bank-a:102:bond"


@dataclass
class World:
    net: Net
    orgs: dict[str, Org]
    alice: SigningKey
    bob: SigningKey
    carol: SigningKey


def _setup_org(net: Net, org: str, hardhat: HardhatNode) -> Org:
    return Org(org, *net.join_with_ledger(org, hardhat.url))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, hardhat: HardhatNode) -> Iterator[World]:
    net = make_net(tmp_path_factory.mktemp("transfers") / "net", ["gov-1"], auto_approve=True)
    net.governance["gov-1"].start()
    try:
        # bank-a manages the asset; bank-b's users trade it; bank-c only serves the same chain (broadcasts).
        orgs = {org: _setup_org(net, org, hardhat) for org in ("bank-a", "bank-b", "bank-c")}
        yield World(net, orgs, SigningKey.generate(), SigningKey.generate(), SigningKey.generate())
    finally:
        net.stop_all()


async def signed_transfer(
    w: World, source: SigningKey, dest: SigningKey, quantity: int, **extra: Any
) -> dict[str, Any]:
    """What bank-b's application does: ask for the consent template, have the owner sign it, send the operation."""
    body = {
        "operation": "transfer",
        "asset_id": ASSET,
        "quantity": quantity,
        "operation_id": f"t-{uuid.uuid4().hex[:12]}",
        "source": source.fin_id,
        "destination": dest.fin_id,
        **extra,
    }
    return await consented(w.orgs["bank-b"], body, source)


async def test_the_transfer_story(world: World) -> None:
    a, b = world.orgs["bank-a"], world.orgs["bank-b"]
    status, asset = await call(a, "POST", "/v1/assets", {"name": "bond", "ledger_id": "eip155:31337"}, "asset-1")
    assert status == 201, asset
    assert asset["asset_id"] == ASSET
    again = await call(a, "POST", "/v1/assets", {"name": "bond", "ledger_id": "eip155:31337"}, "asset-1")
    assert again == (201, asset), "a retry with the same Idempotency-Key gets the first answer"
    status, conflict = await call(a, "POST", "/v1/assets", {"name": "other", "ledger_id": "eip155:31337"}, "asset-1")
    assert status == 409 and conflict["error"]["code"] == "FP3011", conflict
    for user, key in (("alice", world.alice), ("bob", world.bob), ("carol", world.carol)):
        info = {"user_id": user, "fin_id": key.fin_id, "legal_name": user.title(), "kyc_status": "verified"}
        status, made = await call(b, "POST", "/v1/users", info)
        assert status == 201, made
    for user in ("alice", "bob"):  # bank-a may read these two users' information; not carol's
        assert world.net.cli("bank-b", "data", "share", f"bank-b:101:{user}", "--to", "bank-a").returncode == 0

    issued = await run_operation(
        a,
        {
            "operation": "issue",
            "asset_id": ASSET,
            "quantity": 100,
            "operation_id": "issue-1",
            "destination": world.alice.fin_id,
        },
    )
    assert issued["state"] == "recorded", issued

    # A transfer between two users of bank-b on an asset bank-a manages: routed to bank-a's node, which asks
    # bank-b for both users' information before it executes.
    body = await signed_transfer(
        world, world.alice, world.bob, 30, source_user="bank-b:101:alice", destination_user="bank-b:101:bob"
    )
    idem = uuid.uuid4().hex
    done = await run_operation(b, body, idem)
    assert done["state"] == "recorded", done.get("error")
    bundle = done["receipt"]
    assert bundle["receipt"]["quantity"] == "30" and bundle["issuer"]["org_id"] == "bank-a"
    assert bundle["record"]["transaction_id"].startswith("0x")

    # The same request with the same key: the same operation and receipt, and nothing executed again.
    status, again = await call(b, "POST", "/v1/operations", body, idem)
    assert status == 202 and again["id"] == done["id"] and again["receipt"] == bundle
    for who, available in ((world.alice, 70), (world.bob, 30)):
        status, balance = await call(b, "GET", f"/v1/balances?asset_id={ASSET}&fin_id={who.fin_id}")
        assert status == 200 and balance["available"] == str(available), balance

    # The auditor: nothing but the bundle, the genesis and the chain.
    path = world.net.root / "receipt.json"
    path.write_text(json.dumps(bundle))
    own = world.net.org_config("bank-b").parent / "chain.toml"  # the auditor's profile of the chain
    gov = world.net.gov_url("gov-1")  # revocation lists fetched from a governance node, each verified
    args = ["--genesis", str(world.net.genesis_file), "--ledger", str(own), "--revocations-from", gov, "--json"]
    verified = run_cli("receipt", "verify", str(path), *args, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert all(c["ok"] for c in json.loads(verified.stdout)["checks"])
    status, listed = await call(b, "GET", "/v1/receipts")
    assert any(r["receipt"]["id"] == bundle["receipt"]["id"] for r in listed["receipts"])


async def test_a_hash_list_consent(world: World) -> None:
    """The owner signs the node's hashList template instead of EIP-712 typed data: checked by the primary, then on
    the chain (the contract checks the owner's signature over the template's hash, once)."""
    b = world.orgs["bank-b"]
    before = await _available(world)
    op_id = f"h-{uuid.uuid4().hex[:12]}"
    body: dict[str, Any] = {
        "operation": "transfer",
        "asset_id": ASSET,
        "quantity": 3,
        "operation_id": op_id,
        "source": world.alice.fin_id,
        "destination": world.bob.fin_id,
    }
    status, answer = await call(b, "POST", "/v1/consent", {**body, "template_type": "hashList"})
    assert status == 200 and answer["template"]["type"] == "hashList", answer
    template = answer["template"]
    signature = world.alice.sign_digest(bytes.fromhex(template["hash"])).hex()
    consent = {"template": "hashList", "signer": world.alice.fin_id, "signature": signature, "payload": template}
    done = await run_operation(b, {**body, "consent": {**consent, "hashFunc": "keccak-256"}})
    assert done["state"] == "recorded", done.get("error")
    after = await _available(world)
    assert (after[0], after[1]) == (before[0] - 3, before[1] + 3)

    # Alice's signed template for 3, sent with a request for 300 (and with its quantity field doctored to match,
    # which breaks the template's own hashes): refused by the primary, nothing executed.
    bigger = {**body, "operation_id": op_id + "-x", "quantity": 300}
    failed = await run_operation(b, {**bigger, "consent": consent})
    assert failed["state"] == "failed" and failed["error"]["code"] == "FP7009", failed
    doctored = json.loads(json.dumps(template))
    next(f for f in doctored["hashGroups"][0]["fields"] if f["name"] == "quantity")["value"] = b"300".hex()
    failed = await run_operation(
        b, {**bigger, "operation_id": op_id + "-y", "consent": {**consent, "payload": doctored}}
    )
    assert failed["state"] == "failed" and failed["error"]["code"] == "FP7009", failed
    assert await _available(world) == after


async def test_balance_and_receipt_validation_broadcasts(world: World) -> None:
    b = world.orgs["bank-b"]
    status, answer = await call(b, "GET", f"/v1/balances?asset_id={ASSET}&fin_id={world.bob.fin_id}")
    assert status == 200, answer
    path = f"/v1/balances/broadcast?asset_id={ASSET}&fin_id={world.bob.fin_id}&quorum=2"
    status, result = await call(b, "GET", path)
    assert status == 200, result
    assert result["reached_quorum"] and result["consistent"], result
    assert {a["org_id"] for a in result["answers"]} == {"bank-a", "bank-c"}, "the nodes serving the ledger answer"
    assert result["value"]["available"] == answer["available"]

    status, listed = await call(b, "GET", "/v1/receipts")
    bundle = listed["receipts"][-1]
    status, result = await call(b, "POST", "/v1/receipts/validate", {"bundle": bundle, "quorum": 2})
    assert status == 200 and result["reached_quorum"] and result["consistent"], result
    assert result["value"]["valid"] is True
    forged = json.loads(json.dumps(bundle))
    forged["receipt"]["quantity"] = str(int(forged["receipt"]["quantity"]) + 1000)
    status, result = await call(b, "POST", "/v1/receipts/validate", {"bundle": forged, "quorum": 2})
    assert status == 200 and result["reached_quorum"], result
    assert result["value"]["valid"] is False and "quantity" in result["value"]["detail"]


async def test_refusals_stop_the_operation(world: World) -> None:
    b = world.orgs["bank-b"]
    # Carol's organization does not let bank-a read her information: the transfer stops with that reason.
    body = await signed_transfer(
        world, world.alice, world.carol, 1, source_user="bank-b:101:alice", destination_user="bank-b:101:carol"
    )
    failed = await run_operation(b, body)
    assert failed["state"] == "failed" and failed["error"]["code"] == "FP5001", failed

    # Consent signed by someone else than the source.
    body = await signed_transfer(world, world.alice, world.bob, 1)
    body["consent"]["signature"] = world.bob.sign_digest(bytes.fromhex(body["consent"]["payload"]["hash"])).hex()
    failed = await run_operation(b, body)
    assert failed["state"] == "failed" and failed["error"]["code"] == "FP7009", failed

    # Only bank-a issues its asset.
    issue = {
        "operation": "issue",
        "asset_id": ASSET,
        "quantity": 5,
        "operation_id": "steal",
        "destination": world.bob.fin_id,
    }
    failed = await run_operation(b, issue)
    assert failed["state"] == "failed" and failed["error"]["code"] == "FP7008", failed

    # More than alice has: the ledger's refusal comes back.
    body = await signed_transfer(world, world.alice, world.bob, 10_000)
    failed = await run_operation(b, body)
    assert failed["state"] == "failed" and failed["error"]["code"] == "FP6001", failed

    # Bad input is refused at the edge, with the field named.
    status, refused = await call(b, "POST", "/v1/operations", {"operation": "transfer"}, "bad-1")
    assert status == 400 and refused["error"]["code"] == "FP7010"
    status, refused = await call(b, "POST", "/v1/operations", body)  # no Idempotency-Key
    assert status == 400 and "Idempotency-Key" in refused["error"]["detail"]
    body = await signed_transfer(world, world.alice, world.bob, 2)
    status, accepted = await call(b, "POST", "/v1/operations", body, "bad-1")
    assert status == 202, "a refused request is not written down, so its key stays free for a good one"
    assert (await until_done(b, accepted["id"]))["state"] == "recorded"


@pytest.mark.parametrize("step", ["received", "executing", "on-ledger", "done"])
async def test_the_primary_killed_at_any_step_completes_the_transfer_once(
    world: World, good_plugin_site: Path, step: str
) -> None:
    """bank-a, the primary node, dies by SIGKILL at ``step`` of a transfer (the test plugin's fault hook); it is
    started again, and the transfer completes exactly once."""
    b = world.orgs["bank-b"]
    config = world.net.org_config("bank-a")
    world.net.orgs["bank-a"].stop()
    doomed = NodeProcess(config, site=good_plugin_site, env={"FINP2P_TEST_CRASH_AT": step}).start()
    world.net.orgs["bank-a"] = doomed
    before = await _available(world)

    body = await signed_transfer(world, world.alice, world.bob, 1)
    status, accepted = await call(b, "POST", "/v1/operations", body, uuid.uuid4().hex)
    assert status == 202, accepted
    assert doomed.proc is not None
    doomed.proc.wait(timeout=60)
    assert doomed.proc.returncode == -signal.SIGKILL, f"bank-a should have died at {step}"

    world.net.orgs["bank-a"] = NodeProcess(config, site=good_plugin_site).start()
    done = await until_done(b, accepted["id"], timeout=120)
    assert done["state"] == "recorded", done.get("error")
    after = await _available(world)
    assert (after[0], after[1]) == (before[0] - 1, before[1] + 1), f"executed more than once after dying at {step}"


@pytest.mark.parametrize("step", ["batch-sending", "batch-sent", "batch-mined"])
async def test_the_primary_killed_in_a_batch_completes_each_transfer_once(
    world: World, good_plugin_site: Path, step: str
) -> None:
    """Three transfers that reach bank-a together share one ledger transaction (its profile's batch window made
    wide); bank-a dies by SIGKILL at ``step`` of that batch: before sending it, once the chain has it, or once it
    is confirmed and before any operation has its outcome. Started again, each transfer completes exactly once."""
    b = world.orgs["bank-b"]
    config = world.net.org_config("bank-a")
    profile_file = config.parent / "chain.toml"
    profile = load_profile(profile_file)
    world.net.orgs["bank-a"].stop()
    save_profile(profile_file, replace(profile, settings={**profile.settings, "batch_window_ms": 1000}))
    try:
        doomed = NodeProcess(config, site=good_plugin_site, env={"FINP2P_TEST_CRASH_AT": step}).start()
        world.net.orgs["bank-a"] = doomed
        before = await _available(world)
        bodies = [await signed_transfer(world, world.alice, world.bob, 1) for _ in range(3)]
        answers = await asyncio.gather(*(call(b, "POST", "/v1/operations", x, uuid.uuid4().hex) for x in bodies))
        assert [status for status, _ in answers] == [202] * 3, answers
        assert doomed.proc is not None
        doomed.proc.wait(timeout=60)
        assert doomed.proc.returncode == -signal.SIGKILL, f"bank-a should have died at {step}"
    finally:
        save_profile(profile_file, profile)
    world.net.orgs["bank-a"] = NodeProcess(config, site=good_plugin_site).start()
    done = [await until_done(b, accepted["id"], timeout=120) for _, accepted in answers]
    assert [d["state"] for d in done] == ["recorded"] * 3, [d.get("error") for d in done]
    after = await _available(world)
    assert (after[0], after[1]) == (before[0] - 3, before[1] + 3), f"executed more than once after dying at {step}"
    ids = [d["receipt"]["receipt"]["id"] for d in done]
    assert len(set(ids)) == 3, ids
    if step != "batch-sending":  # the batch reached the chain before the crash: each was found in it
        assert len({i.split(":")[0] for i in ids}) == 1 and all(":" in i for i in ids), ids


async def _available(world: World) -> tuple[int, int]:
    b = world.orgs["bank-b"]
    found = []
    for who in (world.alice, world.bob):
        status, balance = await call(b, "GET", f"/v1/balances?asset_id={ASSET}&fin_id={who.fin_id}")
        assert status == 200, balance
        found.append(int(balance["available"]))
    return found[0], found[1]


def test_the_api_matches_its_openapi_document_and_never_errs(world: World) -> None:
    """schemathesis drives every documented route with generated input: no answer is a server error, and every
    answer's status and body match the document (in the end, the document describes what is served)."""
    b = world.orgs["bank-b"]
    run_schemathesis(f"{b.api}/openapi.json", b.api, f"Authorization: Bearer {b.token}")


async def test_the_requester_killed_after_accepting_resumes_on_restart(world: World) -> None:
    """bank-b accepts a transfer (202) and is killed (SIGKILL) before it has its receipt: started again, it resumes
    the operation, gets the receipt and records it; the transfer happened once."""
    before = await _available(world)
    body = await signed_transfer(world, world.alice, world.bob, 1)
    b = world.orgs["bank-b"]
    status, accepted = await call(b, "POST", "/v1/operations", body, uuid.uuid4().hex)
    assert status == 202, accepted
    world.net.orgs["bank-b"].stop(signal.SIGKILL)
    world.net.start_org("bank-b")
    done = await until_done(b, accepted["id"], timeout=120)
    assert done["state"] == "recorded", done.get("error")
    after = await _available(world)
    assert (after[0], after[1]) == (before[0] - 1, before[1] + 1)


# -- every accepted operation ends (transient troubles retried, final ones answered, deadlines kept) --------------
async def _pending_with(org: Org, op_id: str, codes: set[str], timeout: float = 60) -> dict[str, Any]:
    """The operation once it is pending and says it waits after one of ``codes``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = await call(org, "GET", f"/v1/operations/{op_id}")
        assert status == 200, body
        assert body["state"] == "pending", body
        if body["waiting"].get("code") in codes:
            return dict(body)
        await asyncio.sleep(0.1)
    raise AssertionError(f"operation {op_id} never waited after {codes}: {body}")


UNREACHABLE = {"FP3001", "FP3002", "FP3007"}


def _operations_cli(org: Org, *args: str) -> tuple[int, Any]:
    found = run_cli("operations", *args, "--api", org.api, "--json", env={"FINP2P_API_TOKEN": org.token})
    return found.returncode, json.loads(found.stdout) if found.stdout.strip() else found.stderr


async def test_a_party_unreachable_during_the_user_query_delays_the_transfer_and_it_completes_once(
    world: World,
) -> None:
    """bank-c asks for a transfer between two of bank-b's users while bank-b is stopped: bank-a, the primary,
    cannot fetch their information (a trouble that may pass), so nothing is written down as failed; bank-c says
    what it waits for, and the operator sees it stuck. Once bank-b is back the transfer completes, once."""
    c = world.orgs["bank-c"]
    before = await _available(world)
    world.net.orgs["bank-b"].stop()  # a clean stop: SIGTERM
    try:
        body = await signed_transfer_offline(world, world.alice, world.bob, 2)
        status, accepted = await call(c, "POST", "/v1/operations", body, uuid.uuid4().hex)
        assert status == 202, accepted
        waiting = await _pending_with(c, accepted["id"], UNREACHABLE)
        assert "bank-a" in waiting["waiting"]["for"] and waiting["waiting"]["attempts"] >= 1
        code, stuck = await asyncio.to_thread(_operations_cli, c, "list", "--stuck", "--older-than", "0")
        assert code == 0 and accepted["id"] in [op["id"] for op in stuck], stuck
        code, retried = await asyncio.to_thread(_operations_cli, c, "retry", accepted["id"])
        assert code == 0 and retried["id"] == accepted["id"] and retried["state"] == "pending", retried
    finally:
        world.net.start_org("bank-b")
    done = await until_done(c, accepted["id"], timeout=120)
    assert done["state"] == "recorded", done.get("error")
    after = await _available(world)
    assert after == (before[0] - 2, before[1] + 2), "executed exactly once"


async def test_a_confirmation_that_comes_too_late_is_looked_up_not_failed(world: World, good_plugin_site: Path) -> None:
    """bank-a's ledger answers a transfer it executed with FP6015 (no confirmation in time): bank-a keeps the
    operation executing, looks it up on the ledger by its id and finishes it; bank-b's transfer is recorded and the
    units moved once, never "failed" while on the chain."""
    b = world.orgs["bank-b"]
    config = world.net.org_config("bank-a")
    world.net.orgs["bank-a"].stop()
    world.net.orgs["bank-a"] = NodeProcess(
        config, site=good_plugin_site, env={"FINP2P_TEST_LATE_TRANSFERS": "1"}
    ).start()
    try:
        before = await _available(world)
        done = await run_operation(b, await signed_transfer(world, world.alice, world.bob, 3))
        assert done["state"] == "recorded", done.get("error")
        assert await _available(world) == (before[0] - 3, before[1] + 3)
        late = (config.parent / "data" / "paper-late.jsonl").read_text().splitlines()
        assert len(late) == 1, "bank-a's ledger answered the transfer late, once"
    finally:
        world.net.orgs["bank-a"].stop()
        world.net.start_org("bank-a")


async def test_the_deadline_ends_an_operation_whose_primary_is_gone(world: World) -> None:
    """bank-a, the primary, is gone: bank-b's transfer with a 4-second deadline ends FP7013 (bank-a could not say
    whether it executed), and the operator can neither retry into nowhere forever nor lose it: `retry` makes it
    pending again, and once bank-a is back it completes."""
    b = world.orgs["bank-b"]
    before = await _available(world)
    body = await signed_transfer_offline(world, world.alice, world.bob, 4)  # bank-a makes the consent template
    world.net.orgs["bank-a"].stop()
    try:
        done = await run_operation(b, {**body, "deadline_s": 4})
        assert done["state"] == "failed" and done["error"]["code"] == "FP7013", done
        assert "did not answer" in done["error"]["detail"]
        code, stuck = await asyncio.to_thread(_operations_cli, b, "list", "--stuck")
        assert code == 0 and done["id"] in [op["id"] for op in stuck]
    finally:
        world.net.start_org("bank-a")
    code, retried = await asyncio.to_thread(_operations_cli, b, "retry", done["id"])
    assert code == 0 and retried["state"] == "pending", retried
    finished = await until_done(b, done["id"], timeout=120)
    assert finished["state"] == "recorded", finished.get("error")
    assert await _available(world) == (before[0] - 4, before[1] + 4)
    code, ended = await asyncio.to_thread(_operations_cli, b, "retry", done["id"])
    assert code != 0 and "FP7015" in str(ended), "a recorded operation cannot be retried"


async def test_an_abandoned_operation_is_cancelled_at_the_primary(world: World) -> None:
    """bank-c's transfer waits while bank-b (whose users it moves) is stopped; the operator abandons it: bank-a had
    not executed it, records it as cancelled, and refuses the operation id from then on (FP7014)."""
    c = world.orgs["bank-c"]
    before = await _available(world)
    world.net.orgs["bank-b"].stop()
    try:
        body = await signed_transfer_offline(world, world.alice, world.bob, 5)
        status, accepted = await call(c, "POST", "/v1/operations", body, uuid.uuid4().hex)
        assert status == 202, accepted
        await _pending_with(c, accepted["id"], UNREACHABLE)
        code, abandoned = await asyncio.to_thread(_operations_cli, c, "abandon", accepted["id"])
        assert code == 0 and abandoned["state"] == "failed", abandoned
        assert abandoned["error"]["code"] == "FP7014", abandoned
    finally:
        world.net.start_org("bank-b")
    again = await run_operation(c, body)  # the same operation id, asked again with a new key
    assert again["state"] == "failed" and again["error"]["code"] == "FP7014", again
    assert await _available(world) == before, "nothing executed"


async def signed_transfer_offline(w: World, source: SigningKey, dest: SigningKey, quantity: int) -> dict[str, Any]:
    """A transfer between bank-b's users, signed by the owner, made while bank-b may be down: the consent template
    is asked of bank-a (the primary) through bank-c."""
    body = {
        "operation": "transfer",
        "asset_id": ASSET,
        "quantity": quantity,
        "operation_id": f"t-{uuid.uuid4().hex[:12]}",
        "source": source.fin_id,
        "destination": dest.fin_id,
        "source_user": "bank-b:101:alice",
        "destination_user": "bank-b:101:bob",
    }
    return await consented(w.orgs["bank-c"], body, source)
