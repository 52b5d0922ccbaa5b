"""secp256k1 keys, FinIDs, signatures and key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import canonical as canon
from finp2p.identity.keys import (
    SigningKey,
    eth_address,
    load_key,
    passphrase_from,
    recover_fin_ids,
    save_key,
    verify,
    verify_digest,
)

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_fin_id_and_address_of_a_known_key() -> None:
    key = SigningKey((1).to_bytes(32, "big"))
    # The generator point G, compressed, and its well-known Ethereum address.
    assert key.fin_id == "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    assert key.address == eth_address(key.fin_id) == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"


def test_signatures_are_64_byte_low_s_and_recoverable_as_ecrecover_does() -> None:
    key = SigningKey.generate()
    for i in range(50):
        digest = canon.digest("envelope", {"i": i})
        sig = key.sign_digest(digest)
        assert len(sig) == 64
        assert int.from_bytes(sig[32:], "big") <= N // 2
        assert verify_digest(key.fin_id, digest, sig)
        # ecrecover with v = 27 or 28 yields the signer: one of the two candidates is the FinID.
        assert key.fin_id in recover_fin_ids(digest, sig)


def test_high_s_signature_is_refused() -> None:
    key = SigningKey.generate()
    digest = canon.digest("envelope", {"x": 1})
    sig = key.sign_digest(digest)
    s = int.from_bytes(sig[32:], "big")
    high = sig[:32] + (N - s).to_bytes(32, "big")  # the same signature, malleated
    with pytest.raises(FinP2PError) as info:
        verify(key.fin_id, "envelope", {"x": 1}, high.hex())
    assert info.value.code is ErrorCode.MALFORMED


def test_threads_signing_and_verifying_at_once_each_get_their_own_signatures_right() -> None:
    """libsecp256k1 runs without the interpreter lock, with per-thread scratch structures: four threads signing and
    verifying at the same time never see another's signature."""
    from concurrent.futures import ThreadPoolExecutor

    from finp2p.identity.keys import verify_digest

    def work(n: int) -> list[bool]:
        key = SigningKey.generate()
        out = []
        for i in range(300):
            digest = canon.digest("envelope", {"thread": n, "i": i})
            signature = key.sign_digest(digest)
            other = canon.digest("envelope", {"thread": n, "i": i + 1})
            out.append(verify_digest(key.fin_id, digest, signature) and not verify_digest(key.fin_id, other, signature))
        return out

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(4)))
    assert all(all(r) for r in results) and sum(map(len, results)) == 1200


def test_domains_separate_signatures() -> None:
    key = SigningKey.generate()
    sig = key.sign("credential", {"a": 1})
    with pytest.raises(FinP2PError) as info:
        verify(key.fin_id, "envelope", {"a": 1}, sig.hex(), known={key.fin_id})
    assert info.value.code is ErrorCode.BAD_SIGNATURE


def test_key_repr_never_shows_the_secret() -> None:
    key = SigningKey.generate()
    assert key.secret_bytes().hex() not in repr(key) and key.fin_id in repr(key)


def test_key_file_plain(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "keys" / "finid.key"
    save_key(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path).fin_id == key.fin_id


def test_key_file_encrypted(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "finid.key"
    save_key(path, key, b"correct horse")
    assert key.secret_bytes().hex() not in path.read_text()
    assert load_key(path, b"correct horse").fin_id == key.fin_id
    for wrong in (b"wrong", None):
        with pytest.raises(FinP2PError) as info:
            load_key(path, wrong)
        assert info.value.code is ErrorCode.KEY_FILE


def test_readable_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "finid.key"
    save_key(path, SigningKey.generate())
    os.chmod(path, 0o644)
    with pytest.raises(FinP2PError) as info:
        load_key(path)
    assert "chmod 600" in info.value.detail


def test_passphrase_sources(tmp_path: Path) -> None:
    pf = tmp_path / "pass"
    pf.write_text("from-file\n")
    assert passphrase_from(pf, {}) == b"from-file"
    assert passphrase_from(None, {"FINP2P_KEY_PASSPHRASE": "from-env"}) == b"from-env"
    assert passphrase_from(None, {}) is None
