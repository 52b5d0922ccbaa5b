from __future__ import annotations

import re

from finp2p import errors
from finp2p.errors import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_PLUGIN,
    EXIT_STORE,
    ErrorCode,
    FinP2PError,
    catalogue,
)


def test_codes_are_unique_and_well_formed() -> None:
    codes = [c.code for c in ErrorCode]
    assert len(codes) == len(set(codes))
    for c in ErrorCode:
        assert re.fullmatch(r"FP\d{4}", c.code), c
        assert c.title and c.title[0].islower(), c
        assert c.hint.endswith("."), f"{c.code}: the hint is a sentence that says what to do"


def test_codes_are_in_order_and_each_in_its_group() -> None:
    codes = [c.code for c in ErrorCode]
    assert codes == sorted(codes), "declare codes in numeric order, so the next free one is easy to find"
    groups = [g.replace("x", r"\d") for g in re.findall(r"^(FP[\dx]{4})\s", errors.__doc__ or "", re.M)]
    assert len(groups) >= 10
    for code in codes:
        assert any(re.fullmatch(g, code) for g in groups), f"{code} is outside the groups the module docstring lists"


def test_every_code_has_an_http_status_and_a_transient_classification() -> None:
    for c in ErrorCode:
        assert c.status in {400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504}, c
    transient = {c.name for c in ErrorCode if c.transient}
    assert {"LEDGER_UNREACHABLE", "LEDGER_TIMEOUT", "PEER_UNREACHABLE", "PEER_TIMEOUT"} <= transient
    assert not transient & {"LEDGER_INSUFFICIENT_BALANCE", "LEDGER_OPERATION_ID_USED", "OPERATION_ID_CONFLICT"}
    entry = next(e for e in catalogue() if e["code"] == "FP6015")
    assert entry["transient"] is True and entry["status"] == ErrorCode.LEDGER_TIMEOUT.status


def test_message_names_code_detail_and_hint() -> None:
    err = FinP2PError(ErrorCode.CONFIG_VALUE, "node.toml: store.pool_size: too small", key="store.pool_size")
    text = str(err)
    assert text.startswith("FP1003 invalid config value: node.toml: store.pool_size: too small.")
    assert ErrorCode.CONFIG_VALUE.hint in text
    assert err.to_dict()["context"] == {"key": "store.pool_size"}


def test_exit_status_follows_the_code_range() -> None:
    assert ErrorCode.CONFIG_SYNTAX.exit_status == EXIT_CONFIG
    assert ErrorCode.PLUGIN_STRICT.exit_status == EXIT_PLUGIN
    assert ErrorCode.STORE_TOO_NEW.exit_status == EXIT_STORE
    assert {row["code"] for row in catalogue()} == {c.code for c in ErrorCode}
    assert EXIT_FAILURE == 1
