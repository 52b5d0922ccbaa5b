from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from devnet.fabric import FabricNetwork
from devnet.hardhat import HardhatNode
from finp2p.demo.ports import use_port_range
from tests.support.ethereum import EthWorld, make_eth_world
from tests.support.fabric import FabricWorld, make_fabric_world
from tests.support.ports import free_port
from tests.support.postgres import PostgresServer

TESTS = Path(__file__).parent


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session, started with initdb/pg_ctl and stopped by its PID.

    Its directory is outside pytest's temporary tree, which only root may enter, because the server runs as the
    ``postgres`` user when the tests run as root.
    """
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="finp2p-pg-")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


def pytest_configure(config: pytest.Config) -> None:
    """Test workers running side by side (``pytest -n``) each choose ports from a range of their own, and a run
    without workers one above theirs: all below the ephemeral ports the system gives outgoing connections, so a
    port chosen now is not taken by a connection before the server it is for binds it (a README run binds some
    minutes later)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        n = int(worker[2:]) % 8
        low, high = 20_000 + n * 1_500, 20_000 + (n + 1) * 1_500
    elif not worker:
        low, high = 32_000, 32_768
    else:
        return
    # The commands a test runs that choose ports of their own (`finp2p devnet up`, `finp2p demo`) take the upper
    # half of the range, so that neither they nor the worker choose a port the other has chosen but not yet bound.
    use_port_range(low, high)


def _install(base: Path, projects: list[Path]) -> Path:
    wheels, site = base / "wheels", base / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    for source in projects:
        # Built from a copy: a build writes into the project's folder, which other test workers build from too.
        project = base / "src" / source.name
        shutil.copytree(source, project, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        subprocess.run(
            [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(project)],
            check=True,
            timeout=300,
            cwd=base,
        )
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), *map(str, sorted(wheels.glob("*.whl")))],
        check=True,
        timeout=300,
    )
    return site


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test-only plugin distributions, built into wheels and pip-installed into a site directory.

    They are real installed distributions (metadata, entry points) but live in their own directory, which a test
    puts on a subprocess's PYTHONPATH, so they never leak into the other tests of the session.
    """
    return _install(tmp_path_factory.mktemp("plugins"), sorted((TESTS / "plugins").iterdir()))


@pytest.fixture(scope="session")
def good_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only the well-behaved test plugin (``finp2p-test-plugin``), for nodes that run as processes."""
    return _install(tmp_path_factory.mktemp("good-plugins"), [TESTS / "plugins" / "finp2p-test-plugin"])


@pytest.fixture(scope="session")
def memory_ledger_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example ledger plugin (``examples/memory-ledger``), built and installed like the test plugins."""
    return _install(tmp_path_factory.mktemp("memory-ledger"), [TESTS.parent / "examples" / "memory-ledger"])


@pytest.fixture(scope="session")
def hardhat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HardhatNode]:
    """A real Hardhat node for the session, on a free loopback port, stopped by its PID."""
    node = HardhatNode(tmp_path_factory.mktemp("hardhat"), free_port()).start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(params=["embedded", pytest.param("hardhat", marks=pytest.mark.hardhat)])
async def eth(request: pytest.FixtureRequest) -> AsyncIterator[EthWorld]:
    """Freshly deployed FinP2P contracts on the embedded chain and on a Hardhat node, with the operator's ledger."""
    node = request.getfixturevalue("hardhat") if request.param == "hardhat" else None
    world = await make_eth_world(request.param, node)
    try:
        yield world
    finally:
        await world.close()


@pytest.fixture(scope="session")
def fabric_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FabricNetwork]:
    """A real Fabric network for the session (orderer, peer and the chaincode server as processes, on free
    loopback ports, the chaincode deployed and configured), stopped by its PIDs."""
    network = FabricNetwork(tmp_path_factory.mktemp("fabric")).up()
    try:
        yield network
    finally:
        network.down()


@pytest.fixture
async def fab(fabric_network: FabricNetwork) -> AsyncIterator[FabricWorld]:
    """The operator's ledger on the session's Fabric network, with a clock the test may move forward."""
    world = make_fabric_world(fabric_network)
    try:
        yield world
    finally:
        await world.close()
