"""A Hyperledger Fabric 3.1 network on loopback, without Docker: one orderer (single-node Raft) and one peer as
plain processes, the FinP2P chaincode run as a service through the project's external builder.

    devnet/fabric up [--state DIR] [--profile FILE]    start the network, deploy the chaincode, write the profile
    devnet/fabric status [--state DIR]                 is it running, where, at which height
    devnet/fabric down [--state DIR]                   stop it (SIGTERM, then SIGKILL), by the PIDs it kept
    devnet/fabric prepare                              find or unpack Fabric, build the chaincode (cached)
    devnet/fabric deploy NAME --user UserN --profile FILE   another organization's chaincode, operated by UserN
    devnet/fabric profile [NAME] --user UserN [--read-only] --profile FILE   a profile signing as UserN

``up`` writes ``chains/devnet-fabric.toml``, a ledger profile a node's config can name, signing as the peer
organization's User1 (the chaincode's operator). Every port is chosen free at run time. The tests use
:class:`FabricNetwork` directly.

Fabric's binaries and its ``config/*.yaml`` come from its release (:mod:`devnet.fabric_release`); what the devnet
changes is set with ``CORE_*`` / ``ORDERER_*`` variables, except ``vm.endpoint``, which no variable can blank: the
peer runs on a copy of ``core.yaml`` with it empty (its health check would report the absent Docker otherwise).
The chaincode binary is built once per version of its sources and cached beside the unpacked release.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devnet.fabric_release import FabricNotFound, cache_dir, find_fabric
from finp2p.demo.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
CHAINCODE_SRC = ROOT / "contracts" / "fabric"
BUILDER = CHAINCODE_SRC / "builders" / "ccaas"
DEFAULT_STATE = ROOT / "devnet" / ".state" / "fabric"
DEFAULT_PROFILE = ROOT / "chains" / "devnet-fabric.toml"
CHANNEL = "finp2p"
CHAINCODE = "finp2p"
PEER_ORG, PEER_MSP, PEER_DOMAIN = "Org1", "Org1MSP", "org1.example.com"
ORDERER_MSP, ORDERER_DOMAIN = "OrdererMSP", "example.com"
#: The channel's block cutting: a block is cut BATCH_TIMEOUT after its first transaction, or at
#: BATCH_MAX_MESSAGES transactions, whichever comes first. One operation at a time waits for the timeout; many in
#: flight fill blocks. Measured on a 2-core machine (see the README).
BATCH_TIMEOUT = "100ms"
BATCH_MAX_MESSAGES = 16
#: The orderer's and the peer's logging: their own INFO lines, not gRPC's.
_NODE_LOGGING = "grpc=warning:info"
#: What Fabric's lifecycle accepts as a chaincode name.
_CHAINCODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
PORT_NAMES = ("orderer", "orderer_admin", "orderer_ops", "peer", "peer_chaincode", "peer_ops", "chaincode")


class FabricError(RuntimeError):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a child of ours that exited but was not reaped counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the process has not exited after ``timeout`` seconds."""
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


