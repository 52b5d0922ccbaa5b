"""Quantities and times as the spec means them: ASCII decimal digits within the ledger's range, and times within a
range a calendar has. Anything else is refused before an operation is written (Python's own parsers accept
``"١٢٣"`` as 123, ``"²"`` as a digit, and integers of thousands of digits)."""

from __future__ import annotations

import re
from typing import Any

from finp2p.errors import ErrorCode, FinP2PError

#: The largest quantity a ledger holds (a uint256 on Ethereum, the same bound on Fabric).
MAX_QUANTITY = 2**256 - 1
#: The last second of the year 9999: no hold expiry or timestamp is later.
MAX_UNIX_S = 253_402_300_799
MAX_UNIX_MS = MAX_UNIX_S * 1000 + 999
_DECIMAL = re.compile(r"([0-9]{1,78})(?:\.([0-9]{1,78}))?", re.ASCII)


def parse_quantity(value: Any, what: str = "quantity", *, code: ErrorCode = ErrorCode.LEDGER_INVALID_QUANTITY) -> int:
    """A positive whole quantity, from an integer or an ASCII decimal string (``"40"``, ``"40.0"``); FP6012 (or
    ``code``) for anything else, a fraction or a number beyond 2^256-1 included."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and (match := _DECIMAL.fullmatch(value)) is not None:
        whole, fraction = match.groups()
        if fraction is not None and fraction.strip("0"):
            raise FinP2PError(code, f"{what} {value!r} is not a whole number of the asset's smallest unit")
        number = int(whole)
    else:
        raise FinP2PError(code, f"{what} {_show(value)} is not a decimal number of ASCII digits")
    if not 0 < number <= MAX_QUANTITY:
        raise FinP2PError(code, f"{what} {_show(value)} is not between 1 and 2^256-1")
    return number


def check_unix_seconds(value: Any, what: str, *, code: ErrorCode = ErrorCode.OPERATION_INVALID) -> int:
    """A unix time in seconds (or 0 for none) no later than the year 9999."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UNIX_S:
        raise FinP2PError(code, f"{what} {_show(value)} is not a unix time in seconds (0 to {MAX_UNIX_S})")
    return value


def check_unix_ms(value: Any, what: str, *, code: ErrorCode = ErrorCode.MALFORMED) -> int:
    """A unix time in milliseconds no later than the year 9999."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UNIX_MS:
        raise FinP2PError(code, f"{what} {_show(value)} is not a unix time in milliseconds")
    return value


def parse_count(value: Any, what: str, *, low: int, high: int, code: ErrorCode = ErrorCode.OPERATION_INVALID) -> int:
    """A whole number from ``low`` to ``high``: an integer, or ASCII digits (a query parameter)."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value, re.ASCII):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FinP2PError(code, f"{what} must be a whole number from {low} to {high}, not {_show(value)}")
    return value


def parse_seconds(text: str, what: str, *, maximum: float, code: ErrorCode = ErrorCode.OPERATION_INVALID) -> float:
    """A duration given as ASCII decimal text (a query parameter such as ``wait=5``), between 0 and ``maximum``."""
    if not re.fullmatch(r"[0-9]{1,6}(\.[0-9]{1,6})?", text, re.ASCII):
        raise FinP2PError(code, f"{what} {_show(text)} is not a number of seconds")
    return min(float(text), maximum)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
