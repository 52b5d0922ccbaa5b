"""The node's configuration: a TOML file, then ``FINP2P_<SECTION>__<KEY>`` environment overrides, validated into
typed settings. Plugins add sections through the ``finp2p_config_sections`` hook.

An override's value is read as a TOML value when it is one (``true``, ``8``, ``["a", "b"]``) and as a string
otherwise, so ``FINP2P_STORE__URL=postgresql://db/finp2p`` and ``FINP2P_STORE__POOL_SIZE=16`` both work. Nested
keys take more ``__``: ``FINP2P_ETHEREUM__GAS__LIMIT``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from finp2p.config_source import read_raw
from finp2p.edge.limits import ServerLimits
from finp2p.errors import ErrorCode, FinP2PError

if TYPE_CHECKING:
    from finp2p.plugins import PluginManager

DEFAULT_DB_FILE = "finp2p.db"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeSection(_Section):
    name: str = Field("finp2p-node", min_length=1, max_length=100, description="A label for logs and the CLI.")
    data_dir: Path = Field(Path("data"), description="Where the node keeps its state; relative to the config file.")


class StoreSection(_Section):
    url: str | None = Field(None, description="sqlite:///PATH or postgresql://…; default: SQLite in data_dir.")
    sqlite_synchronous: Literal["NORMAL", "FULL", "EXTRA"] = "FULL"
    pool_size: int = Field(8, ge=1, le=64)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from finp2p.store.engine import normalise_url  # SQLAlchemy, imported only when a URL is given

        try:
            return normalise_url(value)
        except FinP2PError as exc:
            raise ValueError(f"expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB ({exc.detail})") from None


class PluginsSection(_Section):
    strict: bool = Field(False, description="Refuse to start when a plugin fails to load.")
    disabled: list[str] = Field(default_factory=list, description="Plugin names not to load.")


class LogSection(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class AclSection(BaseModel):
    """``backend`` names the ACL backend kind; other keys are that backend's own settings."""

    model_config = ConfigDict(extra="allow", frozen=True)
    backend: str = Field("sql", min_length=1)


class IdentitySection(_Section):
    genesis: Path | None = Field(None, description="The network's genesis file; relative to the config file.")
    passphrase_file: Path | None = Field(None, description="Passphrase of the FinID key (else FINP2P_KEY_PASSPHRASE).")
    revocation_poll_s: float = Field(30.0, gt=0, le=3600, description="How often members fetch revocation lists.")


class PeerSection(_Section):
    transport: str = Field("https", min_length=1)
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int | None = Field(None, ge=0, le=65535, description="Port to listen on; default: the registered one.")
    public_url: str | None = Field(None, description="How peers reach this node; default: the registered one.")
    max_body_bytes: int = Field(1 << 20, ge=1024, le=64 << 20)
    clock_window_s: float = Field(120.0, ge=1, le=3600, description="Accepted difference of message timestamps.")


class GovernanceSection(_Section):
    enabled: bool = Field(False, description="Run this node as a governance (rendezvous) node.")
    auto_approve: list[str] = Field(default_factory=list, description="Devnets only: org ids admitted unreviewed.")
    credential_days: int = Field(365, ge=1, le=3650)
    sync_s: float = Field(30.0, gt=0, le=3600, description="How often the registrar catches up with the others.")


class AdvertSection(_Section):
    ledgers: list[str] = Field(default_factory=list, description="Ledger ids this node serves as a primary node.")
    groups: list[str] = Field(default_factory=list, description="Named groups this organization belongs to.")
    optional_capabilities: list[str] = Field(
        default_factory=lambda: ["finp2p.private-data", "finp2p.asset-transaction"],
        description="Optional protocols to advertise (see finp2p.network.capabilities).",
    )
    lifetime_s: float = Field(3600.0, ge=10, le=7 * 86400, description="How long an advert is valid.")
    check_s: float = Field(2.0, gt=0, le=600, description="How often the node checks whether to re-advertise.")


class ApiSection(_Section):
    host: str = Field("127.0.0.1", description="Where the REST API listens: the organization's own network.")
    port: int | None = Field(None, ge=0, le=65535, description="Its port; no port, no REST API.")


class LedgersSection(_Section):
    profiles: list[Path] = Field(
        default_factory=list, description="Ledger profiles (files in chains/) to open at start; relative to the config."
    )
    receipts_on: str | None = Field(
        None, description="Ledger id whose receipt registry records received receipts; default: the first profile's."
    )


