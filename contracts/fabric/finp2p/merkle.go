package finp2p

import "bytes"

// Merkle trees of receipt hashes as finp2p.assets.merkle computes them: pairs hashed sorted,
// keccak256(min || max), so a proof is a plain list of siblings.

// RootOf is the root that proof leads to from leaf.
func RootOf(leaf []byte, proof [][]byte) []byte {
	node := leaf
	for _, sibling := range proof {
		if bytes.Compare(node, sibling) < 0 {
			node = keccak(node, sibling)
		} else {
			node = keccak(sibling, node)
		}
	}
	return node
}
