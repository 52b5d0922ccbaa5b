"""The canonical encoding round-trips, and any change to a signed field breaks verification."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import coincurve
import pytest
from coincurve.ecdsa import cdata_to_der, deserialize_compact
from hypothesis import given, settings
from hypothesis import strategies as st

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.canonical import DOMAINS, canonical, digest, keccak256
from finp2p.identity.keys import SigningKey, verify
from finp2p.network.envelope import Envelope, seal

KEY = SigningKey.generate()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
bodies = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


@given(json_values)
def test_canonical_round_trips(value: Any) -> None:
    encoded = canonical(value)
    assert canonical(json.loads(encoded)) == encoded


def _standard(value: Any) -> bytes:
    """The canonical form as the standard library writes it: the definition the fast encoder must equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


@given(json_values)
def test_the_fast_encoder_writes_the_standard_librarys_bytes(value: Any) -> None:
    assert canonical(value) == _standard(value)


def test_every_escape_and_key_order_match_the_standard_library() -> None:
    text = "".join(chr(i) for i in range(0x250)) + "\u2028\u2029\ufeff\uffff\U0001f600"
    value = {text: text, "é": [text], "z": 1, "\U0001f600": 2, "\uffff": 3, "A": 4}
    assert canonical(value) == _standard(value)


def test_subclasses_of_json_types_encode_as_their_values() -> None:
    class Code(enum.IntEnum):
        ONE = 1

    class Name(enum.StrEnum):
        A = "a"

    assert canonical({"c": Code.ONE, "n": Name.A}) == b'{"c":1,"n":"a"}'


def test_a_lone_surrogate_is_refused_as_malformed() -> None:
    with pytest.raises(FinP2PError) as info:
        canonical({"s": "\ud800"})
    assert info.value.code is ErrorCode.MALFORMED


@given(st.dictionaries(st.text(max_size=8), st.integers(min_value=-(2**63), max_value=2**64 - 1), max_size=6))
def test_key_order_does_not_matter(d: dict[str, int]) -> None:
    assert canonical(d) == canonical(dict(reversed(list(d.items()))))


@pytest.mark.parametrize(
    "bad", [1.5, {"a": float("nan")}, {1: "int key"}, b"bytes", {"s": {1, 2}}, 2**64, {"n": -(2**63) - 1}]
)
def test_values_without_a_canonical_form_are_refused(bad: Any) -> None:
    with pytest.raises(FinP2PError) as info:
        canonical(bad)
    assert info.value.code is ErrorCode.MALFORMED


@given(body=bodies)
@settings(max_examples=50)
def test_an_envelope_round_trips_through_its_encoding(body: dict[str, Any]) -> None:
    env = seal(KEY, network_id="net", type="t", body=body, sender_org="org-a", recipients=("org-b",))
    decoded = Envelope.decode(env.encode())
    assert decoded == env
    assert decoded.canonical_bytes() == env.canonical_bytes() == canonical(env.signed_part())
    verify(decoded.sender, "envelope", decoded.signed_part(), decoded.signature)


def test_an_envelope_signs_a_sha256_digest_and_every_other_object_a_keccak_one() -> None:
    """Recomputed by hand, as another implementation would: SHA-256 for envelopes, which no contract checks;
    keccak-256 for every other domain, which contracts recompute; the same domain prefix for both."""
    env = seal(KEY, network_id="net", type="t", body={"n": 1}, sender_org="org-a")
    expected = hashlib.sha256(b"\x19FinP2P:envelope\n" + canonical(env.signed_part())).digest()
    assert env.digest() == expected
    signature = cdata_to_der(deserialize_compact(bytes.fromhex(env.signature)))
    assert coincurve.PublicKey(bytes.fromhex(env.sender)).verify(signature, expected, hasher=None)
    for domain in DOMAINS - {"envelope"}:
        assert digest(domain, {"n": 1}) == keccak256(b"\x19FinP2P:" + domain.encode() + b'\n{"n":1}')


FIELDS = ["network_id", "type", "id", "sender_org", "recipients", "timestamp_ms", "nonce", "body", "in_reply_to"]


