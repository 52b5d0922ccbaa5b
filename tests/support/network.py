"""A FinP2P network on loopback made with the real CLI: genesis, governance nodes, organizations as processes."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from finp2p.builtins.https import HttpsSettings, HttpsTransport
from finp2p.identity.genesis import Genesis
from finp2p.identity.local import LocalIdentity
from finp2p.identity.replay import ReplayGuard
from finp2p.identity.trust import Trust
from finp2p.network.messaging import Messenger
from finp2p.store import Store
from tests.support.cli import run_cli
from tests.support.nodes import NodeProcess
from tests.support.ports import free_port


@dataclass
class Net:
    root: Path
    governance: dict[str, NodeProcess]
    gov_ports: dict[str, int]
    orgs: dict[str, NodeProcess] = field(default_factory=dict)
    site: Path | None = None

    @property
    def genesis_file(self) -> Path:
        return self.root / "genesis.json"

    def gov_config(self, name: str) -> Path:
        return self.root / "governance" / name / "node.toml"

    def org_config(self, org_id: str, port: int | None = None) -> Path:
        config = self.root / "orgs" / org_id / "node.toml"
        if not config.exists():
            r = run_cli("config", "init", str(config), "--name", org_id, "--genesis", str(self.genesis_file))
            assert r.returncode == 0, r.stderr
            text = config.read_text() + "revocation_poll_s = 1\n"
            config.write_text(text)
        return config

    def register(self, org_id: str, *extra: str) -> tuple[int, dict[str, object], str]:
        port = free_port()
        config = self.org_config(org_id)
        r = run_cli(
            "-c",
            str(config),
            "org",
            "register",
            "--org-id",
            org_id,
            "--name",
            f"Bank {org_id}",
            "--public-url",
            f"https://127.0.0.1:{port}",
            "--json",
            *extra,
        )
        return r.returncode, json.loads(r.stdout), r.stderr

    def gov_url(self, name: str) -> str:
        return f"https://127.0.0.1:{self.gov_ports[name]}"

    def org_data(self, org_id: str) -> Path:
        return self.root / "orgs" / org_id / "data"

    def cli(self, org_id: str, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("-c", str(self.org_config(org_id)), *args, site=self.site)

    def start_org(self, org_id: str) -> NodeProcess:
        node = NodeProcess(self.org_config(org_id), site=self.site).start()
        self.orgs[org_id] = node
        return node

    def join_with_ledger(self, org_id: str, rpc_url: str) -> tuple[str, str]:
        """Register ``org_id``, deploy its contracts on the chain at ``rpc_url`` with its own key, give it a REST
        API and an API token, and start it. Returns the API's URL and the token."""
        assert self.register(org_id)[0] == 0
        return self.join(org_id, [self.deploy_ethereum(org_id, rpc_url)])

    def deploy_ethereum(self, org_id: str, rpc_url: str, name: str = "chain.toml") -> str:
        """Deploy the registered ``org_id``'s contracts on the chain at ``rpc_url``; the profile's file name."""
        profile = self.org_config(org_id).parent / name
        deployed = self.cli(org_id, "ethereum", "deploy", "--rpc", rpc_url, "--out", str(profile), "--json")
        assert deployed.returncode == 0, deployed.stderr
        return name

    def join(self, org_id: str, profiles: list[str], receipts_on: str | None = None) -> tuple[str, str]:
        """Give the registered ``org_id`` the ledger ``profiles`` (files beside its config), the ledger that records
        its receipts, a REST API and an API token, and start it. Returns the API's URL and the token."""
        config = self.org_config(org_id)
        port = free_port()
        with config.open("a") as fh:
            fh.write(f"\n[advert]\ncheck_s = 0.5\n\n[api]\nport = {port}\n")
            fh.write(f"\n[ledgers]\nprofiles = {json.dumps(profiles)}\n")
            if receipts_on is not None:
                fh.write(f"receipts_on = {json.dumps(receipts_on)}\n")
        token = self.cli(org_id, "api", "token", "tests").stdout.strip()
        self.start_org(org_id)
        return f"http://127.0.0.1:{port}", token

    def stop_all(self) -> None:
        for node in [*self.orgs.values(), *self.governance.values()]:
            node.stop()


def make_net(root: Path, governance: list[str], *, auto_approve: bool = False, site: Path | None = None) -> Net:
    ports = {name: free_port() for name in governance}
    args = ["network", "init", str(root), "--network-id", "itest", "--devnet"]
    for name, port in ports.items():
        args += ["--governance", f"{name}=127.0.0.1:{port}"]
    if auto_approve:
        args += ["--auto-approve", "*"]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    nodes = {name: NodeProcess(root / "governance" / name / "node.toml", site=site) for name in governance}
    return Net(root, nodes, ports, site=site)


async def client_of(data_dir: Path, genesis_file: Path, store: Store) -> Messenger:
    """A messenger acting as the organization whose identity is in ``data_dir``, with no check of its own
    standing: it lets a test send as a revoked organization, as a rogue one would."""
    genesis = Genesis.load(genesis_file)
    ident = LocalIdentity(data_dir)
    chain = ident.chain() or ()
    transport = HttpsTransport(
        HttpsSettings(trust_pem=genesis.trust_pem, cert_chain_file=ident.tls_chain_path, key_file=ident.tls_key_path)
    )
    return Messenger(
        key=ident.key(),
        org_id=chain[0].org_id,
        chain=chain,
        trust=Trust(genesis),
        replay=ReplayGuard(store, 120_000),
        transport=transport,
    )
