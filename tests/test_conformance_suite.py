"""The ledger conformance suite itself: importable with pytest and hypothesis alone, and collected in the
subclasses a plugin writes, never on its own (run through pytest's own ``pytester``)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from finp2p.testing import LedgerConformance

pytest_plugins = ["pytester"]

SUITE_TESTS = sorted(name for name, _ in inspect.getmembers(LedgerConformance) if name.startswith("test_"))


def test_the_suite_imports_nothing_but_the_core_pytest_and_hypothesis() -> None:
    probe = (
        "import sys, finp2p.testing, finp2p.testing.ledger\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {"
        "'pytest_asyncio', 'web3', 'eth', 'eth_tester', 'finp2p_ethereum', 'finp2p_fabric', 'aiohttp', 'sqlalchemy'"
        "})))\n"
        "print('pytest' in sys.modules and 'hypothesis' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    unwanted, needed = done.stdout.splitlines()
    assert unwanted == "" and needed == "True", done.stdout


def test_the_suite_covers_what_every_ledger_must_do() -> None:
    assert len(SUITE_TESTS) >= 15, SUITE_TESTS
    for name in SUITE_TESTS:
        assert inspect.getdoc(getattr(LedgerConformance, name)), f"{name} says what it checks and which codes"


def test_only_subclasses_are_collected(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_plugin="""
        from finp2p.testing import LedgerConformance
        from finp2p.testing.ledger import LedgerConformance as Again


        class TestMyLedger(LedgerConformance):
            pass


        class MySuiteBase(LedgerConformance):
            __test__ = False  # an intermediate base says so itself


        class TestMyOtherLedger(MySuiteBase):
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q")
    collected = [line for line in result.outlines if "::" in line]
    expected = sorted(
        f"test_plugin.py::{cls}::{name}" for cls in ("TestMyLedger", "TestMyOtherLedger") for name in SUITE_TESTS
    )
    assert sorted(collected) == expected, result.outlines


def test_a_subclass_without_its_fixture_is_told_what_to_define(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_plugin="""
        from finp2p.testing import LedgerConformance


        class TestForgetful(LedgerConformance):
            pass
        """
    )
    result = pytester.runpytest("-q", "-k", "lifecycle")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*TestForgetful must define a `ledger_world` fixture*"])