@given(field=st.sampled_from(FIELDS), body=bodies, data=st.data())
@settings(max_examples=150)
def test_any_change_to_a_signed_field_breaks_verification(
    field: str, body: dict[str, Any], data: st.DataObject
) -> None:
    env = seal(KEY, network_id="net", type="t", body=body, sender_org="org-a", recipients=("org-b",))
    original = getattr(env, field)
    if field == "timestamp_ms":
        changed: Any = original + data.draw(st.integers(min_value=1, max_value=10**6))
    elif field == "nonce":
        changed = data.draw(st.binary(min_size=16, max_size=16)).hex()
    elif field == "recipients":
        changed = (*original, data.draw(st.text(min_size=1, max_size=5)))
    elif field == "body":
        changed = {**original, "\x00extra": data.draw(json_values)}
    else:
        changed = (original or "") + data.draw(st.text(min_size=1, max_size=5))
    if changed == original:
        return
    tampered = replace(env, **{field: changed})
    with pytest.raises(FinP2PError) as info:
        verify(tampered.sender, "envelope", tampered.signed_part(), tampered.signature)
    assert info.value.code is ErrorCode.BAD_SIGNATURE


WIRE_FIELDS = [*FIELDS, "sender", "signature", "idempotency_key", "version"]
wire_values = json_values | st.text(alphabet="0123456789abcdefABCDEF -\n", max_size=140)


@given(field=st.sampled_from(WIRE_FIELDS), value=wire_values, drop=st.booleans(), body=bodies)
@settings(max_examples=300)
def test_the_fast_header_check_accepts_only_what_the_checked_one_does(
    field: str, value: Any, drop: bool, body: dict[str, Any]
) -> None:
    from finp2p.network.envelope import _checked_fields_of, _well_formed_fields_of

    env = seal(KEY, network_id="net", type="t", body=body, sender_org="org-a", recipients=("org-b",))
    data = json.loads(env.encode())
    if drop:
        del data[field]
    else:
        data[field] = value
    fast = _well_formed_fields_of(dict(data))
    if fast is not None:
        assert _checked_fields_of(dict(data)) == fast
    # Whatever a reader accepts, it checks the signature over the canonical bytes of what it read, however the
    # wire wrote it (a version of 1.0 or true, an unsigned field more, an optional field left out).
    try:
        decoded = Envelope.decode(json.dumps(data).encode())
    except FinP2PError:
        return
    assert decoded.canonical_bytes() == canonical(decoded.signed_part())


@pytest.mark.parametrize(
    "recipients",
    [["org-b\norg-c"], ["org-b", "org-c\n"], ["\norg-b"], ["org-b", ""], ["org-b", "ORG-C"], ["org-b", 7], ["o"]],
)
def test_recipients_are_org_ids_each_matched_whole(recipients: list[Any]) -> None:
    from finp2p.network.envelope import _checked_fields_of, _well_formed_fields_of

    sealed = seal(KEY, network_id="net", type="t", body={}, sender_org="org-a", recipients=("org-b",))
    data = json.loads(sealed.encode())
    data["recipients"] = recipients
    assert _well_formed_fields_of(dict(data)) is None
    with pytest.raises((FinP2PError, ValueError)):
        _checked_fields_of(dict(data))


def test_a_delivery_shared_by_many_keeps_every_recipient() -> None:
    from finp2p.network.envelope import _well_formed_fields_of

    many = tuple(f"bank-{i}" for i in range(50))
    data = json.loads(seal(KEY, network_id="net", type="t", body={}, sender_org="org-a", recipients=many).encode())
    fields = _well_formed_fields_of(data)
    assert fields is not None and fields["recipients"] == many


def test_a_reader_takes_the_signed_part_as_it_was_sealed_however_the_wire_writes_it() -> None:
    env = seal(KEY, network_id="net", type="t", body={"n": 1}, sender_org="org-a", recipients=("org-b",))
    changes: dict[str, Callable[[dict[str, Any]], Any]] = {
        "an unsigned field more": lambda d: d.update(extra=1),
        "version 1.0": lambda d: d.update(version=1.0),
        "version true": lambda d: d.update(version=True),
        "no idempotency_key": lambda d: d.pop("idempotency_key"),
    }
    for what, change in changes.items():
        data = json.loads(env.encode())
        change(data)
        decoded = Envelope.decode(json.dumps(data).encode())
        assert decoded.canonical_bytes() == env.canonical_bytes(), what
        decoded.verify()


