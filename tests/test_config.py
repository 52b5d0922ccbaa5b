from __future__ import annotations

import json
from pathlib import Path

import pytest

from finp2p.config import DEFAULT_CONFIG, load_settings, open_config
from finp2p.errors import EXIT_CONFIG, ErrorCode, FinP2PError
from tests.support.cli import run_cli


def write(tmp_path: Path, text: str, name: str = "node.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path | None, env: dict[str, str] | None = None) -> FinP2PError:
    with pytest.raises(FinP2PError) as info:
        open_config(path, env=env or {})
    return info.value


def test_valid_file_gives_typed_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [node]
        name = "org-a"
        data_dir = "state"
        [store]
        pool_size = 4
        [compliance]
        blocked_fin_ids = ["02ab"]
        max_quantity = { "orgB:102:bond" = 1000 }
        """,
    )
    settings, pm = open_config(path, env={})
    assert settings.node.name == "org-a"
    assert settings.data_dir == (tmp_path / "state").resolve()
    assert settings.store.pool_size == 4
    assert settings.store_url == f"sqlite:///{(tmp_path / 'state' / 'finp2p.db').resolve()}"
    compliance = settings.sections["compliance"]
    assert compliance.model_dump()["max_quantity"] == {"orgB:102:bond": 1000}
    assert pm.kind("acl", "sql").name == "sql"


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, env={})
    assert settings.node.name == "finp2p-node"
    assert settings.data_dir == (tmp_path / "data").resolve()
    assert settings.acl.backend == "sql"


def test_the_default_config_template_is_valid(tmp_path: Path) -> None:
    settings, _ = open_config(write(tmp_path, DEFAULT_CONFIG.format(name="bank-x")), env={})
    assert settings.node.name == "bank-x"


def test_missing_file(tmp_path: Path) -> None:
    err = error_of(tmp_path / "nope.toml")
    assert err.code is ErrorCode.CONFIG_NOT_FOUND
    assert "nope.toml" in err.detail


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[node]\nname = "a"\npool_size = = 3\n')
    err = error_of(path)
    assert err.code is ErrorCode.CONFIG_SYNTAX
    assert str(path) in err.detail and "line 3" in err.detail


def test_wrong_type_names_file_key_and_expectation(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\npool_size = "many"\n')
    err = error_of(path)
    assert err.code is ErrorCode.CONFIG_VALUE
    assert f"{path}: store.pool_size: Input should be a valid integer" in err.detail
    assert "'many'" in err.detail


def test_out_of_range_value(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "[store]\npool_size = 0\n"))
    assert "store.pool_size: Input should be greater than or equal to 1 (got 0)" in err.detail


def test_bad_choice(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, '[log]\nlevel = "LOUD"\n'))
    assert "log.level: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'" in err.detail


def test_unknown_key_lists_the_known_ones(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, '[node]\nnmae = "typo"\n'))
    assert err.code is ErrorCode.CONFIG_VALUE
    assert "node.nmae: unknown key (keys of [node]: name, data_dir)" in err.detail


def test_unknown_section(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "[ethereum]\nrpc = 'x'\n"))
    assert err.code is ErrorCode.CONFIG_UNKNOWN_SECTION
    assert "[ethereum]" in err.detail and "compliance" in err.detail


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, 'store = "sqlite:///x.db"\n'))
    assert "[store] must be a table, got a string" in err.detail


def test_bad_database_url(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, '[store]\nurl = "mysql://db/x"\n'))
    assert "store.url" in err.detail and "postgresql://" in err.detail


def test_plugin_section_is_validated_by_its_model(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "[compliance]\nmax_quantity = { bond = -1.5 }\n"))
    assert "compliance.max_quantity.bond" in err.detail


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "[store]\npool_size = 0\n[log]\nlevel = 3\n"))
    assert len(err.context["errors"]) == 2


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[store]\npool_size = 4\n")
    env = {
        "FINP2P_STORE__POOL_SIZE": "16",
        "FINP2P_NODE__NAME": "from-env",
        "FINP2P_COMPLIANCE__BLOCKED_FIN_IDS": '["02aa", "03bb"]',
        "FINP2P_CONFIG": "ignored: not an override",
    }
    settings, _ = open_config(path, env=env)
    assert settings.store.pool_size == 16
    assert settings.node.name == "from-env"
    assert settings.sections["compliance"].model_dump()["blocked_fin_ids"] == ["02aa", "03bb"]


def test_bad_environment_override_names_the_variable(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, ""), env={"FINP2P_STORE__POOL_SIZE": "lots"})
    assert err.code is ErrorCode.CONFIG_ENV
    assert "environment variable FINP2P_STORE__POOL_SIZE: store.pool_size" in err.detail


def test_malformed_environment_override(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, ""), env={"FINP2P_STORE__": "x"})
    assert err.code is ErrorCode.CONFIG_ENV


def test_cli_config_check_accepts_a_good_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[node]\nname = "org-a"\n')
    result = run_cli("config", "check", str(path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["node"] == "org-a"


def test_cli_config_check_rejects_a_bad_file_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[store]\npool_size = -3\n")
    result = run_cli("config", "check", str(path))
    assert result.returncode == EXIT_CONFIG
    assert "FP1003" in result.stderr and "store.pool_size" in result.stderr and str(path) in result.stderr
    as_json = json.loads(run_cli("config", "check", str(path), "--json").stdout)
    assert as_json["ok"] is False and as_json["error"]["code"] == "FP1003"


def test_cli_config_init_writes_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "node.toml"
    assert run_cli("config", "init", str(path), "--name", "org-z").returncode == 0
    assert run_cli("config", "init", str(path)).returncode == 2  # exists: refused without --force
    assert run_cli("config", "check", str(path)).returncode == 0
