package finp2p

import (
	"encoding/hex"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// parseFinID checks a FinID: the lowercase hex of a compressed secp256k1 public key on the curve (one key has
// exactly one FinID string, since typed data hashes the string).
func parseFinID(finID, what string) (*secp256k1.PublicKey, error) {
	if len(finID) != 66 || (finID[:2] != "02" && finID[:2] != "03") {
		return nil, errInvalidFinID(what)
	}
	for _, c := range finID {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, errInvalidFinID(what)
		}
	}
	raw, err := hex.DecodeString(finID)
	if err != nil {
		return nil, errInvalidFinID(what)
	}
	key, err := secp256k1.ParsePubKey(raw)
	if err != nil {
		return nil, errInvalidFinID(what)
	}
	return key, nil
}

// verifySignature checks a 64-byte r || s signature with low s (as FinP2P signs, and as the Solidity contract
// accepts) over digest by the key.
func verifySignature(key *secp256k1.PublicKey, digest, signature []byte) bool {
	if len(signature) != 64 || len(digest) != 32 {
		return false
	}
	var r, s secp256k1.ModNScalar
	if r.SetByteSlice(signature[:32]) || s.SetByteSlice(signature[32:]) { // overflow: not below the group order
		return false
	}
	if r.IsZero() || s.IsZero() || s.IsOverHalfOrder() {
		return false
	}
	return ecdsa.NewSignature(&r, &s).Verify(digest, key)
}