# -- the chaincode binary -----------------------------------------------------------------------------------------
def chaincode_hash() -> str:
    """A hash of what the chaincode binary is built from: its Go sources, go.mod and go.sum."""
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in CHAINCODE_SRC.rglob("*")
        if p.is_file() and (p.name in ("go.mod", "go.sum") or (p.suffix == ".go" and not p.name.endswith("_test.go")))
    )
    for path in files:
        digest.update(str(path.relative_to(CHAINCODE_SRC)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def build_chaincode(env: dict[str, str] | None = None) -> Path:
    """The chaincode server binary, built with ``go build`` the first time for these sources, cached after."""
    env = dict(os.environ) if env is None else env
    target = cache_dir(env) / "chaincode" / chaincode_hash() / "finp2p-chaincode"
    if target.is_file():
        return target
    go = shutil.which("go", path=env.get("PATH"))
    if go is None:
        raise FabricError("building the chaincode needs Go (https://go.dev/dl/): `go` is not on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    result = subprocess.run(
        [go, "build", "-trimpath", "-o", str(partial), "."],
        cwd=CHAINCODE_SRC,
        env={**env, "CGO_ENABLED": "0"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise FabricError(f"go build of the chaincode failed:\n{result.stderr[-4000:]}")
    os.replace(partial, target)
    return target


def _package(label: str, address: str) -> bytes:
    """A chaincode-as-a-service package: metadata.json (type ccaas) and code.tar.gz with connection.json."""

    def tar_of(files: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    connection = json.dumps({"address": address, "dial_timeout": "10s", "tls_required": False}).encode()
    metadata = json.dumps({"type": "ccaas", "label": label}).encode()
    return tar_of({"metadata.json": metadata, "code.tar.gz": tar_of({"connection.json": connection})})


# -- the network --------------------------------------------------------------------------------------------------
@dataclass
class FabricNetwork:
    """One orderer, one peer and the chaincode server. PIDs, ports and paths are kept in ``state_dir`` so that
    another process (``devnet/fabric down``) can stop them."""

    state_dir: Path = DEFAULT_STATE
    ports: dict[str, int] = field(default_factory=dict)
    channel: str = CHANNEL
    chaincode: str = CHAINCODE
    chain_id: int = 0
    pids: dict[str, int] = field(default_factory=dict)
    package_id: str = ""
    #: The chaincode definitions on the channel (one per organization's deployment) and their operators.
    chaincodes: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    fabric_home: Path | None = None
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    # -- paths ------------------------------------------------------------------------------------------------
    @property
    def crypto(self) -> Path:
        return self.state_dir / "crypto"

    @property
    def _peer_org(self) -> Path:
        return self.crypto / "peerOrganizations" / PEER_DOMAIN

    @property
    def _orderer_node(self) -> Path:
        return self.crypto / "ordererOrganizations" / ORDERER_DOMAIN / "orderers" / f"orderer.{ORDERER_DOMAIN}"

    @property
    def _peer_node(self) -> Path:
        return self._peer_org / "peers" / f"peer0.{PEER_DOMAIN}"

    @property
    def peer_tls_ca(self) -> Path:
        return self._peer_node / "tls" / "ca.crt"

    @property
    def orderer_tls_ca(self) -> Path:
        return self._orderer_node / "tls" / "ca.crt"

    def user(self, name: str = "User1") -> dict[str, Path]:
        """The certificate and key of one identity of the peer organization (``User1``, ``User2``, ``Admin``)."""
        msp = self._peer_org / "users" / f"{name}@{PEER_DOMAIN}" / "msp"
        return {"cert": next((msp / "signcerts").iterdir()), "key": next((msp / "keystore").iterdir()), "msp": msp}

    @property
    def peer_endpoint(self) -> str:
        return f"127.0.0.1:{self.ports['peer']}"

    @property
    def ledger_id(self) -> str:
        return f"fabric:{self.channel}"

    def log(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "network.json"

    @property
    def fabric(self) -> Path:
        if self.fabric_home is None:
            self.fabric_home = find_fabric()
        return self.fabric_home

    def _bin(self, name: str) -> str:
        return str(self.fabric / "bin" / name)

    # -- state ------------------------------------------------------------------------------------------------
    def _save(self) -> None:
        state = {
            "ports": self.ports,
            "pids": self.pids,
            "channel": self.channel,
            "chaincode": self.chaincode,
            "chain_id": self.chain_id,
            "package_id": self.package_id,
            "chaincodes": self.chaincodes,
            "fabric_home": str(self.fabric),
            "timings": self.timings,
        }
        self._state_file.write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, state_dir: Path = DEFAULT_STATE) -> FabricNetwork | None:
        try:
            state = json.loads((state_dir / "network.json").read_text())
        except (OSError, ValueError):
            return None
        return cls(
            state_dir,
            dict(state["ports"]),
            state["channel"],
            state["chaincode"],
            int(state.get("chain_id", 0)),
            dict(state["pids"]),
            state.get("package_id", ""),
            dict(state.get("chaincodes", {})),
            dict(state.get("timings", {})),
            Path(state["fabric_home"]),
        )

    @classmethod
    def running(cls, state_dir: Path = DEFAULT_STATE) -> FabricNetwork | None:
        """The network recorded in ``state_dir`` if its processes are alive."""
        network = cls.load(state_dir)
        if network is None or not network.pids or not all(_alive(p) for p in network.pids.values()):
            return None
        return network

    # -- start ------------------------------------------------------------------------------------------------
    def up(self, timeout: float = 120.0) -> FabricNetwork:
        """Generate the crypto material and the channel, start orderer and peer, join them to the channel, deploy
        the chaincode and configure it with User1 as its operator. Stops what it started on failure."""
        started = time.monotonic()
        self.fabric_home = self.fabric  # FP6023 before anything is started
        binary = build_chaincode()
        self.timings["chaincode_build_s"] = round(time.monotonic() - started, 2)
        for name in PORT_NAMES:
            self.ports.setdefault(name, free_port())
        if self.state_dir.exists():
            if any(self.state_dir.iterdir()) and not (self.state_dir / "crypto-config.yaml").exists():
                raise FabricError(f"{self.state_dir} holds files and is no devnet's state: choose another --state")
            shutil.rmtree(self.state_dir)  # a fresh network every time: new crypto material, empty ledgers
        (self.state_dir / "logs").mkdir(parents=True)
        try:
            begin = time.monotonic()
            self._generate()
            self._start("orderer")
            self._start("peer")
            self._wait_healthy("orderer", timeout)
            self._wait_healthy("peer", timeout)
            self._join_channel()
            self.timings["network_up_s"] = round(time.monotonic() - begin, 2)
            begin = time.monotonic()
            self._deploy(binary, timeout)
            self.timings["lifecycle_s"] = round(time.monotonic() - begin, 2)
        except BaseException:
            self.down()
            raise
        self.timings["total_s"] = round(time.monotonic() - started, 2)
        self._save()
        return self

    def _run(self, args: list[str], env: dict[str, str] | None = None, what: str = "", timeout: float = 60) -> str:
        result = subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.state_dir
        )
        if result.returncode != 0:
            said = (result.stderr.strip() + "\n" + result.stdout.strip()).strip()
            raise FabricError(f"{what or args[0]} failed ({result.returncode}):\n{said[-3000:]}")
        return result.stdout

    def _generate(self) -> None:
        sans = "      SANS:\n        - localhost\n        - 127.0.0.1\n"
        crypto_config = (
            "OrdererOrgs:\n"
            f"  - Name: Orderer\n    Domain: {ORDERER_DOMAIN}\n    EnableNodeOUs: true\n"
            f"    Specs:\n      - Hostname: orderer\n  {sans}"
            "PeerOrgs:\n"
            f"  - Name: {PEER_ORG}\n    Domain: {PEER_DOMAIN}\n    EnableNodeOUs: true\n"
            f"    Template:\n      Count: 1\n{sans}"
            "    Users:\n      Count: 4\n"
        )
        config = self.state_dir / "crypto-config.yaml"
        config.write_text(crypto_config)
        self._run([self._bin("cryptogen"), "generate", f"--config={config}", f"--output={self.crypto}"])
        (self.state_dir / "configtx").mkdir()
        (self.state_dir / "configtx" / "configtx.yaml").write_text(self._configtx())
        self._run(
            [
                self._bin("configtxgen"),
                "-profile",
                "FinP2PDevnet",
                "-channelID",
                self.channel,
                "-outputBlock",
                str(self.state_dir / "genesis.block"),
                "-configPath",
                str(self.state_dir / "configtx"),
            ],
            env={**_base_env(), "FABRIC_CFG_PATH": str(self.state_dir / "configtx")},
            what="configtxgen",
        )
        # The peer's copy of core.yaml: vm.endpoint blanked (no Docker here), everything else as released.
        core = (self.fabric / "config" / "core.yaml").read_text()
        docker = "  endpoint: unix:///var/run/docker.sock\n"
        if core.count(docker) != 1:
            raise FabricError(f"{self.fabric}/config/core.yaml has no single vm.endpoint line to blank")
        (self.state_dir / "peercfg").mkdir()
        (self.state_dir / "peercfg" / "core.yaml").write_text(core.replace(docker, '  endpoint: ""\n'))

    def _configtx(self) -> str:
        orderer_msp = self.crypto / "ordererOrganizations" / ORDERER_DOMAIN / "msp"
        peer_msp = self._peer_org / "msp"
        tls_cert = self._orderer_node / "tls" / "server.crt"
        port = self.ports["orderer"]

        def policy(kind: str, rule: str) -> str:
            return f'{{Type: {kind}, Rule: "{rule}"}}'

        return f"""# Written by devnet/fabric.py for one devnet.
Organizations:
  - &OrdererOrg
    Name: OrdererOrg
    ID: {ORDERER_MSP}
    MSPDir: {orderer_msp}
    Policies:
      Readers: {policy("Signature", f"OR('{ORDERER_MSP}.member')")}
      Writers: {policy("Signature", f"OR('{ORDERER_MSP}.member')")}
      Admins: {policy("Signature", f"OR('{ORDERER_MSP}.admin')")}
    OrdererEndpoints:
      - 127.0.0.1:{port}
  - &PeerOrg
    Name: {PEER_MSP}
    ID: {PEER_MSP}
    MSPDir: {peer_msp}
    Policies:
      Readers: {policy("Signature", f"OR('{PEER_MSP}.admin', '{PEER_MSP}.peer', '{PEER_MSP}.client')")}
      Writers: {policy("Signature", f"OR('{PEER_MSP}.admin', '{PEER_MSP}.client')")}
      Admins: {policy("Signature", f"OR('{PEER_MSP}.admin')")}
      Endorsement: {policy("Signature", f"OR('{PEER_MSP}.peer')")}
Capabilities:
  Channel: &ChannelCapabilities
    V3_0: true
  Orderer: &OrdererCapabilities
    V2_0: true
  Application: &ApplicationCapabilities
    V2_5: true
Application: &ApplicationDefaults
  Organizations:
  Policies:
    Readers: {policy("ImplicitMeta", "ANY Readers")}
    Writers: {policy("ImplicitMeta", "ANY Writers")}
    Admins: {policy("ImplicitMeta", "MAJORITY Admins")}
    LifecycleEndorsement: {policy("ImplicitMeta", "MAJORITY Endorsement")}
    Endorsement: {policy("ImplicitMeta", "MAJORITY Endorsement")}
  Capabilities: *ApplicationCapabilities
Orderer: &OrdererDefaults
  OrdererType: etcdraft
  EtcdRaft:
    Consenters:
      - Host: 127.0.0.1
        Port: {port}
        ClientTLSCert: {tls_cert}
        ServerTLSCert: {tls_cert}
    Options:
      TickInterval: 100ms
      ElectionTick: 10
      HeartbeatTick: 1
      MaxInflightBlocks: 5
      SnapshotIntervalSize: 16 MB
  BatchTimeout: {BATCH_TIMEOUT}
  BatchSize:
    MaxMessageCount: {BATCH_MAX_MESSAGES}
    AbsoluteMaxBytes: 10 MB
    PreferredMaxBytes: 2 MB
  Organizations:
  Policies:
    Readers: {policy("ImplicitMeta", "ANY Readers")}
    Writers: {policy("ImplicitMeta", "ANY Writers")}
    Admins: {policy("ImplicitMeta", "MAJORITY Admins")}
    BlockValidation: {policy("ImplicitMeta", "ANY Writers")}
  Capabilities: *OrdererCapabilities
Channel: &ChannelDefaults
  Policies:
    Readers: {policy("ImplicitMeta", "ANY Readers")}
    Writers: {policy("ImplicitMeta", "ANY Writers")}
    Admins: {policy("ImplicitMeta", "MAJORITY Admins")}
  Capabilities: *ChannelCapabilities
Profiles:
  FinP2PDevnet:
    <<: *ChannelDefaults
    Orderer:
      <<: *OrdererDefaults
      Organizations:
        - *OrdererOrg
      Capabilities: *OrdererCapabilities
    Application:
      <<: *ApplicationDefaults
      Organizations:
        - *PeerOrg
      Capabilities: *ApplicationCapabilities
"""

    def _env(self, name: str) -> dict[str, str]:
        """The environment of the orderer or the peer: Fabric's released config, overridden by variables."""
        if name == "orderer":
            tls = self._orderer_node / "tls"
            o = self.state_dir / "orderer"
            return {
                **_base_env(_NODE_LOGGING),
                "FABRIC_CFG_PATH": str(self.fabric / "config"),
                "ORDERER_GENERAL_LISTENADDRESS": "127.0.0.1",
                "ORDERER_GENERAL_LISTENPORT": str(self.ports["orderer"]),
                "ORDERER_GENERAL_LOCALMSPID": ORDERER_MSP,
                "ORDERER_GENERAL_LOCALMSPDIR": str(self._orderer_node / "msp"),
                "ORDERER_GENERAL_TLS_ENABLED": "true",
                "ORDERER_GENERAL_TLS_PRIVATEKEY": str(tls / "server.key"),
                "ORDERER_GENERAL_TLS_CERTIFICATE": str(tls / "server.crt"),
                "ORDERER_GENERAL_TLS_ROOTCAS": f"[{tls / 'ca.crt'}]",
                "ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE": str(tls / "server.crt"),
                "ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY": str(tls / "server.key"),
                "ORDERER_GENERAL_CLUSTER_ROOTCAS": f"[{tls / 'ca.crt'}]",
                "ORDERER_GENERAL_BOOTSTRAPMETHOD": "none",
                "ORDERER_CHANNELPARTICIPATION_ENABLED": "true",
                "ORDERER_ADMIN_LISTENADDRESS": f"127.0.0.1:{self.ports['orderer_admin']}",
                "ORDERER_ADMIN_TLS_ENABLED": "true",
                "ORDERER_ADMIN_TLS_CERTIFICATE": str(tls / "server.crt"),
                "ORDERER_ADMIN_TLS_PRIVATEKEY": str(tls / "server.key"),
                "ORDERER_ADMIN_TLS_ROOTCAS": f"[{tls / 'ca.crt'}]",
                "ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED": "true",
                "ORDERER_ADMIN_TLS_CLIENTROOTCAS": f"[{tls / 'ca.crt'}]",
                "ORDERER_FILELEDGER_LOCATION": str(o / "ledger"),
                "ORDERER_CONSENSUS_WALDIR": str(o / "etcdraft" / "wal"),
                "ORDERER_CONSENSUS_SNAPDIR": str(o / "etcdraft" / "snapshot"),
                "ORDERER_OPERATIONS_LISTENADDRESS": f"127.0.0.1:{self.ports['orderer_ops']}",
                "ORDERER_METRICS_PROVIDER": "prometheus",
            }
        tls = self._peer_node / "tls"
        builders = [{"name": "finp2p-ccaas", "path": str(BUILDER)}]
        return {
            **_base_env(_NODE_LOGGING),
            "FABRIC_CFG_PATH": str(self.state_dir / "peercfg"),
            "CORE_PEER_ID": f"peer0.{PEER_DOMAIN}",
            "CORE_PEER_ADDRESS": self.peer_endpoint,
            "CORE_PEER_LISTENADDRESS": self.peer_endpoint,
            "CORE_PEER_CHAINCODEADDRESS": f"127.0.0.1:{self.ports['peer_chaincode']}",
            "CORE_PEER_CHAINCODELISTENADDRESS": f"127.0.0.1:{self.ports['peer_chaincode']}",
            "CORE_PEER_GOSSIP_BOOTSTRAP": self.peer_endpoint,
            "CORE_PEER_GOSSIP_EXTERNALENDPOINT": self.peer_endpoint,
            # The only peer of its organization: its leader from the start, no election to wait for.
            "CORE_PEER_GOSSIP_USELEADERELECTION": "false",
            "CORE_PEER_GOSSIP_ORGLEADER": "true",
            "CORE_PEER_LOCALMSPID": PEER_MSP,
            "CORE_PEER_MSPCONFIGPATH": str(self._peer_node / "msp"),
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_TLS_CERT_FILE": str(tls / "server.crt"),
            "CORE_PEER_TLS_KEY_FILE": str(tls / "server.key"),
            "CORE_PEER_TLS_ROOTCERT_FILE": str(tls / "ca.crt"),
            "CORE_PEER_FILESYSTEMPATH": str(self.state_dir / "peer"),
            "CORE_LEDGER_SNAPSHOTS_ROOTDIR": str(self.state_dir / "peer" / "snapshots"),
            "CORE_OPERATIONS_LISTENADDRESS": f"127.0.0.1:{self.ports['peer_ops']}",
            "CORE_METRICS_PROVIDER": "disabled",
            "CORE_CHAINCODE_EXTERNALBUILDERS": json.dumps(builders),
        }

    def _start(self, name: str) -> None:
        """Start the orderer or the peer (again, after :meth:`stop_peer`), its output appended to its log."""
        command = [self._bin("orderer")] if name == "orderer" else [self._bin("peer"), "node", "start"]
        with self.log(name).open("ab") as log:
            process = subprocess.Popen(
                command,
                env=self._env(name),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.state_dir,
                start_new_session=True,  # a Ctrl-C in the caller's terminal is not theirs to receive
            )
        self._processes[name] = process
        self.pids[name] = process.pid
        self._save()

    def _wait_healthy(self, name: str, timeout: float) -> None:
        """Until the node's health check answers 200 and its gRPC listeners accept connections (the operations
        endpoint comes up first)."""
        url = f"http://127.0.0.1:{self.ports[name + '_ops']}/healthz"
        listeners = [self.ports[name]] + ([self.ports["orderer_admin"]] if name == "orderer" else [])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(self.pids[name]):
                raise FabricError(f"the {name} exited:\n{self._tail(name)}")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    healthy = answer.status == 200
                for port in listeners if healthy else ():
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                if healthy:
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        raise FabricError(f"the {name} was not healthy at {url} within {timeout:g} s:\n{self._tail(name)}")

    def _admin_env(self, user: str = "Admin") -> dict[str, str]:
        """The peer CLI's environment, as an identity of the peer organization."""
        return {
            **_base_env(),
            "FABRIC_CFG_PATH": str(self.state_dir / "peercfg"),
            "CORE_PEER_LOCALMSPID": PEER_MSP,
            "CORE_PEER_MSPCONFIGPATH": str(self.user(user)["msp"]),
            "CORE_PEER_ADDRESS": self.peer_endpoint,
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_TLS_ROOTCERT_FILE": str(self.peer_tls_ca),
        }

    def _join_channel(self) -> None:
        tls = self._orderer_node / "tls"
        self._run(
            [
                self._bin("osnadmin"),
                "channel",
                "join",
                "--channelID",
                self.channel,
                "--config-block",
                str(self.state_dir / "genesis.block"),
                "-o",
                f"127.0.0.1:{self.ports['orderer_admin']}",
                "--ca-file",
                str(tls / "ca.crt"),
                "--client-cert",
                str(tls / "server.crt"),
                "--client-key",
                str(tls / "server.key"),
            ],
            env=_base_env(),
            what="osnadmin channel join",
        )
        self._run(
            [self._bin("peer"), "channel", "join", "-b", str(self.state_dir / "genesis.block")],
            env=self._admin_env(),
            what="peer channel join",
        )

    def _orderer_args(self) -> list[str]:
        return ["-o", f"127.0.0.1:{self.ports['orderer']}", "--tls", "--cafile", str(self.orderer_tls_ca)]

    def _deploy(self, binary: Path, timeout: float) -> None:
        label = f"{CHAINCODE}_1"
        package = _package(label, f"127.0.0.1:{self.ports['chaincode']}")
        path = self.state_dir / "chaincode.tar.gz"
        path.write_bytes(package)
        self.package_id = f"{label}:{hashlib.sha256(package).hexdigest()}"
        env = self._admin_env()
        self._run([self._bin("peer"), "lifecycle", "chaincode", "install", str(path)], env=env, what="install")
        self._start_chaincode(binary)
        self._wait_raft_leader(timeout)
        self._define(self.chaincode, "User1")

    def deploy_chaincode(self, name: str, user: str) -> dict[str, Any]:
        """Another organization's deployment on the channel: the chaincode defined again under ``name`` (the same
        installed package and server; its own world state) with ``user`` as its operator. Returns the settings of
        a profile for it, signing as ``user``."""
        if not _CHAINCODE_NAME.fullmatch(name) or name in self.chaincodes:
            raise FabricError(f"{name!r} is not a new chaincode name (letters, digits, - and _)")
        self._define(name, user)
        self._save()
        return self.profile_settings(user, name)

    def _define(self, name: str, user: str) -> None:
        """Approve and commit the chaincode definition ``name`` on the installed package, then have ``user`` call
        ``Configure``: it becomes that deployment's operator and fixes the EIP-712 chain id."""
        env = self._admin_env()
        definition = ["--channelID", self.channel, "--name", name, "--version", "1", "--sequence", "1"]
        self._run(
            [
                self._bin("peer"),
                "lifecycle",
                "chaincode",
                "approveformyorg",
                *self._orderer_args(),
                *definition,
                "--package-id",
                self.package_id,
            ],
            env=env,
            what=f"approveformyorg {name}",
        )
        self._run(
            [
                self._bin("peer"),
                "lifecycle",
                "chaincode",
                "commit",
                *self._orderer_args(),
                *definition,
                "--peerAddresses",
                self.peer_endpoint,
                "--tlsRootCertFiles",
                str(self.peer_tls_ca),
            ],
            env=env,
            what=f"commit {name}",
        )
        args = json.dumps({"Args": ["Configure", str(self.chain_id)]})
        self._run(
            [
                self._bin("peer"),
                "chaincode",
                "invoke",
                *self._orderer_args(),
                "-C",
                self.channel,
                "-n",
                name,
                "-c",
                args,
                "--peerAddresses",
                self.peer_endpoint,
                "--tlsRootCertFiles",
                str(self.peer_tls_ca),
                "--waitForEvent",
            ],
            env=self._admin_env(user),
            what=f"chaincode {name} Configure",
        )
        self.chaincodes[name] = user

    def _start_chaincode(self, binary: Path) -> None:
        # A clean environment: a CORE_PEER_TLS_ENABLED leaking in would switch the server to TLS.
        env = {
            "PATH": "/usr/bin:/bin",
            "CHAINCODE_SERVER_ADDRESS": f"127.0.0.1:{self.ports['chaincode']}",
            "CORE_CHAINCODE_ID_NAME": self.package_id,
        }
        with self.log("chaincode").open("ab") as log:
            process = subprocess.Popen(
                [str(binary)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.state_dir,
                start_new_session=True,
            )
        self._processes["chaincode"] = process
        self.pids["chaincode"] = process.pid
        self._save()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise FabricError(f"the chaincode server exited:\n{self._tail('chaincode')}")
            try:
                socket.create_connection(("127.0.0.1", self.ports["chaincode"]), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise FabricError("the chaincode server did not listen within 30 s")

    def _wait_raft_leader(self, timeout: float) -> None:
        """The orderer's Raft node must be leader before it orders anything (approve would fail before)."""
        url = f"http://127.0.0.1:{self.ports['orderer_ops']}/metrics"
        wanted = f'consensus_etcdraft_is_leader{{channel="{self.channel}"}} 1'
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if wanted in answer.read().decode():
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        raise FabricError(f"the orderer elected no Raft leader within {timeout:g} s:\n{self._tail('orderer')}")

    # -- stop -------------------------------------------------------------------------------------------------
    def down(self) -> None:
        """Stop the chaincode server, the peer and the orderer by their PIDs."""
        for name in ("chaincode", "peer", "orderer"):
            pid = self.pids.pop(name, None)
            if pid is not None:
                stop_pid(pid)
            process = self._processes.pop(name, None)
            if process is not None:
                process.wait(timeout=10)
        self._state_file.unlink(missing_ok=True)

    def stop_peer(self) -> None:
        """Stop the peer only (tests: the ledger unreachable); :meth:`start_peer` brings it back."""
        pid = self.pids.pop("peer", None)
        if pid is not None:
            stop_pid(pid)
        process = self._processes.pop("peer", None)
        if process is not None:
            process.wait(timeout=10)
        self._save()

    def start_peer(self, timeout: float = 60.0) -> None:
        self._start("peer")
        self._wait_healthy("peer", timeout)

    # -- reading ----------------------------------------------------------------------------------------------
    def height(self) -> int:
        out = self._run(
            [self._bin("peer"), "channel", "getinfo", "-c", self.channel], env=self._admin_env(), what="getinfo"
        )
        info = json.loads(out[out.index("{") :].strip())
        return int(info["height"])

    def profile_settings(self, user: str = "User1", chaincode: str | None = None) -> dict[str, Any]:
        """The ``[settings]`` of a ``fabric`` ledger profile for this network, signing as ``user``, on ``chaincode``
        (by default the first deployment's)."""
        identity = self.user(user)
        return {
            "peer": self.peer_endpoint,
            "tls_ca": str(self.peer_tls_ca),
            "msp_id": PEER_MSP,
            "cert": str(identity["cert"]),
            "key": str(identity["key"]),
            "channel": self.channel,
            "chaincode": chaincode or self.chaincode,
            "chain_id": self.chain_id,
        }

    def _tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join(self.log(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _base_env(logging: str = "warning") -> dict[str, str]:
    """What Fabric's processes inherit: nothing of the caller's CORE_*/ORDERER_* settings."""
    keep = ("PATH", "HOME", "TMPDIR", "LANG")
    return {**{k: v for k, v in os.environ.items() if k in keep}, "FABRIC_LOGGING_SPEC": logging}


def write_profile(network: FabricNetwork, path: Path, settings: dict[str, Any] | None = None) -> None:
    from finp2p.ledger import LedgerProfile
    from finp2p.ledger_profiles import save_profile

    save_profile(path, LedgerProfile("fabric", network.ledger_id, settings or network.profile_settings()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devnet/fabric", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "prepare", "deploy", "profile"])
    parser.add_argument("name", nargs="?", help="deploy: the new chaincode's name (one per organization)")
    parser.add_argument("--user", default="User2", help="deploy, profile: its identity, User1 to User4 of Org1")
    parser.add_argument("--read-only", action="store_true", help="profile: for reading (an auditor's)")
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE, help="where PIDs, logs and crypto are kept")
    parser.add_argument(
        "--profile", type=Path, default=DEFAULT_PROFILE, help="the ledger profile to write (up, deploy, profile)"
    )
    args = parser.parse_args(argv)
    state = args.state.resolve()
    try:
        if args.command == "prepare":
            print(f"Fabric {find_fabric()}\nchaincode {build_chaincode()}")
            return 0
        running = FabricNetwork.running(state)
        if args.command == "up":
            if running is not None:
                print(f"a Fabric devnet runs already: peer {running.peer_endpoint}; `devnet/fabric down` stops it")
                return 0
            stale = FabricNetwork.load(state)
            if stale is not None:
                stale.down()  # what is left of a network that half exited
            network = FabricNetwork(state).up()
            write_profile(network, args.profile)
            t = network.timings
            print(
                f"Fabric devnet up: peer {network.peer_endpoint}, orderer 127.0.0.1:{network.ports['orderer']}, "
                f"channel {network.channel}, chaincode {network.chaincode} ({network.package_id[:24]}…)\n"
                f"network {t['network_up_s']} s, lifecycle {t['lifecycle_s']} s, chaincode build "
                f"{t['chaincode_build_s']} s; logs in {state / 'logs'}\nprofile {args.profile}"
            )
            return 0
        if args.command == "down":
            found = running or FabricNetwork.load(state)
            if found is None:
                print("no Fabric devnet is running")
                return 0
            pids = dict(found.pids)
            found.down()
            print(f"stopped the Fabric devnet ({', '.join(f'{k} {v}' for k, v in pids.items())})")
            return 0
        if running is None:
            print("no Fabric devnet is running")
            return 3
        if args.command == "deploy":
            if not args.name:
                parser.error("deploy needs the chaincode's NAME")
            write_profile(running, args.profile, running.deploy_chaincode(args.name, args.user))
            print(f"chaincode {args.name} on channel {running.channel}, operator {args.user}: profile {args.profile}")
            return 0
        if args.command == "profile":
            settings = running.profile_settings(args.user, args.name)
            write_profile(running, args.profile, {**settings, **({"read_only": True} if args.read_only else {})})
            print(f"profile {args.profile}: channel {running.channel} as {args.user}")
            return 0
        print(
            f"running: peer {running.peer_endpoint} (pid {running.pids['peer']}), orderer pid "
            f"{running.pids['orderer']}, chaincode pid {running.pids['chaincode']}, channel {running.channel} "
            f"height {running.height()}"
        )
        return 0
    except (FabricError, FabricNotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
