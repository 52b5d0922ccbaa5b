"""Building a ``fabric`` ledger from a profile's settings (imported when one is built, with gRPC and the protos)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from finp2p.components import ComponentContext
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.ledger import Ledger
from finp2p_fabric.gateway import Gateway, Timeouts
from finp2p_fabric.identity import Identity
from finp2p_fabric.ledger import CHAINCODE_NAME, FabricLedger


class FabricSettings(BaseModel):
    """The ``[settings]`` of a ``fabric`` ledger profile. Paths are relative to the profile's directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ledger_id: str | None = None
    profile_dir: Path | None = None
    peer: str = Field(pattern=r"^[A-Za-z0-9.\-]+:[0-9]{1,5}$", description="The peer's Gateway endpoint, host:port.")
    tls_ca: Path | None = Field(None, description="The CA certificate of the peer's TLS (PEM); none: plaintext.")
    server_name: str | None = Field(None, description="The name the peer's TLS certificate has, if not the host.")
    msp_id: str = Field(min_length=1, max_length=256, description="The MSP id of the identity below.")
    cert: Path = Field(description="The identity's X.509 certificate (PEM), e.g. msp/signcerts/cert.pem.")
    key: Path = Field(description="The identity's P-256 private key (PEM), e.g. msp/keystore/priv_sk.")
    channel: str = Field(pattern=r"^[a-z][a-z0-9.\-]{0,248}$")
    chaincode: str = Field("finp2p", pattern=f"^{CHAINCODE_NAME}$")
    chain_id: int = Field(0, ge=0, lt=2**256, description="The chain id of the chaincode's EIP-712 domain.")
    timeout_s: float = Field(30.0, gt=0, le=3600, description="Deadline of each endorse, submit and query.")
    commit_timeout_s: float = Field(60.0, gt=0, le=3600, description="How long to wait for a commit (FP6015).")
    mvcc_retries: int = Field(8, ge=1, le=100, description="Attempts when a read conflict invalidates a transaction.")
    # What the node adds to any profile it opens, for ledgers whose operator is a FinID key. On Fabric the operator
    # is the MSP identity above (the chaincode's Configure caller), and reading needs an identity too: both unused.
    operator_key: Path | None = Field(None, description="Unused on Fabric: the operator is the MSP identity.")
    read_only: bool = Field(False, description="Unused on Fabric: reads and writes both need the MSP identity.")

    def path(self, value: Path) -> Path:
        return value if value.is_absolute() or self.profile_dir is None else self.profile_dir / value


def settings_from(raw: dict[str, Any]) -> FabricSettings:
    try:
        return FabricSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"fabric profile: {problems}") from None


def ledger_from(settings: FabricSettings) -> FabricLedger:
    identity = Identity.from_files(settings.msp_id, settings.path(settings.cert), settings.path(settings.key))
    tls_ca = None
    if settings.tls_ca is not None:
        try:
            tls_ca = settings.path(settings.tls_ca).read_bytes()
        except OSError as exc:
            raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"cannot read {exc.filename}: {exc.strerror}") from None
    timeouts = Timeouts(settings.timeout_s, settings.timeout_s, settings.commit_timeout_s, settings.timeout_s)
    gateway = Gateway(settings.peer, tls_ca, identity, server_name=settings.server_name, timeouts=timeouts)
    return FabricLedger(
        gateway,
        settings.channel,
        settings.chaincode,
        ledger_id=settings.ledger_id,
        chain_id=settings.chain_id,
        mvcc_retries=settings.mvcc_retries,
    )


def build_ledger(raw: dict[str, Any], context: ComponentContext) -> Ledger:
    return ledger_from(settings_from(raw))
