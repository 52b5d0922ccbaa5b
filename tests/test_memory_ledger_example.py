"""The example ledger plugin (``examples/memory-ledger``) as its author ships it: built into a wheel and
pip-installed, found through its entry point, and opened from its ledger profile by the node's own loader. Its
conformance tests are in ``examples/memory-ledger/tests``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.cli import cli_env, run_cli

EXAMPLE = Path(__file__).parents[1] / "examples" / "memory-ledger"


def test_the_installed_example_is_listed(memory_ledger_site: Path) -> None:
    result = run_cli("plugins", "--json", site=memory_ledger_site)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    memory = next(p for p in data["plugins"] if p["name"] == "memory")
    assert (memory["distribution"], memory["version"], memory["builtin"]) == ("finp2p-memory-ledger", "0.1.0", False)
    assert memory["provides"] == {"ledger": ["memory"]}
    assert data["problems"] == []
    assert "memory" not in {p["name"] for p in json.loads(run_cli("plugins", "--json").stdout)["plugins"]}, (
        "the example is installed only where a test puts it"
    )


def test_its_profile_opens_a_memory_ledger(memory_ledger_site: Path, tmp_path: Path) -> None:
    script = f"""
import asyncio, json
from pathlib import Path
from finp2p.components import ComponentContext
from finp2p.config import Settings
from finp2p.identity.keys import SigningKey
from finp2p.ledger_profiles import load_profile, open_ledger
from finp2p.plugins import PluginManager

async def main():
    profile = load_profile(Path({str(EXAMPLE / "memory.toml")!r}))
    ledger = open_ledger(profile, ComponentContext(Settings(), Path({str(tmp_path)!r}), PluginManager()))
    await ledger.start()
    alice = SigningKey.generate().fin_id
    await ledger.create_asset("bank-a:102:bond", {{}})
    tx = await ledger.issue("bank-a:102:bond", alice, 5, "i-1")
    balance = await ledger.balance("bank-a:102:bond", alice)
    await ledger.close()
    print(json.dumps([type(ledger).__module__, ledger.ledger_id, tx.submitter, balance.available]))

asyncio.run(main())
"""
    result = subprocess.run(
        [sys.executable, "-c", script], env=cli_env(memory_ledger_site), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["finp2p_memory_ledger.ledger", "memory:local", "operator", 5]
