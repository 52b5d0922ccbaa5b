"""Merkle trees of receipt hashes, as the receipt registries record them: many receipts for one transaction.

Pairs are hashed sorted (``keccak256(min || max)``), so a proof is a plain list of siblings with no left/right
flags, and an odd node is carried up unchanged. A tree of one leaf has that leaf as its root and an empty proof,
so recording one receipt and recording a batch are the same operation. The Solidity registry and the Fabric
chaincode compute roots the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from finp2p.identity.canonical import keccak256


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak256(a + b) if a < b else keccak256(b + a)


def _check(leaves: Sequence[bytes]) -> None:
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    for leaf in leaves:
        if len(leaf) != 32:
            raise ValueError(f"leaves are 32-byte hashes, got {len(leaf)} bytes")


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    _check(leaves)
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        above = [_pair(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])
        levels.append(above)
    return levels


def root(leaves: Sequence[bytes]) -> bytes:
    """The root of ``leaves`` (in the order given)."""
    return _levels(leaves)[-1][0]


def proofs(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """One proof per leaf: the siblings from the leaf up to the root."""
    levels = _levels(leaves)
    out: list[list[bytes]] = []
    for index in range(len(leaves)):
        path: list[bytes] = []
        position = index
        for level in levels[:-1]:
            sibling = position ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            position //= 2
        out.append(path)
    return out


def root_of(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root a proof leads to from ``leaf``; compare it with a recorded root."""
    node = leaf
    for sibling in proof:
        node = _pair(node, sibling)
    return node
