"""Plugin discovery through real entry points of pip-installed distributions, and how broken ones are reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finp2p.errors import EXIT_PLUGIN
from tests.support.cli import FINP2P, cli_env, run_cli

BROKEN = {
    "import-fails": "FP1101",
    "missing-module": "FP1101",
    "bad-signature": "FP1102",
    "unknown-hook": "FP1102",
    "steals-sql": "FP1105",
}


def plugins_json(*args: str, site: Path | None = None) -> dict:  # type: ignore[type-arg]
    result = run_cli(*args, "plugins", "--json", site=site)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_builtin_plugins_are_listed() -> None:
    data = plugins_json()
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["sql-acl"]["builtin"] and by_name["sql-acl"]["provides"] == {"acl": ["sql"]}
    assert by_name["https-transport"]["provides"] == {"transport": ["https"]}
    assert by_name["compliance-rules"]["provides"] == {"config": ["compliance"], "policy": ["check_transfer"]}
    assert data["problems"] == []


def test_an_installed_distribution_is_discovered(plugin_site: Path) -> None:
    data = plugins_json(site=plugin_site)
    names = [p["name"] for p in data["plugins"]]
    assert names[:3] == ["https-transport", "sql-acl", "compliance-rules"], "built-ins come first"
    paper = next(p for p in data["plugins"] if p["name"] == "paper")
    assert paper["distribution"] == "finp2p-test-plugin" and paper["version"] == "1.2.3"
    assert not paper["builtin"]
    assert paper["provides"] == {
        "acl": ["file"],
        "ledger": ["paper"],
        "config": ["paper"],
        "commands": ["paper-hello"],
        "policy": ["check_transfer"],
    }


def test_broken_plugins_are_reported_with_distribution_and_reason(plugin_site: Path) -> None:
    data = plugins_json(site=plugin_site)
    problems = {p["plugin"]: p for p in data["problems"]}
    assert {k: v["code"] for k, v in problems.items()} == BROKEN
    for p in problems.values():
        assert p["distribution"] == "finp2p-broken-plugins"
    assert "finp2p_missing_dependency" in problems["import-fails"]["detail"]
    assert "loop_count" in problems["bad-signature"]["detail"]
    assert "finp2p_node_startd" in problems["unknown-hook"]["detail"]
    assert "provided already by plugin 'sql-acl'" in problems["steals-sql"]["detail"]
    loaded = {p["name"] for p in data["plugins"]}
    assert "bad-signature" not in loaded and "unknown-hook" not in loaded
    # The text listing says each one is skipped, and the command still succeeds.
    text = run_cli("plugins", site=plugin_site)
    assert text.returncode == 0
    assert text.stdout.count("skipped") == len(BROKEN)


def test_strict_mode_refuses(plugin_site: Path) -> None:
    result = run_cli("--strict", "plugins", site=plugin_site)
    assert result.returncode == EXIT_PLUGIN
    assert "FP1104" in result.stderr and "finp2p-broken-plugins" in result.stderr


def test_disabled_plugins_are_not_loaded(plugin_site: Path, tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(f"[plugins]\nstrict = true\ndisabled = {json.dumps(sorted(BROKEN))}\n")
    data = plugins_json("-c", str(config), site=plugin_site)
    assert data["problems"] == []
    assert "paper" in {p["name"] for p in data["plugins"]}


def test_a_plugin_command_runs(plugin_site: Path) -> None:
    result = run_cli("paper-hello", "bob", site=plugin_site)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "paper says hello to bob"
    assert "paper-hello" in run_cli("--help", site=plugin_site).stdout


def test_a_plugin_config_section_is_validated(plugin_site: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[paper]\ngreeting = 'hi'\n")
    assert run_cli("config", "check", str(good), site=plugin_site).returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[paper]\nunlucky = 'thirteen'\n")
    result = run_cli("config", "check", str(bad), site=plugin_site)
    assert result.returncode == 3 and "paper.unlucky" in result.stderr
    assert run_cli("config", "check", str(good)).returncode == 3, "without the plugin, [paper] is unknown"


def test_plugin_hooks_are_called_through_the_node_lifecycle(plugin_site: Path, tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text("[node]\nname = 'org-paper'\n[plugins]\ndisabled = " + json.dumps(sorted(BROKEN)) + "\n")
    events = tmp_path / "data" / "paper-events.jsonl"
    proc = subprocess.Popen(
        [str(FINP2P), "-c", str(config), "node", "start"],
        env=cli_env(plugin_site),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not events.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert events.exists(), proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines == [{"event": "started", "node": "org-paper"}, {"event": "stopping", "node": "org-paper"}]
    assert (tmp_path / "data" / "finp2p.db").exists(), "the node migrated its store on start"


def test_an_installed_compliance_check_vetoes_a_transfer(plugin_site: Path, tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text("[paper]\nunlucky = 7\n[plugins]\ndisabled = " + json.dumps(sorted(BROKEN)) + "\n")
    script = f"""
import asyncio, json
from pathlib import Path
from finp2p.node import Node
from finp2p.compliance import TransferCheck

async def main():
    node = Node.from_config(Path({str(config)!r}))
    out = {{}}
    for q in (6, 7):
        found = await node.check_transfer(TransferCheck("orgB:102:bond", "transfer", q, "02aa", "03bb"))
        out[q] = [[v.plugin, v.rule, v.reason] for v in found]
    ledger = node.plugins.kind("ledger", "paper").factory({{"x": 1}}, node.context)
    out["ledger"] = ledger.settings
    print(json.dumps(out))

asyncio.run(main())
"""
    result = subprocess.run(
        [sys.executable, "-c", script], env=cli_env(plugin_site), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["6"] == []
    assert out["7"] == [["paper", "unlucky", "7 is unlucky"]]
    assert out["ledger"] == {"x": 1}


def test_the_command_list_of_help_is_each_commands_own_line() -> None:
    """``finp2p --help`` lists the built-in commands without importing them: its lines must be theirs."""
    import importlib

    from finp2p.cli.main import COMMANDS

    for name, (module, attribute, line) in COMMANDS.items():
        command = getattr(importlib.import_module(module), attribute)
        assert command.name == name and command.get_short_help_str(1000) == line, name
    assert __import__("finp2p").__version__ == __import__("importlib.metadata").metadata.version("finp2p")


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["plugins"],
        ["config"],
        ["config", "check"],
        ["node"],
        ["store"],
        ["errors"],
        ["receipt", "verify"],
        ["devnet", "up"],
        ["ethereum", "deploy"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0 and "Usage: finp2p" in result.stdout