def test_a_signature_of_the_right_length_that_is_not_64_bytes_of_hex_is_refused_when_read() -> None:
    env = seal(KEY, network_id="net", type="t", body={}, sender_org="org-a")
    for signature in (env.signature[:126] + " 0", " " * 128, env.signature[:127] + "g", env.signature.upper()[:127]):
        data = json.loads(env.encode())
        data["signature"] = signature
        with pytest.raises(FinP2PError) as info:
            Envelope.decode(json.dumps(data).encode())
        assert info.value.code is ErrorCode.MALFORMED, signature


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def test_a_body_or_chain_nested_too_deep_or_with_a_float_is_refused() -> None:
    from finp2p.edge.json_input import MAX_DEPTH

    env = seal(KEY, network_id="net", type="t", body={"ok": _nested(MAX_DEPTH - 2)}, sender_org="org-a")
    assert Envelope.decode(env.encode()).body == env.body  # as deep as may be
    wire = json.loads(env.encode())
    for where, deep in (("body", {"x": _nested(MAX_DEPTH)}), ("chain", [_nested(MAX_DEPTH)])):
        with pytest.raises(FinP2PError, match="nests deeper") as info:
            Envelope.decode(json.dumps({**wire, where: deep}).encode())
        assert info.value.code is ErrorCode.MALFORMED
    floating = Envelope.decode(json.dumps({**wire, "body": {"price": 1.5}}).encode())
    with pytest.raises(FinP2PError, match="floats have no canonical form") as info:
        floating.verify()
    assert info.value.code is ErrorCode.MALFORMED


def _decoded_both_ways(raw: bytes) -> Envelope | str:
    """``raw`` decoded with the envelope ends seen lately in the cache, and with none; both must agree."""
    from finp2p.network import envelope as module

    outcomes: list[Envelope | str] = []
    for cold in (False, True):
        saved = dict(module._chain_ends)
        if cold:
            module._chain_ends.clear()
        try:
            outcomes.append(Envelope.decode(raw))
        except FinP2PError as exc:
            outcomes.append(exc.code.code)
        finally:
            module._chain_ends.clear()
            module._chain_ends.update(saved)
    assert outcomes[0] == outcomes[1], outcomes
    return outcomes[0]


def test_an_envelope_ending_with_a_known_chain_decodes_as_if_parsed_whole(tmp_path: Any) -> None:
    from tests.support.world import make_world

    world = make_world(tmp_path)
    chain, other = tuple(world.user_chain()), tuple(world.org_chain())
    first = seal(KEY, network_id="net", type="t", body={"n": 1}, sender_org="org-a", chain=chain)
    assert Envelope.decode(first.encode()) == first  # and now its end is known
    second = seal(KEY, network_id="net", type="t", body={"n": 2}, sender_org="org-a", chain=chain)
    got = _decoded_both_ways(second.encode())
    assert got == second and isinstance(got, Envelope) and got.chain == chain
    # re-encoded canonically (keys sorted, the chain inside), as a broadcast's answers come: the chain decoded once
    resorted = [Envelope.decode(canonical(json.loads(e.encode()))) for e in (first, second)]
    assert resorted == [first, second] and resorted[0].chain is resorted[1].chain
    tail = first.encode()[first.encode().index(b',"chain":') :]
    wire = json.loads(second.encode())
    # a repeated chain member: the last one counts, as in a whole parse
    other_json = json.dumps([c.to_dict() for c in other]).encode()
    doubled = second.encode()[: -len(tail)] + b',"chain":' + other_json + tail
    decoded = _decoded_both_ways(doubled)
    assert isinstance(decoded, Envelope) and decoded.chain == chain
    # no envelope before the chain, or the chain's bytes inside a string: refused either way
    assert _decoded_both_ways(b"{" + tail[1:]) == "FP2001"
    assert _decoded_both_ways(b'{"note":"' + tail) == "FP2001"
    assert _decoded_both_ways(json.dumps({**wire, "version": 2}).encode()[:-1] + tail) == "FP2001"


def test_the_chains_of_many_members_certified_by_one_governance_node_are_each_decoded_once(tmp_path: Any) -> None:
    """Their chains all end with the same root credential: the ends of all of them are remembered, not the last."""
    from finp2p.network import envelope as module
    from tests.support.world import make_world

    world = make_world(tmp_path)
    members = [world.new_org(f"org-{i}") for i in range(5)]

    def sealed(i: int, n: int) -> Envelope:
        key, chain = members[i]
        return seal(key, network_id="net", type="t", body={"n": n}, sender_org=f"org-{i}", chain=tuple(chain))

    firsts = [Envelope.decode(sealed(i, 1).encode()) for i in range(len(members))]  # each chain seen once
    for i, decoded in enumerate(firsts):
        second = sealed(i, 2)
        assert module._known_chain_at_end(second.encode()) is not None
        again = Envelope.decode(second.encode())
        assert again == second and again.chain is decoded.chain
