"""The genesis: what every node and auditor of a network trusts. Written once by ``finp2p network init``."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from finp2p.edge.identifiers import NETWORK_ID
from finp2p.edge.json_input import read_json_file
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import canonical as canon
from finp2p.identity.keys import check_fin_id


@dataclass(frozen=True)
class FoundingNode:
    name: str
    fin_id: str
    tls_ca_pem: str


@dataclass(frozen=True)
class Genesis:
    network_id: str
    devnet: bool
    created_ms: int
    founding: tuple[FoundingNode, ...]
    rendezvous: tuple[str, ...]

    @functools.cached_property
    def founding_fin_ids(self) -> frozenset[str]:
        return frozenset(f.fin_id for f in self.founding)

    @property
    def trust_pem(self) -> str:
        """The founding CA certificates: the trust anchors of every TLS connection in the network."""
        return "".join(f.tls_ca_pem for f in self.founding)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "network_id": self.network_id,
            "devnet": self.devnet,
            "created_ms": self.created_ms,
            "founding": [{"name": f.name, "fin_id": f.fin_id, "tls_ca_pem": f.tls_ca_pem} for f in self.founding],
            "rendezvous": list(self.rendezvous),
        }

    @property
    def hash(self) -> str:
        """What operators compare out of band to know they trust the same network."""
        return canon.digest("genesis", self.to_dict()).hex()

    @classmethod
    def from_dict(cls, data: Any, where: str = "genesis") -> Genesis:
        try:
            if data.get("version") != 1:
                raise ValueError("version must be 1")
            network_id = data["network_id"]
            if not isinstance(network_id, str) or not NETWORK_ID.matches(network_id):
                raise ValueError("network_id must be 2-63 lowercase letters, digits or '-'")
            founding = tuple(
                FoundingNode(str(f["name"]), check_fin_id(f["fin_id"], "founding fin_id"), str(f["tls_ca_pem"]))
                for f in data["founding"]
            )
            if not founding:
                raise ValueError("at least one founding node is needed")
            rendezvous = tuple(str(a) for a in data["rendezvous"])
            for address in rendezvous:
                parts = urlsplit(address)
                if parts.scheme != "https" or not parts.hostname or not parts.port:
                    raise ValueError(f"rendezvous address {address!r} must be https://HOST:PORT")
            return cls(network_id, bool(data["devnet"]), int(data["created_ms"]), founding, rendezvous)
        except FinP2PError as exc:
            raise FinP2PError(ErrorCode.GENESIS, f"{where}: {exc.detail}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FinP2PError(ErrorCode.GENESIS, f"{where}: {exc}") from None

    @classmethod
    def load(cls, path: Path) -> Genesis:
        try:
            data = read_json_file(path)
        except FinP2PError as exc:
            raise FinP2PError(ErrorCode.GENESIS, exc.detail) from None
        return cls.from_dict(data, str(path))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
