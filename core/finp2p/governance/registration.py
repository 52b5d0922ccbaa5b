"""An organization joining the network: a signed registration request to a rendezvous (governance) node, then the
credential and TLS certificate once an operator approved it. Rendezvous addresses are tried in the genesis' order,
starting with the one that took the registration, and the next one is used when one does not answer."""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlmodel import Session

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.governance.authority import save_list
from finp2p.identity import tls
from finp2p.identity.credentials import chain_from
from finp2p.identity.genesis import Genesis
from finp2p.identity.local import LocalIdentity
from finp2p.identity.replay import ReplayGuard
from finp2p.identity.revocation import RevocationList
from finp2p.identity.trust import Identity, Trust
from finp2p.network import capabilities
from finp2p.network.messaging import Messenger
from finp2p.network.transport import Transport
from finp2p.store import Store

#: Errors after which the next rendezvous address is tried.
FAILOVER = frozenset({ErrorCode.PEER_UNREACHABLE, ErrorCode.PEER_TIMEOUT, ErrorCode.PEER_TLS, ErrorCode.PEER_ERROR})


@dataclass(frozen=True)
class Outcome:
    status: str
    registration_id: str
    rendezvous: str
    identity: Identity | None = None


async def register(
    *,
    genesis: Genesis,
    transport: Transport,
    ident: LocalIdentity,
    store: Store,
    org_id: str,
    name: str,
    public_url: str,
    hosts: list[str],
    wait_s: float = 0.0,
    prefer: str | None = None,
    poll_s: float = 1.0,
    on_event: Any = None,
) -> Outcome:
    """Register (or ask after the registration made before) and, once approved, keep the credential.

    ``transport`` reaches the rendezvous nodes, trusting the genesis' certificates (no client certificate yet); it is
    closed when this returns.
    """
    key = ident.key(create=True)
    tls_key = ident.tls_key(create=True)
    trust = Trust(genesis)
    messenger = Messenger(
        key=key, org_id=org_id, chain=(), trust=trust, replay=ReplayGuard(store, 120_000), transport=transport
    )
    say = on_event or (lambda text: None)
    saved = ident.registration() or {}
    order = list(genesis.rendezvous)
    for first in (prefer, saved.get("rendezvous")):  # the one that holds our registration goes first of all
        if first in order:
            order.remove(first)
            order.insert(0, first)
    try:
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, org_id)]))
            .sign(tls_key, hashes.SHA256())
        )
        request = {
            "org_id": org_id,
            "name": name,
            "public_url": public_url,
            "hosts": hosts,
            "capabilities": capabilities.ours(),
            "csr_pem": csr.public_bytes(serialization.Encoding.PEM).decode(),
        }
        if saved.get("registration_id") and saved.get("org_id") == org_id:
            # Ask about the registration made before; a rejection is reported once, then forgotten.
            try:
                address, result = await _first_answer(
                    messenger, order, "registration.status", {"registration_id": saved["registration_id"]}, say
                )
            except FinP2PError as err:
                if err.code in (ErrorCode.REGISTRATION_REJECTED, ErrorCode.UNKNOWN_REGISTRATION):
                    ident.registration_path.unlink(missing_ok=True)
                if err.code is not ErrorCode.UNKNOWN_REGISTRATION:
                    raise
                address, result = await _first_answer(messenger, order, "registration.submit", request, say)
        else:
            address, result = await _first_answer(messenger, order, "registration.submit", request, say)
        ident.save_registration({"registration_id": result["registration_id"], "rendezvous": address, "org_id": org_id})
        deadline = time.monotonic() + wait_s
        while True:
            status_order = [address, *[a for a in order if a != address]]
            address, status = await _first_answer(
                messenger, status_order, "registration.status", {"registration_id": result["registration_id"]}, say
            )
            if status["status"] == "approved":
                chain = chain_from(status["credentials"])
                me = trust.verify_chain(chain, role="organization")
                if me.fin_id != key.fin_id or me.attributes.get("tls_spki_sha256") != tls.spki_sha256(
                    tls_key.public_key()
                ):
                    raise FinP2PError(ErrorCode.TLS_MISMATCH, "the governance node certified another key")
                ident.save_membership(chain, status["cert_chain_pem"])
                lists = [RevocationList.from_dict(d) for d in status.get("revocation_lists", [])]
                await store.run(functools.partial(_save_lists, lists=lists))
                return Outcome("approved", status["registration_id"], address, me)
            if time.monotonic() >= deadline:
                return Outcome(status["status"], status["registration_id"], address)
            await asyncio.sleep(poll_s)
    finally:
        await transport.close()


def _save_lists(s: Session, lists: list[RevocationList]) -> None:
    for rl in lists:
        save_list(s, rl)


async def _first_answer(
    messenger: Messenger, addresses: list[str], type_: str, body: dict[str, Any], say: Any
) -> tuple[str, dict[str, Any]]:
    failures = []
    for address in addresses:
        try:
            return address, await messenger.request(address, type_, body, timeout=10)
        except FinP2PError as err:
            if err.code not in FAILOVER:
                raise
            failures.append(f"{address}: {err.detail}")
            say(f"{address} did not answer ({err.code.code}); trying the next rendezvous address")
    raise FinP2PError(ErrorCode.RENDEZVOUS_UNREACHABLE, "; ".join(failures) or "the genesis lists none")
