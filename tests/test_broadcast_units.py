"""Sealed payloads and the comparison of broadcast answers (unit tests of those two modules)."""

from __future__ import annotations

import pytest

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.keys import SigningKey
from finp2p.network.broadcast import Answer, compare
from finp2p.network.sealing import open_sealed, seal_for


def test_only_the_recipients_open_a_sealed_payload() -> None:
    alice, bob, carol = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    sealed = seal_for({"user": "orga:101:alice", "asset": "orgb:102:bond"}, [alice.fin_id, bob.fin_id], "b-1")
    assert open_sealed(sealed, alice, "b-1") == {"user": "orga:101:alice", "asset": "orgb:102:bond"}
    assert open_sealed(sealed, bob, "b-1")["user"] == "orga:101:alice"
    assert "alice" not in str(sealed), "a forwarding node sees only ciphertext"
    with pytest.raises(FinP2PError) as info:
        open_sealed(sealed, carol, "b-1")
    assert info.value.code is ErrorCode.NOT_FOR_US
    with pytest.raises(FinP2PError):
        open_sealed(sealed, alice, "b-2")  # moved to another broadcast: the associated data differs
    tampered = {
        **sealed,
        "ciphertext": sealed["ciphertext"][:-2] + ("00" if sealed["ciphertext"][-2:] != "00" else "11"),
    }
    with pytest.raises(FinP2PError):
        open_sealed(tampered, alice, "b-1")


def a(org: str, value: object, height: int | None = 10) -> Answer:
    return Answer(org, "organization", value, height)


def test_agreement() -> None:
    assert compare([a("x", 5), a("y", 5)]) == (5, [], [])


def test_a_differing_answer_at_the_same_height() -> None:
    value, differing, stale = compare([a("x", 5), a("y", 5), a("z", 6)])
    assert (value, [d.org_id for d in differing], stale) == (5, ["z"], [])


def test_an_older_height_is_out_of_date_not_a_dispute() -> None:
    value, differing, stale = compare([a("x", 5, 11), a("y", 5, 11), a("z", 4, 9)])
    assert (value, differing, [s.org_id for s in stale]) == (5, [], ["z"])


def test_a_stale_answer_that_agrees_is_fine() -> None:
    assert compare([a("x", 5, 11), a("z", 5, 9)]) == (5, [], [])


def test_answers_without_heights() -> None:
    value, differing, _ = compare([a("x", {"k": 1}, None), a("y", {"k": 1}, None), a("z", {"k": 2}, None)])
    assert value == {"k": 1} and [d.org_id for d in differing] == ["z"]
