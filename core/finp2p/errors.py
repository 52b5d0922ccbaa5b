"""Every error a user of the node can meet: a stable code, a title and a sentence that says what to do.

Codes are grouped by the part of the node that raises them, and never reused or renumbered once released:

======  ===========================================
FP10xx  configuration
FP11xx  plugins
FP12xx  store and migrations
FP2xxx  identity, credentials, envelopes
FP3xxx  messaging and transports
FP4xxx  adverts and discovery
FP5xxx  privacy and ACLs
FP6xxx  ledgers
FP7xxx  asset transactions and receipts
FP8xxx  REST and adapter APIs
======  ===========================================

``finp2p errors`` prints the whole catalogue.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.Enum):
    """The catalogue. Each member is ``(code, title, what the user should do)``."""

    # -- configuration ---------------------------------------------------------------------------------------
    CONFIG_NOT_FOUND = (
        "FP1001",
        "config file not found",
        "Check the path, or create one with `finp2p config init`.",
    )
    CONFIG_SYNTAX = (
        "FP1002",
        "config file is not valid TOML",
        "Fix the TOML syntax at the line and column given.",
    )
    CONFIG_VALUE = ("FP1003", "invalid config value", "Set the key named to a value of the expected kind.")
    CONFIG_UNKNOWN_SECTION = (
        "FP1004",
        "unknown config section",
        "Remove the section, or install and enable the plugin that defines it (see `finp2p plugins`).",
    )
    CONFIG_ENV = (
        "FP1005",
        "invalid environment override",
        "Fix or unset the FINP2P_<SECTION>__<KEY> variable named.",
    )
    # -- plugins ---------------------------------------------------------------------------------------------
    PLUGIN_IMPORT = (
        "FP1101",
        "plugin failed to import",
        "Reinstall the distribution named, or uninstall it; `finp2p plugins` shows what is loaded.",
    )
    PLUGIN_HOOK_SIGNATURE = (
        "FP1102",
        "plugin implements a hook wrongly",
        "The plugin was written for another version of the hook specs: upgrade the plugin or finp2p.",
    )
    PLUGIN_BAD_RESULT = (
        "FP1103",
        "plugin returned an invalid value",
        "Report it to the plugin's authors; the hook's docstring in finp2p.hookspecs says what is expected.",
    )
    PLUGIN_STRICT = (
        "FP1104",
        "plugins failed to load in strict mode",
        "Fix or uninstall the plugins listed, or start without --strict to skip them.",
    )
    PLUGIN_CONFLICT = (
        "FP1105",
        "two plugins provide the same component",
        "Uninstall one of them, or disable one with `plugins.disabled` in the config.",
    )
    PLUGIN_UNKNOWN_KIND = (
        "FP1106",
        "no plugin provides this component",
        "Install the plugin distribution that provides it; `finp2p plugins` lists what is available.",
    )
    # -- store -----------------------------------------------------------------------------------------------
    STORE_URL = (
        "FP1201",
        "unsupported database URL",
        "Use sqlite:///PATH or postgresql://USER@HOST:PORT/DB in store.url.",
    )
    STORE_UNREACHABLE = (
        "FP1202",
        "database unreachable",
        "Check that the database server runs and that store.url names the right host, port, user and database.",
    )
    STORE_TOO_NEW = (
        "FP1203",
        "database schema is newer than this finp2p",
        "Upgrade finp2p to the version that last wrote this database, or point store.url at another database.",
    )
    STORE_MIGRATION = (
        "FP1204",
        "database migration failed",
        "Restore the database from its backup, then report the error with the finp2p version.",
    )

    def __init__(self, code: str, title: str, hint: str) -> None:
        self.code = code
        self.title = title
        self.hint = hint

    @property
    def exit_status(self) -> int:
        """The CLI exit status for this error (see ``finp2p --help``)."""
        return _EXIT_STATUS.get(self.code[:4], EXIT_FAILURE)


#: CLI exit statuses. 2 is click's own for usage errors.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_PLUGIN = 4
EXIT_STORE = 5
_EXIT_STATUS = {"FP10": EXIT_CONFIG, "FP11": EXIT_PLUGIN, "FP12": EXIT_STORE}


class FinP2PError(Exception):
    """An error with a catalogue code. ``detail`` says what happened in this case; the hint says what to do."""

    def __init__(self, code: ErrorCode, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.context = context

    def __str__(self) -> str:
        return f"{self.code.code} {self.code.title}: {self.detail}. {self.code.hint}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code.code,
            "title": self.code.title,
            "detail": self.detail,
            "hint": self.code.hint,
        }
        if self.context:
            out["context"] = self.context
        return out


def catalogue() -> list[dict[str, str]]:
    return [{"code": c.code, "name": c.name, "title": c.title, "hint": c.hint} for c in ErrorCode]