class OperationsSection(_Section):
    """How long this node, as the requester, keeps trying to reach the asset's primary node for an operation."""

    deadline_s: float = Field(
        3600.0,
        ge=1,
        le=30 * 86400,
        description="After this long without a definite answer an operation ends (FP7013 or FP7014); a request may "
        "ask for its own (deadline_s).",
    )
    retry_max_s: float = Field(30.0, gt=0, le=3600, description="The longest wait between two attempts.")


class ReceiptsSection(_Section):
    """The EIP-712 domain receipts are signed in. FinP2P's routers are configured per network; the defaults are
    FinP2P's published values."""

    chain_id: int = Field(1, ge=0, le=2**63, description="The domain's chainId.")
    verifying_contract: str = Field(
        "0x" + "00" * 20, pattern=r"^0x[0-9a-fA-F]{40}$", description="The domain's verifyingContract."
    )


class LimitsSection(_Section):
    """What every server of the node allows one client (see :mod:`finp2p.edge.http`); the defaults suit a real
    deployment."""

    header_timeout_s: float = Field(10.0, gt=0, le=600, description="A request's headers must arrive within this.")
    body_timeout_s: float = Field(30.0, gt=0, le=3600, description="A request's body must arrive within this.")
    idle_timeout_s: float = Field(60.0, gt=0, le=3600, description="An idle connection is closed after this.")
    connections_per_client: int = Field(256, ge=1, le=100_000, description="Open connections per client address.")
    registrations_per_address: int = Field(
        20, ge=1, le=100_000, description="Registration requests a governance node takes from one address per window."
    )
    registrations_per_org: int = Field(
        5, ge=1, le=100_000, description="Registration requests a governance node takes for one org id per window."
    )
    registration_window_s: float = Field(60.0, gt=0, le=86_400, description="The window of the two limits above.")

    def server(self) -> ServerLimits:
        return ServerLimits(
            header_timeout_s=self.header_timeout_s,
            body_timeout_s=self.body_timeout_s,
            idle_timeout_s=self.idle_timeout_s,
            max_connections_per_client=self.connections_per_client,
        )


class AdapterSection(_Section):
    port: int | None = Field(
        None, ge=0, le=65535, description="Serve FinP2P's ledger-adapter API on this port; no port, no adapter."
    )
    host: str = Field("127.0.0.1", description="Where the ledger-adapter API listens.")
    base_path: str = Field("/api", description="The path the ledger-adapter API is served under.")
    ledger: str | None = Field(
        None, description="The ledger id it serves (one of [ledgers] profiles); default: the first."
    )
    callback_url: str | None = Field(
        None, description="The router's base URL: results are POSTed to <url>/operations/callback/<cid>."
    )
    sign_receipts: bool = Field(True, description="Receipts carry the node's EIP-712 signature proof (FinID key).")
    token_file: Path | None = Field(
        None, description="A file (mode 0600) holding the bearer token every request must carry: required."
    )
    insecure_no_auth: bool = Field(
        False, description="Serve without a token: anyone who reaches the port moves units. Loopback hosts only."
    )


CORE_SECTIONS: dict[str, type[BaseModel]] = {
    "node": NodeSection,
    "store": StoreSection,
    "plugins": PluginsSection,
    "log": LogSection,
    "acl": AclSection,
    "identity": IdentitySection,
    "peer": PeerSection,
    "governance": GovernanceSection,
    "advert": AdvertSection,
    "api": ApiSection,
    "ledgers": LedgersSection,
    "adapter": AdapterSection,
    "limits": LimitsSection,
    "receipts": ReceiptsSection,
    "operations": OperationsSection,
}


class Settings(BaseModel):
    """Validated settings. ``sections`` holds the plugin-declared sections, validated by their models."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    node: NodeSection = NodeSection()
    store: StoreSection = StoreSection()
    plugins: PluginsSection = PluginsSection()
    log: LogSection = LogSection()
    acl: AclSection = AclSection()
    identity: IdentitySection = IdentitySection()
    peer: PeerSection = PeerSection()
    governance: GovernanceSection = GovernanceSection()
    advert: AdvertSection = AdvertSection()
    api: ApiSection = ApiSection()
    ledgers: LedgersSection = LedgersSection()
    adapter: AdapterSection = AdapterSection()
    limits: LimitsSection = LimitsSection()
    receipts: ReceiptsSection = ReceiptsSection()
    operations: OperationsSection = OperationsSection()
    sections: dict[str, BaseModel] = Field(default_factory=dict)
    source: Path | None = None

    @property
    def data_dir(self) -> Path:
        """``node.data_dir`` made absolute against the config file's folder (or the working directory)."""
        return self.path(self.node.data_dir)

    def path(self, value: Path) -> Path:
        """A path from the config, made absolute against the config file's folder."""
        base = self.source.parent if self.source else Path.cwd()
        return (base / value).resolve()

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.data_dir / DEFAULT_DB_FILE}"


