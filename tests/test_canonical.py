"""The canonical encoding round-trips, and any change to a signed field breaks verification."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.canonical import canonical
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
    verify(decoded.sender, "envelope", decoded.signed_part(), decoded.signature)


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
