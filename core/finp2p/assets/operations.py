"""An asset operation as organizations exchange it: what is asked, checked at the edge, in one canonical form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from finp2p.edge.identifiers import TOKEN
from finp2p.edge.numbers import check_unix_seconds, parse_quantity
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.keys import check_fin_id
from finp2p.ledger import OperationType, OwnerConsent
from finp2p.resource_id import ResourceId, ResourceType

#: Operations that move an owner's units and so need the owner's consent (a redeem from a hold does not).
NEEDS_CONSENT = frozenset({OperationType.TRANSFER, OperationType.HOLD, OperationType.REDEEM})
#: Operations only the asset's own organization may ask for.
MANAGER_ONLY = frozenset({OperationType.ISSUE})
#: Operations on a hold: asked by the organization that asked for the hold.
ON_HOLD = frozenset({OperationType.RELEASE, OperationType.ROLLBACK})


@dataclass(frozen=True)
class OperationRequest:
    operation: OperationType
    asset_id: str
    quantity: int
    operation_id: str
    source: str | None = None
    destination: str | None = None
    expiry: int = 0
    consent: OwnerConsent | None = None
    #: Resource ids of the users' records at the requester, for the primary node's user-information query.
    source_user: str | None = None
    destination_user: str | None = None

    @property
    def owner_org(self) -> str:
        """The asset's organization: its primary node executes the operation."""
        return ResourceId.parse(self.asset_id).org_id

    def hash_list_fields(self, ledger_id: str) -> list[tuple[str, str]]:
        """The fields of this operation's hashList consent template (one group), bound to its ledger."""
        return [
            ("scheme", "finp2p"),
            ("ledgerId", ledger_id),
            ("operation", str(self.operation)),
            ("operationId", self.operation_id),
            ("assetId", self.asset_id),
            ("source", self.source or ""),
            ("destination", self.destination or ""),
            ("quantity", str(self.quantity)),
            ("expiry", str(self.expiry)),
        ]

    def to_body(self) -> dict[str, Any]:
        """The request as organizations exchange it. Built field by field (``dataclasses.asdict`` rebuilt the
        consent's whole typed data each time: a tenth of a primary node's CPU per transfer); the consent's
        ``payload`` is the consent's own object, which nothing that reads a body changes."""
        body: dict[str, Any] = {
            "operation": str(self.operation),
            "asset_id": self.asset_id,
            "quantity": self.quantity,
            "operation_id": self.operation_id,
        }
        for name, value in (("source", self.source), ("destination", self.destination), ("expiry", self.expiry)):
            if value is not None:
                body[name] = value
        for name, value in (("source_user", self.source_user), ("destination_user", self.destination_user)):
            if value is not None:
                body[name] = value
        if self.consent is not None:
            c = self.consent
            body["consent"] = {
                "template": c.template,
                "signer": c.signer,
                "signature": c.signature,
                "payload": c.payload,
                "hash_func": c.hash_func,
            }
        return body

    @classmethod
    def from_body(cls, body: Any, *, consent_required: bool = True) -> OperationRequest:
        """Parse and check a request (from the REST API or a peer); FP7010 says which field is wrong.
        ``consent_required=False`` reads a request that is yet to be signed (to make its consent template)."""
        if not isinstance(body, dict):
            raise _bad("the operation must be a JSON object")
        try:
            operation = OperationType(str(body.get("operation")))
        except ValueError:
            raise _bad(f"operation must be one of {', '.join(o.value for o in OperationType)}") from None
        asset_id = body.get("asset_id")
        try:
            if ResourceId.parse(asset_id).type != ResourceType.ASSET:
                raise _bad("asset_id must be an asset's resource id (<org>:102:<id>)")
        except FinP2PError:
            raise _bad(f"asset_id {asset_id!r} is not a resource id (<org>:102:<id>)") from None
        quantity = parse_quantity(body.get("quantity"), code=ErrorCode.OPERATION_INVALID)
        operation_id = TOKEN.check(body.get("operation_id"), "operation_id", ErrorCode.OPERATION_INVALID)
        source, destination = _fin_id(body, "source"), _fin_id(body, "destination")
        expiry = check_unix_seconds(body.get("expiry", 0), "expiry")
        needs = {
            OperationType.ISSUE: ("destination",),
            OperationType.TRANSFER: ("source", "destination"),
            OperationType.REDEEM: ("source",),
            OperationType.HOLD: ("source",),
            OperationType.RELEASE: ("source", "destination"),
            OperationType.ROLLBACK: ("source",),
        }[operation]
        given = {"source": source, "destination": destination}
        missing = [n for n in needs if given[n] is None]
        if missing:
            raise _bad(f"{operation} needs {' and '.join(missing)}")
        consent = _consent(body.get("consent"))
        if consent is None and consent_required and operation in NEEDS_CONSENT - {OperationType.REDEEM}:
            raise _bad(f"{operation} needs the source's consent (a signature over the ledger's template)")
        users = {n: _user(body, n) for n in ("source_user", "destination_user")}
        return cls(
            operation,
            str(asset_id),
            quantity,
            operation_id,
            source,
            destination,
            expiry,
            consent,
            users["source_user"],
            users["destination_user"],
        )


def _bad(detail: str) -> FinP2PError:
    return FinP2PError(ErrorCode.OPERATION_INVALID, detail)


def _fin_id(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        return check_fin_id(value, name)
    except FinP2PError:
        raise _bad(f"{name} must be a FinID (66 lowercase hex digits)") from None


def _user(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        if ResourceId.parse(value).type != ResourceType.USER:
            raise ValueError
    except (FinP2PError, ValueError):
        raise _bad(f"{name} must be a user's resource id (<org>:101:<id>)") from None
    return str(value)


def _consent(value: Any) -> OwnerConsent | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad("consent must be an object: template, signer, signature, payload")
    try:
        consent = OwnerConsent(
            template=str(value["template"]),
            signer=check_fin_id(value["signer"], "consent signer"),
            signature=str(value["signature"]),
            payload=dict(value.get("payload") or {}),
            hash_func=str(value.get("hashFunc") or "keccak-256"),
        )
    except (KeyError, TypeError, ValueError, FinP2PError) as exc:
        raise _bad(f"consent is malformed ({exc})") from None
    return consent
