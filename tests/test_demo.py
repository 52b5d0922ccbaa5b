"""`finp2p demo` runs its whole story on a real local network and stops every process it started."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.cli import run_cli

pytestmark = pytest.mark.slow


def test_the_demo_tells_its_whole_story(tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    r = run_cli("demo", "--json", "--keep", str(keep), timeout=300)
    assert r.returncode == 0, r.stderr + r.stdout
    result = json.loads(r.stdout)
    assert result["ok"] and len(result["steps"]) == 15
    by_title = {step["step"]: step["result"] for step in result["steps"]}
    assert "4 of 4 checks hold" in by_title["an auditor verifies the receipt (genesis and ledger only, no node)"]
    assert "dave holds 250 by 2 answers" in by_title["broadcast to the ledger's nodes: dave's balance"]
    assert "receipt is valid, consistent" in result["steps"][-1]["result"]
    assert sorted(result["processes"]) == ["bank-a", "bank-b", "bank-c", "gov-1"]
    for pid in result["processes"].values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # stopped, not left running
    assert list(keep.glob("**/node.log")), "logs are kept with --keep"
