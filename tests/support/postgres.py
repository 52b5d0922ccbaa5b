"""A throwaway PostgreSQL server from Debian's binaries, in a temporary directory, on a free loopback port.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user the Debian package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg

from tests.support.ports import free_port


def pg_bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL's initdb is not installed: `make test` installs it (scripts/ensure-postgres.sh)")
    return Path(found[-1]).parent


class PostgresServer:
    def __init__(self, base: Path) -> None:
        self.bin = pg_bin_dir()
        self.base = base
        self.data = base / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.pid: int | None = None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        opts = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.base / "server.log"), "-w", "start")
        self.pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(subprocess.SubprocessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(self.pid):
            time.sleep(0.1)
        if _alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None
        shutil.rmtree(self.base, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
