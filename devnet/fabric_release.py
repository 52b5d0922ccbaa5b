"""Where the Fabric binaries come from: Fabric's own release archive, never files committed in the project.

    python -m devnet.fabric_release        find (or unpack) Fabric and print its directory

Looked for in this order:

1. ``$FABRIC_HOME``: a directory laid out like the release (``bin/peer``, ..., ``config/core.yaml``), which is
   what a user who ran Fabric's ``install-fabric.sh binary`` has;
2. the cache ``${XDG_CACHE_HOME:-~/.cache}/finp2p/fabric/<version>/``, filled by a step below on an earlier run;
3. a release archive, unpacked into the cache once its sha256 is checked: the one ``$FABRIC_ARCHIVE`` names, or
   ``../shared/fabric/hyperledger-fabric-linux-amd64-<version>.tar.gz`` beside the project when it exists. Its
   checksum comes from a ``SHA256SUMS`` file beside it, else from ``$FABRIC_SHA256``, else from
   :data:`PINNED_SHA256`; an archive with no checksum to compare with is refused;
4. on a machine with internet, the official release download (:data:`RELEASE_URL`), checked against
   ``$FABRIC_SHA256`` or :data:`RELEASE_SHA256`.

When none works, FP6023 says what to do. Standard library only: this runs before any venv exists.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

VERSION = "3.1.5"
ARCHIVE_NAME = f"hyperledger-fabric-linux-amd64-{VERSION}.tar.gz"
RELEASE_URL = f"https://github.com/hyperledger/fabric/releases/download/v{VERSION}/{ARCHIVE_NAME}"
ROOT = Path(__file__).resolve().parent.parent
SHARED_ARCHIVE = ROOT.parent / "shared" / "fabric" / ARCHIVE_NAME
#: The binaries and config files the devnet uses; a directory missing any of them is not a Fabric release.
BINARIES = ("peer", "orderer", "osnadmin", "configtxgen", "cryptogen")
CONFIGS = ("core.yaml", "orderer.yaml")
#: Checksums of local release archives the project knows, by file name: the archive of the development machines.
PINNED_SHA256 = {
    ARCHIVE_NAME: "86e5b290a7a11ed5f0d616d4cb944df2b08a47d714147daaa4302d3072a34477",
}
#: The official download's sha256. Not measured yet (the development machines cannot reach the release page):
#: until it is pinned here, a download is used only with ``FABRIC_SHA256`` set to the checksum Fabric publishes.
RELEASE_SHA256: str | None = None
_DOWNLOAD_TIMEOUT_S = 120


class FabricNotFound(RuntimeError):
    """No usable Fabric release; the message says what to do."""


def cache_dir(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "finp2p" / "fabric"


def is_release(directory: Path) -> bool:
    return all((directory / "bin" / b).is_file() for b in BINARIES) and all(
        (directory / "config" / c).is_file() for c in CONFIGS
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_sha256(archive: Path, env: dict[str, str]) -> str | None:
    """The checksum a local archive must have: its SHA256SUMS line, ``$FABRIC_SHA256``, or the pinned one."""
    sums = archive.parent / "SHA256SUMS"
    if sums.is_file():
        for line in sums.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("*") == archive.name:
                return parts[0].lower()
    return env.get("FABRIC_SHA256", "").lower() or PINNED_SHA256.get(archive.name)


def unpack(archive: Path, target: Path, expected: str | None) -> Path:
    """Check ``archive``'s sha256 and unpack it into ``target`` (atomically: a half-unpacked cache never counts)."""
    if expected is None:
        raise FabricNotFound(
            f"FP6023 no checksum for {archive}: put its SHA256SUMS beside it or set FABRIC_SHA256 to its sha256"
        )
    found = sha256_of(archive)
    if found != expected:
        raise FabricNotFound(f"FP6023 {archive} has sha256 {found}, expected {expected}: a damaged or other archive")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                # Only the release's own tree: no absolute paths, no way out, no links or devices.
                name = Path(member.name)
                if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
                    raise FabricNotFound(f"FP6023 {archive} holds an unexpected entry {member.name!r}")
            tar.extractall(partial, filter="data")
        if not is_release(partial):
            raise FabricNotFound(f"FP6023 {archive} is not a Fabric release archive (bin/ and config/ missing)")
        for binary in (partial / "bin").iterdir():
            binary.chmod(0o755)
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return target


def download(url: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    path = into / url.rsplit("/", 1)[-1]
    partial = path.with_name(path.name + ".partial")
    with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as answer, partial.open("wb") as f:  # noqa: S310
        shutil.copyfileobj(answer, f)
    partial.rename(path)
    return path


def find_fabric(env: dict[str, str] | None = None, *, allow_download: bool = True) -> Path:
    """The directory of a Fabric release (``bin/``, ``config/``), unpacking or downloading it the first time."""
    env = dict(os.environ) if env is None else env
    home = env.get("FABRIC_HOME")
    if home:
        if is_release(Path(home)):
            return Path(home)
        raise FabricNotFound(
            f"FP6023 FABRIC_HOME={home} is not a Fabric release directory: it needs bin/{', bin/'.join(BINARIES)} "
            f"and config/{', config/'.join(CONFIGS)} (unset it to use the cache)"
        )
    cached = cache_dir(env) / VERSION
    if is_release(cached):
        return cached
    archives = [Path(env["FABRIC_ARCHIVE"])] if env.get("FABRIC_ARCHIVE") else []
    archives.append(SHARED_ARCHIVE)
    for archive in archives:
        if archive.is_file():
            return unpack(archive, cached, expected_sha256(archive, env))
        if env.get("FABRIC_ARCHIVE") and archive == Path(env["FABRIC_ARCHIVE"]):
            raise FabricNotFound(f"FP6023 FABRIC_ARCHIVE={archive} does not exist")
    problem = "downloads are off"
    if allow_download and env.get("FABRIC_NO_DOWNLOAD", "") in ("", "0"):
        try:
            archive = download(RELEASE_URL, cache_dir(env) / "downloads")
            return unpack(archive, cached, env.get("FABRIC_SHA256", "").lower() or RELEASE_SHA256)
        except OSError as exc:
            problem = f"downloading {RELEASE_URL} failed: {exc}"
    raise FabricNotFound(
        f"FP6023 Hyperledger Fabric {VERSION} not found ({problem}). Install it with Fabric's installer "
        f"(`curl -sSLO https://raw.githubusercontent.com/hyperledger/fabric/main/scripts/install-fabric.sh && "
        f"bash install-fabric.sh --fabric-version {VERSION} binary`) and set FABRIC_HOME to the directory holding "
        f"bin/ and config/, or set FABRIC_ARCHIVE to a downloaded {ARCHIVE_NAME}"
    )


def main() -> int:
    try:
        print(find_fabric())
    except FabricNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
