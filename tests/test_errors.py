from __future__ import annotations

import re

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
