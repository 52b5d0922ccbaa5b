"""The edge checks on their own, fuzzed: the JSON reader, identifiers, quantities and times, and the decoders behind
every surface (peer envelopes, credentials, REST operations, adapter requests, registration requests, router
templates). Whatever comes in, each answers with a FinP2P error or a value, never anything else."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finp2p.edge import recursion
from finp2p.edge.identifiers import FIN_ID, LEDGER_ID, ORG_ID, RESOURCE_ID, TOKEN, TOPIC, IdentifierKind
from finp2p.edge.json_input import MAX_DEPTH, read_json
from finp2p.edge.numbers import MAX_QUANTITY, MAX_UNIX_S, check_unix_seconds, parse_quantity
from finp2p.edge.ratelimit import SlidingWindow
from finp2p.errors import ErrorCode, FinP2PError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=15,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


# -- the JSON reader --------------------------------------------------------------------------------------------------
@given(json_values)
def test_the_reader_reads_what_json_writes(value: Any) -> None:
    raw = json.dumps(value).encode()
    assert read_json(raw, what="x", max_bytes=len(raw)) == value


@given(st.binary(max_size=200))
def test_the_reader_answers_any_bytes_with_a_value_or_fp2001(raw: bytes) -> None:
    try:
        read_json(raw, what="x", max_bytes=1000)
    except FinP2PError as exc:
        assert exc.code is ErrorCode.MALFORMED


@given(st.integers(min_value=1, max_value=3 * MAX_DEPTH), st.sampled_from(["[", '{"a":']))
def test_nesting_is_bounded(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    raw = (opener * depth + "1" + closer * depth).encode()
    if depth <= MAX_DEPTH:
        assert _depth(read_json(raw, what="x", max_bytes=len(raw))) == depth
    else:
        with pytest.raises(FinP2PError) as exc:
            read_json(raw, what="x", max_bytes=len(raw))
        assert exc.value.code is ErrorCode.MALFORMED and "deeper" in exc.value.detail


def test_a_very_deep_body_is_refused_with_the_recursion_limit_raised_as_the_ethereum_stack_leaves_it() -> None:
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)  # what importing py_ecc does
    try:
        for raw in (b"[" * 200_000, b'{"a":' * 200_000):
            with pytest.raises(FinP2PError) as exc:
                read_json(raw, what="the body", max_bytes=1 << 20)
            assert exc.value.code is ErrorCode.MALFORMED
        recursion.restore()
        assert sys.getrecursionlimit() == recursion.SAFE_LIMIT
    finally:
        sys.setrecursionlimit(previous)


def test_size_is_checked_before_parsing() -> None:
    with pytest.raises(FinP2PError) as exc:
        read_json(b" " * 11, what="the body", max_bytes=10)
    assert exc.value.code is ErrorCode.BODY_TOO_LARGE


def test_loading_the_ethereum_plugin_leaves_the_recursion_limit_where_python_keeps_it(tmp_path: Any) -> None:
    from finp2p.components import ComponentContext
    from finp2p.config import Settings
    from finp2p.identity.local import LocalIdentity
    from finp2p.ledger_profiles import EMBEDDED_PROFILE, open_ledger
    from finp2p.plugins import PluginManager

    LocalIdentity(tmp_path).key(create=True)
    plugins = PluginManager()
    assert sys.getrecursionlimit() <= recursion.SAFE_LIMIT
    ledger = open_ledger(EMBEDDED_PROFILE, ComponentContext(Settings(), tmp_path, plugins))
    assert sys.getrecursionlimit() <= recursion.SAFE_LIMIT
    assert ledger.ledger_id == EMBEDDED_PROFILE.ledger_id


# -- identifiers ------------------------------------------------------------------------------------------------------
KINDS = [ORG_ID, FIN_ID, RESOURCE_ID, TOKEN, TOPIC, LEDGER_ID]
VALID = {
    "org id": "bank-a",
    "FinID": "02" + "ab" * 32,
    "resource id": "bank-a:101:alice",
    "id": "op-1",
    "topic": "news/bonds",
    "ledger id": "eip155:31337",
}


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_identifiers_are_matched_whole(kind: IdentifierKind) -> None:
    good = VALID[kind.name]
    assert kind.check(good) == good
    for bad in (good + "\n", "\n" + good, good + "\x00", good + " ", good[:-1] + "\u0430", "", 5, None):
        assert not kind.matches(bad), repr(bad)
        with pytest.raises(FinP2PError):
            kind.check(bad)


@given(st.sampled_from(KINDS), st.text(max_size=300))
def test_an_identifier_is_ascii_printable_and_bounded(kind: IdentifierKind, text: str) -> None:
    if kind.matches(text):
        assert text.isascii() and text.isprintable() and "\n" not in text and 0 < len(text) <= 300
        assert re.fullmatch(kind.pattern, text)


# -- quantities and times ---------------------------------------------------------------------------------------------
@given(st.text(max_size=90))
def test_a_quantity_is_ascii_digits_within_range_or_refused(text: str) -> None:
    try:
        value = parse_quantity(text)
    except FinP2PError as exc:
        assert exc.code is ErrorCode.LEDGER_INVALID_QUANTITY
        return
    assert text.isascii() and text.replace(".", "", 1).isdigit()
    assert 0 < value <= MAX_QUANTITY


@pytest.mark.parametrize("text", ["²", "١٢٣", "9" * 5000, "1e3", " 5", "5\n", "0", "-1", "0x10", "1.5", str(2**256)])
def test_quantities_that_are_not_numbers_as_the_spec_means_them(text: str) -> None:
    with pytest.raises(FinP2PError):
        parse_quantity(text)


@given(st.integers(min_value=1, max_value=MAX_QUANTITY))
def test_every_quantity_in_range_reads_back(value: int) -> None:
    assert parse_quantity(str(value)) == value == parse_quantity(f"{value}.000")


@given(st.one_of(st.integers(), st.booleans(), st.text(max_size=5), st.floats()))
def test_times_are_unix_seconds_up_to_the_year_9999(value: Any) -> None:
    try:
        assert 0 <= check_unix_seconds(value, "t") <= MAX_UNIX_S
    except FinP2PError as exc:
        assert exc.code is ErrorCode.OPERATION_INVALID


# -- decoders behind the surfaces -------------------------------------------------------------------------------------
@settings(max_examples=200)
@given(json_values)
def test_the_decoders_answer_anything_with_a_finp2p_error(value: Any) -> None:
    from finp2p.adapter import schemas
    from finp2p.assets import router_templates
    from finp2p.assets.operations import OperationRequest
    from finp2p.governance.authority import check_request
    from finp2p.identity.credentials import Credential
    from finp2p.network.envelope import Envelope

    raw = json.dumps(value).encode()
    for decode in (
        lambda: Envelope.decode(raw),
        lambda: Credential.from_dict(value),
        lambda: OperationRequest.from_body(value),
        lambda: schemas.check("transfer", value),
        lambda: router_templates.read(value),
        lambda: check_request(value, "02" + "ab" * 32, devnet=True) if isinstance(value, dict) else None,
    ):
        with contextlib.suppress(FinP2PError):
            decode()


def test_a_registration_names_its_org_id_whole() -> None:
    from finp2p.governance.authority import check_request

    for org_id in ("bank-a\n", "bank-a ", "BANK-A", "bank-\u0430"):
        with pytest.raises(FinP2PError) as exc:
            check_request({"org_id": org_id, "name": "A"}, "02" + "ab" * 32, devnet=True)
        assert exc.value.code is ErrorCode.MALFORMED and "org_id" in exc.value.detail


def test_a_credential_is_never_issued_for_a_look_alike() -> None:
    from finp2p.identity import credentials
    from finp2p.identity.keys import SigningKey

    key = SigningKey.generate()
    for org_id, name in (("bank-a\n", "A"), ("bank-a", "A\u202e"), ("bank-a", "A\nB")):
        with pytest.raises(FinP2PError):
            credentials.issue(key, network_id="net", role="organization", subject=key.fin_id, name=name, org_id=org_id)


def test_a_sliding_window_counts_per_key_and_forgets() -> None:
    now = [0.0]
    window = SlidingWindow(3, 10, max_keys=2, clock=lambda: now[0])
    assert [window.allow("a") for _ in range(4)] == [True, True, True, False]
    assert window.retry_after("a") == 10
    now[0] = 10.5
    assert window.allow("a")
    assert window.allow("b") and window.allow("c")  # "a" is forgotten: only two keys are kept
    assert len(window._events) == 2
