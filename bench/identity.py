"""Identity benchmark: envelope sign + verify against bare secp256k1 sign + verify, and warm chain verification.

    .venv/bin/python -m bench.identity [--seconds 2]

The baseline is the floor any envelope pays, the physical limit of the curve on this machine: libsecp256k1's own
ECDSA signature and verification (coincurve, the library the node signs with) over the same payload bytes, hashed
with SHA-256 by coincurve. The envelope adds canonical encoding, keccak-256 with domain separation, JSON encoding
and decoding, and its checks of every field. Aim: envelope rate / baseline rate >= 0.8.

The two are measured in turn, in 20 short rounds, and the ratio is the median of the rounds' (the spread is
printed): this shared machine's speed drifts by a third from one second to the next.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import coincurve

from bench.common import print_table, rate, rates_side_by_side
from finp2p.identity.keys import SigningKey
from finp2p.identity.trust import Trust
from finp2p.network.envelope import Envelope, seal
from tests.support.world import make_world

BODY = {"asset_id": "org-b:102:bond-2031", "quantity": 1_000_000, "source": "02" + "ab" * 32, "note": "x" * 64}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="time per measurement (envelope and baseline: each, in 20 rounds)"
    )
    args = parser.parse_args()

    key = SigningKey.generate()

    def envelope_round() -> None:
        env = seal(key, network_id="bench", type="asset.transfer", body=BODY, sender_org="org-a")
        got = Envelope.decode(env.encode())
        got.verify()

    payload = seal(key, network_id="bench", type="asset.transfer", body=BODY, sender_org="org-a").encode()
    bare_key = coincurve.PrivateKey()
    bare_pub = coincurve.PublicKey(bare_key.public_key.format())

    def bare_round() -> None:
        if not bare_pub.verify(bare_key.sign(payload), payload):
            raise AssertionError("coincurve failed its own signature")

    with tempfile.TemporaryDirectory() as tmp:
        world = make_world(Path(tmp))
        trust = Trust(world.genesis)
        chain = world.user_chain()
        trust.verify_chain(chain)  # warm: signatures verified once, expiry and revocation checked every time

        def chain_round() -> None:
            trust.verify_chain(chain)

        def cold_chain_round() -> None:
            Trust(world.genesis).verify_chain(chain)

        (envelope_rate, bare_rate), ratios = rates_side_by_side([envelope_round, bare_round], seconds=args.seconds)
        warm_rate = rate(chain_round, seconds=args.seconds)
        cold_rate = rate(cold_chain_round, seconds=args.seconds)

    ratio = statistics.median(ratios)
    print_table(
        "identity (one core)",
        ["measurement", "per second", "µs each", "ratio to baseline"],
        [
            [
                "envelope seal + encode + decode + verify",
                f"{envelope_rate:,.0f}",
                f"{1e6 / envelope_rate:.1f}",
                f"{ratio:.2f} ({ratios[len(ratios) // 10]:.2f}-{ratios[-1 - len(ratios) // 10]:.2f}; aim >= 0.8)",
            ],
            ["baseline: libsecp256k1 (coincurve) sign + verify", f"{bare_rate:,.0f}", f"{1e6 / bare_rate:.1f}", "1.00"],
            ["credential chain (3 links), warm cache", f"{warm_rate:,.0f}", f"{1e6 / warm_rate:.1f}", ""],
            ["credential chain (3 links), cold", f"{cold_rate:,.0f}", f"{1e6 / cold_rate:.1f}", ""],
        ],
    )
    print(
        f"envelope/baseline ratio: median {ratio:.2f} of {len(ratios)} interleaved rounds "
        f"({'meets' if ratio >= 0.8 else 'misses'} the aim of 0.8)"
    )


if __name__ == "__main__":
    main()
