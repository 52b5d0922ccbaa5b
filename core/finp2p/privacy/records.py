"""The private store: information about users (what KYC and accreditation need) and assets, owned by the
organization whose resource it is; on other nodes, replicas its owner pushed."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session, col, select

from finp2p.clock import now_ms
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.resource_id import ResourceId, ResourceType
from finp2p.store.models import AccessNoticeRow, PrivateRecordRow


class UserInfo(BaseModel):
    """A user's information as an asset's primary node needs it to apply the asset's regulations."""

    model_config = ConfigDict(extra="forbid")
    legal_name: str = Field(min_length=1, max_length=300)
    kind: Literal["individual", "entity"] = "individual"
    date_of_birth: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    nationality: str | None = Field(None, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    residence_country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    tax_residency: list[str] = Field(default_factory=list)
    lei: str | None = Field(None, pattern=r"^[A-Z0-9]{20}$", description="legal entity identifier")
    kyc_status: Literal["pending", "verified", "rejected", "expired"] = "pending"
    kyc_verified_on: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    kyc_provider: str | None = Field(None, max_length=200)
    accreditation: Literal["retail", "professional", "accredited", "qualified", "institutional"] | None = None
    sanctions_screened_on: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    fin_id: str | None = Field(None, pattern=r"^0[23][0-9a-f]{64}$")


class AssetInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=300)
    asset_type: str = Field("security", max_length=60)
    isin: str | None = Field(None, pattern=r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")
    denomination: str | None = Field(None, max_length=20)
    issuer: str | None = Field(None, max_length=300)
    ledger_id: str | None = Field(None, max_length=200)
    regulations: list[str] = Field(default_factory=list)
    restrictions: dict[str, Any] = Field(default_factory=dict)


MODELS: dict[str, type[BaseModel]] = {"user": UserInfo, "asset": AssetInfo}


def kind_of(resource_id: str) -> str:
    type_ = ResourceId.parse(resource_id).type
    return "user" if type_ == ResourceType.USER else "asset" if type_ == ResourceType.ASSET else "other"


def validate(resource_id: str, data: Any) -> dict[str, Any]:
    kind = kind_of(resource_id)
    if not isinstance(data, dict):
        raise FinP2PError(ErrorCode.MALFORMED, "private data is a JSON object")
    model = MODELS.get(kind)
    if model is None:
        return data
    try:
        return model.model_validate(data).model_dump(exclude_none=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FinP2PError(ErrorCode.MALFORMED, f"{kind} information: {where}: {first['msg']}") from None


def put(s: Session, owner_org: str, resource_id: str, data: Any) -> PrivateRecordRow:
    """Write our own record (a new version). Only the resource's organization owns it."""
    if ResourceId.parse(resource_id).org_id != owner_org:
        raise FinP2PError(ErrorCode.ACL_DENIED, f"{resource_id} belongs to another organization")
    clean = validate(resource_id, data)
    row = s.get(PrivateRecordRow, resource_id)
    if row is None:
        row = PrivateRecordRow(
            resource_id=resource_id, owner_org=owner_org, kind=kind_of(resource_id), data="", version=0, updated_ms=0
        )
    row.data, row.version, row.updated_ms, row.replica = json.dumps(clean), row.version + 1, now_ms(), False
    s.add(row)
    return row


def keep_replica(s: Session, owner_org: str, resource_id: str, version: int, data: dict[str, Any]) -> bool:
    """Keep a pushed copy if it is newer than the one held; ``False`` otherwise."""
    if ResourceId.parse(resource_id).org_id != owner_org:
        raise FinP2PError(ErrorCode.FOREIGN_ADVERT, f"{owner_org} pushed {resource_id}, which it does not own")
    row = s.get(PrivateRecordRow, resource_id)
    if row is not None and (not row.replica or row.version >= version):
        return False
    row = row or PrivateRecordRow(
        resource_id=resource_id,
        owner_org=owner_org,
        kind=kind_of(resource_id),
        data="",
        version=0,
        updated_ms=0,
        replica=True,
    )
    row.data, row.version, row.updated_ms = json.dumps(data), version, now_ms()
    s.add(row)
    return True


def drop_replica(s: Session, owner_org: str, resource_id: str) -> bool:
    row = s.get(PrivateRecordRow, resource_id)
    if row is None or not row.replica or row.owner_org != owner_org:
        return False
    s.delete(row)
    return True


def get(s: Session, resource_id: str) -> PrivateRecordRow | None:
    return s.get(PrivateRecordRow, resource_id)


def records(s: Session) -> list[PrivateRecordRow]:
    return list(s.exec(select(PrivateRecordRow).order_by(col(PrivateRecordRow.resource_id))))


def notice(s: Session, owner_org: str, resource: str, event: str, version: int | None = None) -> None:
    s.add(AccessNoticeRow(owner_org=owner_org, resource=resource, event=event, version=version, received_ms=now_ms()))


def notices(s: Session) -> list[AccessNoticeRow]:
    return list(s.exec(select(AccessNoticeRow).order_by(col(AccessNoticeRow.id))))


def as_answer(row: PrivateRecordRow) -> dict[str, Any]:
    return {
        "resource_id": row.resource_id,
        "owner": row.owner_org,
        "kind": row.kind,
        "version": row.version,
        "data": json.loads(row.data),
        "replica": row.replica,
    }
