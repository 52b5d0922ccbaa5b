"""The one JSON reader of every edge: peer envelopes and answers, the REST API, the ledger-adapter API, the served
chain's JSON-RPC, bundles and files given on the command line.

A document is refused before it is parsed when it is larger than the edge allows, and while it is parsed when it
nests deeper than ``max_depth``. Parsing is orjson's: it never recurses on the C stack past 1,024 levels, whatever
the interpreter's recursion limit (the Ethereum libraries raise that limit at import, and the standard library's
parser then overflows the C stack on a body of 200,000 ``[``). Every edge turns the refusal into its own error
(FP2001 for a peer, HTTP 400 for the APIs, JSON-RPC -32600 for the chain).

Integers beyond 64 bits are read as floats, which no signed FinP2P object contains and every check refuses:
quantities travel as decimal strings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from finp2p.errors import ErrorCode, FinP2PError

#: Nesting deeper than this is refused: FinP2P's objects (envelopes with credential chains, EIP-712 templates,
#: receipt bundles) nest fewer than 12 levels.
MAX_DEPTH = 32
#: Files given on the command line (bundles, credentials, revocation lists, genesis) are at most this large.
MAX_FILE_BYTES = 16 << 20


def read_json(
    data: bytes | bytearray | memoryview | str, *, what: str, max_bytes: int, max_depth: int | None = MAX_DEPTH
) -> Any:
    """Parse ``data`` as JSON, refusing it with FP3005 when it is over ``max_bytes`` and with FP2001 when it is
    not JSON or nests deeper than ``max_depth``. ``max_depth=None`` leaves the depth to a reader that checks each
    part of the document itself (:func:`check_depth`), some of them once for many documents."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    check_size(raw, what=what, max_bytes=max_bytes)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise _too_deep(what, max_depth or MAX_DEPTH) from None
        raise FinP2PError(ErrorCode.MALFORMED, f"{what} is not valid JSON: {exc}") from None
    if max_depth is not None and isinstance(value, dict | list) and not _within(value, max_depth):
        raise _too_deep(what, max_depth)
    return value


def read_json_object(
    data: bytes | bytearray | memoryview | str, *, what: str, max_bytes: int, max_depth: int | None = MAX_DEPTH
) -> dict[str, Any]:
    """:func:`read_json`, and the document must be an object."""
    value = read_json(data, what=what, max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(value, dict):
        raise FinP2PError(ErrorCode.MALFORMED, f"{what} must be a JSON object, got {_kind(value)}")
    return value


def read_json_file(path: Path, *, what: str | None = None, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """A JSON file given by a user: its size checked before it is read, then :func:`read_json`."""
    name = what or str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FinP2PError(ErrorCode.BODY_TOO_LARGE, f"{name} is {size} bytes, over the limit of {max_bytes}")
        raw = path.read_bytes()
    except OSError as exc:
        raise FinP2PError(ErrorCode.MALFORMED, f"cannot read {name}: {exc.strerror or exc}") from None
    return read_json(raw, what=name, max_bytes=max_bytes)


def check_size(raw: bytes | bytearray | memoryview, *, what: str, max_bytes: int) -> None:
    """FP3005 when ``raw`` is over ``max_bytes``."""
    if len(raw) > max_bytes:
        raise FinP2PError(ErrorCode.BODY_TOO_LARGE, f"{what} is {len(raw)} bytes, over the limit of {max_bytes}")


def check_depth(value: Any, *, what: str, max_depth: int) -> None:
    """FP2001 when ``value`` (parsed JSON) nests deeper than ``max_depth``."""
    if isinstance(value, dict | list) and not _within(value, max_depth):
        raise _too_deep(what, max_depth)


def _within(root: dict[str, Any] | list[Any], limit: int) -> bool:
    """Whether no container nests deeper than ``limit``: level by level, iteratively (the depth is what is being
    checked). Parsed JSON holds only exact dicts and lists, so their types are compared, not tested by isinstance."""
    level: list[Any] = [root]
    for _ in range(limit):
        deeper = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is dict or type(child) is list:
                    deeper.append(child)
        if not deeper:
            return True
        level = deeper
    return False


def _too_deep(what: str, limit: int) -> FinP2PError:
    return FinP2PError(ErrorCode.MALFORMED, f"{what} nests deeper than {limit} levels")


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), "null"
    )
