"""Privacy benchmark: authorised private data requests, and what refusing an organization with no access costs.

    .venv/bin/python -m bench.privacy [--seconds 4]

The owner node runs in its own process with a user record and an ACL granting one member read access. That member
(authorised) and another member with no grant at all send signed ``private.get`` requests over mutual TLS at
concurrency 16. The figure that matters is the owner's own CPU time per request, read from /proc for each phase:
an authorised request passes every check (signature, credential chain and revocation, replay window, ACL, store);
a request from an organization with no access is turned away by the ACL cache from the TLS peer alone.
Aim: refusing costs at most a fifth of serving.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from bench.common import print_table, process_cpu_s
from bench.messaging import load
from bench.netkit import mint, node, start_hosts, stop_hosts
from finp2p.builtins.sql_acl_backend import SqlAclBackend
from finp2p.errors import FinP2PError
from finp2p.privacy import records
from finp2p.privacy.acl import AclRule
from finp2p.store import Store


async def run(seconds: float, root: Path) -> None:
    manifest = mint(root, 3)
    owner, friend, stranger = manifest["nodes"]
    resource = f"{owner['org_id']}:101:alice"
    store = Store(f"sqlite:///{Path(owner['dir']) / 'node.db'}", pool_size=1)
    store.migrate()
    store.call(
        lambda s: records.put(
            s, owner["org_id"], resource, {"legal_name": "Alice Martin", "nationality": "FR", "kyc_status": "verified"}
        )
    )
    await SqlAclBackend(store).grant(AclRule(f"org:{friend['org_id']}", "read", resource))
    store.close()
    manifest_file = root / "manifest.json"
    manifest_file.write_text(json.dumps(manifest))
    hosts = start_hosts(manifest_file, [0], 1, None)
    pid = hosts[0].pid
    rows = []
    try:
        allowed = (await node(manifest, friend, serve=False)).messenger
        refused = (await node(manifest, stranger, serve=False)).messenger

        async def authorised() -> None:
            await allowed.request(owner["address"], "private.get", {"resource_id": resource})

        async def no_access() -> None:
            try:
                await refused.request(owner["address"], "private.get", {"resource_id": resource})
            except FinP2PError:
                return
            raise AssertionError("the owner served an organization with no access")

        results = {}
        for label, call in (("authorised, served", authorised), ("no access, refused", no_access)):
            before = process_cpu_s(pid)
            rate, p50, p99 = await load(call, 16, seconds)
            used = process_cpu_s(pid) - before
            requests = rate * seconds
            results[label] = used / requests * 1e6
            rows.append([label, f"{rate:,.0f}/s", f"{p50:.2f}", f"{p99:.2f}", f"{results[label]:.0f} µs"])
        ratio = results["no access, refused"] / results["authorised, served"]
        rows.append(["cost of refusing / cost of serving", "", "", "", f"{ratio:.2f} (aim <= 0.20)"])
        await allowed.transport.close()
        await refused.transport.close()
    finally:
        stop_hosts(hosts)
    print_table(
        "privacy: private.get to the owner at concurrency 16",
        ["requests", "rate", "p50 ms", "p99 ms", "owner CPU per request"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.seconds, Path(tmp)))


if __name__ == "__main__":
    main()