# -- loading -----------------------------------------------------------------------------------------------------
def load_settings(
    path: Path | None, *, plugins: PluginManager | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read, override and validate. Plugin sections are validated when ``plugins`` is given."""
    raw, origins = read_raw(path, env)
    return _build(raw, origins, path, plugins)


def open_config(
    path: Path | None, *, strict: bool | None = None, env: Mapping[str, str] | None = None
) -> tuple[Settings, PluginManager]:
    """Load the plugins the config asks for, then the whole config with their sections.

    ``strict`` overrides ``plugins.strict`` (the CLI's ``--strict``).
    """
    from finp2p.plugins import PluginManager

    raw, origins = read_raw(path, env)
    errors: list[str] = []
    wanted = _validate(PluginsSection, raw.get("plugins", {}), "plugins", _where(path), origins, errors)
    if errors:
        raise FinP2PError(ErrorCode.CONFIG_VALUE, "; ".join(errors), errors=errors)
    pm = PluginManager(strict=wanted.strict if strict is None else strict, disabled=wanted.disabled)
    return _build(raw, origins, path, pm), pm


def _where(path: Path | None) -> str:
    return str(path) if path else "the configuration"


def _build(raw: dict[str, Any], origins: dict[str, str], path: Path | None, plugins: PluginManager | None) -> Settings:
    where = _where(path)
    extra_models: dict[str, type[BaseModel]] = {}
    if plugins is not None:
        extra_models = plugins.gather("finp2p_config_sections")
        claimed = sorted(set(extra_models) & set(CORE_SECTIONS))
        if claimed:
            raise FinP2PError(
                ErrorCode.PLUGIN_CONFLICT, f"config section(s) [{'], ['.join(claimed)}] belong to finp2p itself"
            )
    unknown = sorted(set(raw) - set(CORE_SECTIONS) - set(extra_models))
    if unknown:
        known = ", ".join(sorted({*CORE_SECTIONS, *extra_models}))
        raise FinP2PError(
            ErrorCode.CONFIG_UNKNOWN_SECTION,
            f"{where}: section(s) [{'], ['.join(unknown)}] are not defined by finp2p or a loaded plugin "
            f"(known: {known})",
        )
    errors: list[str] = []
    core = {
        name: _validate(model, raw.get(name, {}), name, where, origins, errors) for name, model in CORE_SECTIONS.items()
    }
    sections = {
        name: _validate(model, raw.get(name, {}), name, where, origins, errors) for name, model in extra_models.items()
    }
    if errors:
        code = ErrorCode.CONFIG_ENV if all(e.startswith("environment") for e in errors) else ErrorCode.CONFIG_VALUE
        raise FinP2PError(code, "; ".join(errors), errors=errors)
    return Settings(**core, sections=sections, source=path.resolve() if path else None)


def _validate(
    model: type[BaseModel], data: Any, section: str, where: str, origins: dict[str, str], errors: list[str]
) -> Any:
    if not isinstance(data, dict):
        errors.append(f"{where}: [{section}] must be a table, got {_kind(data)}")
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join([section, *(str(p) for p in err["loc"])])
            source = f"environment variable {origins[key]}" if key in origins else where
            if err["type"] == "extra_forbidden":
                known = ", ".join(model.model_fields)
                errors.append(f"{source}: {key}: unknown key (keys of [{section}]: {known})")
            else:
                errors.append(f"{source}: {key}: {err['msg']} (got {_show(err.get('input'))})")
        return None


def _kind(value: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "an array"}.get(
        type(value), type(value).__name__
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


DEFAULT_CONFIG = """\
# FinP2P node configuration. Every key can be overridden by an environment variable
# FINP2P_<SECTION>__<KEY>, e.g. FINP2P_STORE__URL=postgresql://finp2p@db:5432/finp2p

[node]
name = "{name}"
data_dir = "data"          # relative to this file

[store]
# url = "postgresql://finp2p@localhost:5432/finp2p"   # default: SQLite in data_dir
sqlite_synchronous = "FULL"

[plugins]
strict = false
disabled = []

[log]
level = "INFO"

[acl]
backend = "sql"
"""
