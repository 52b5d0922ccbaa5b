"""The commands a newcomer meets in the README, on their own: what they write, and how they refuse (the README's
own run, tests/test_readme.py, shows them working together on a live network)."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest

from finp2p.identity.keys import SigningKey, load_key
from tests.support.cli import run_cli


def test_config_init_writes_the_sections_a_node_needs_and_check_opens_their_files(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    config = tmp_path / "bank-a" / "node.toml"
    made = run_cli(
        "config", "init", str(config), "--name", "bank-a", "--api-port", "8101", "--ledger", "bank-a/hardhat.toml",
        "--adapter-port", "8080", "--adapter-token-file", "bank-a/adapter.token", cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    written = tomllib.loads(config.read_text())
    assert written["api"] == {"host": "127.0.0.1", "port": 8101}
    assert written["ledgers"]["profiles"] == ["hardhat.toml"]  # relative to the config's folder, as it is read
    assert written["adapter"] == {"port": 8080, "token_file": "adapter.token"}

    checked = run_cli("config", "check", str(config), cwd=tmp_path)
    assert checked.returncode == 1 and "FP6016" in checked.stderr and "hardhat.toml" in checked.stderr
    (config.parent / "hardhat.toml").write_text('kind = "ethereum"\nledger_id = "eip155:31337"\n[settings]\n')
    checked = run_cli("config", "check", str(config), cwd=tmp_path)
    assert checked.returncode == 3 and "adapter.token" in checked.stderr  # the token file, opened as the node will
    (config.parent / "adapter.token").write_text("a-long-enough-token-for-routers-0123456789\n")
    os.chmod(config.parent / "adapter.token", 0o600)
    checked = run_cli("config", "check", str(config), "--json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["ledgers"] == ["eip155:31337"]

    no_token = run_cli("config", "init", str(tmp_path / "x.toml"), "--adapter-port", "8080", cwd=tmp_path)
    assert no_token.returncode == 2 and "--adapter-token-file" in no_token.stderr


def test_a_wallet_key_is_private_printed_as_its_fin_id_and_never_overwritten(tmp_path: Path) -> None:
    made = run_cli("wallet", "new", "carol.key", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    fin_id = made.stdout.strip()
    assert load_key(tmp_path / "carol.key").fin_id == fin_id
    assert stat.S_IMODE((tmp_path / "carol.key").stat().st_mode) == 0o600
    shown = run_cli("wallet", "show", "carol.key", "--json", cwd=tmp_path)
    assert json.loads(shown.stdout)["fin_id"] == fin_id
    again = run_cli("wallet", "new", "carol.key", cwd=tmp_path)
    assert again.returncode == 2 and "never overwritten" in again.stderr
    assert load_key(tmp_path / "carol.key").fin_id == fin_id


def test_node_wait_and_stop_say_when_no_node_runs(tmp_path: Path) -> None:
    assert run_cli("config", "init", "node.toml", cwd=tmp_path).returncode == 0
    waited = run_cli("-c", "node.toml", "node", "wait", "--timeout", "0.3", cwd=tmp_path)
    assert waited.returncode == 1 and "does not serve after 0.3 s" in waited.stderr
    stopped = run_cli("-c", "node.toml", "node", "stop", cwd=tmp_path)
    assert stopped.returncode == 1 and "is not running" in stopped.stderr
    # A run file whose process is gone is no running node.
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "node.json").write_text(json.dumps({"pid": 2**22 + 12345, "name": "finp2p-node"}))
    assert run_cli("-c", "node.toml", "node", "wait", "--timeout", "0.2", cwd=tmp_path).returncode == 1


def test_approve_takes_a_registration_id_or_an_organization_not_both(tmp_path: Path) -> None:
    neither = run_cli("governance", "approve", cwd=tmp_path)
    both = run_cli("governance", "approve", "5bd79c724c4d7464", "--org", "bank-a", cwd=tmp_path)
    for answer in (neither, both):
        assert answer.returncode == 2 and "REGISTRATION_ID or --org" in answer.stderr


def test_the_wallet_signs_only_a_template_of_this_very_operation() -> None:
    """`operations submit --sign` reads the node's template before signing: its hash recomputed from its content,
    its terms the request's; a template for another destination, or whose hash was changed, is not signed."""
    from finp2p.cli.operations_cmd import _signable
    from finp2p.errors import FinP2PError
    from finp2p.identity.consent import operation_template
    from finp2p.ledger import OperationType

    alice, bob, mallory = (SigningKey.generate().fin_id for _ in range(3))
    body = {"operation": "transfer", "asset_id": "bank-a:102:bond", "quantity": 5, "operation_id": "t-1"}
    body |= {"source": alice, "destination": bob}

    def template_to(destination: str) -> dict[str, Any]:
        made = operation_template(
            OperationType.TRANSFER, "bank-a:102:bond", alice, destination, 5, "t-1", 0, 1, "0x" + "11" * 20
        )
        return {"template": made, "hashFunc": "keccak-256"}

    good = template_to(bob)
    assert _signable(body, good).hex() == good["template"]["hash"].removeprefix("0x")
    with pytest.raises(FinP2PError, match="destination"):
        _signable(body, template_to(mallory))
    tampered = json.loads(json.dumps(good))
    tampered["template"]["hash"] = "0x" + "00" * 32
    with pytest.raises(FinP2PError, match="hash"):
        _signable(body, tampered)
