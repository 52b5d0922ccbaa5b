"""FinP2P resource ids: ``<orgId>:<type>:<id>``, where the organization is the routing "host" of the resource.

Types of the default namespace: 101 user, 102 asset, 105 intent, 106 execution plan. Other three-digit types
(100-999) are accepted as custom types, so vendors can add their own without colliding with these.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from finp2p.edge.identifiers import LOCAL_ID, ORG_ID
from finp2p.errors import ErrorCode, FinP2PError


class ResourceType(enum.IntEnum):
    USER = 101
    ASSET = 102
    INTENT = 105
    EXECUTION_PLAN = 106


@dataclass(frozen=True, order=True)
class ResourceId:
    org_id: str
    type: int
    local_id: str

    def __post_init__(self) -> None:
        if not ORG_ID.matches(self.org_id):
            raise FinP2PError(ErrorCode.BAD_RESOURCE_ID, f"organization {self.org_id!r} is not an org id")
        if isinstance(self.type, bool) or not isinstance(self.type, int) or not 100 <= self.type <= 999:
            raise FinP2PError(ErrorCode.BAD_RESOURCE_ID, f"type {self.type!r} is not a three-digit type code")
        if not LOCAL_ID.matches(self.local_id):
            raise FinP2PError(ErrorCode.BAD_RESOURCE_ID, f"id {self.local_id!r} must be 1-128 of A-Z a-z 0-9 . _ ~ -")

    @classmethod
    def parse(cls, text: object) -> ResourceId:
        if not isinstance(text, str) or len(text) > 256 or text.count(":") != 2:
            raise FinP2PError(ErrorCode.BAD_RESOURCE_ID, f"{text!r} is not of the form <orgId>:<type>:<id>")
        org_id, type_text, local_id = text.split(":")
        if not type_text.isascii() or not type_text.isdigit() or len(type_text) != 3:
            raise FinP2PError(ErrorCode.BAD_RESOURCE_ID, f"type {type_text!r} is not a three-digit type code")
        return cls(org_id, int(type_text), local_id)

    def __str__(self) -> str:
        return f"{self.org_id}:{self.type}:{self.local_id}"

    @property
    def type_name(self) -> str:
        try:
            return ResourceType(self.type).name.lower()
        except ValueError:
            return "custom"
