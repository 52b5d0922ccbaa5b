package finp2p

import (
	"encoding/hex"
	"math/big"

	"golang.org/x/crypto/sha3"
)

// The owner's consent is EIP-712 typed data over the operation, exactly as the Solidity contract FinP2PAssets
// computes it, so that one signature format serves both ledgers. Domain: name "FinP2P", version "1", the chain id
// fixed by Configure (0 by default) and a verifyingContract derived from the channel and chaincode names:
// the last 20 bytes of keccak256("fabric:<channel>/<chaincode>").
var (
	domainTypeHash   = keccak([]byte("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"))
	transferTypeHash = keccak([]byte("Transfer(string operationId,string assetId,string source,string destination,uint256 quantity)"))
	holdTypeHash     = keccak([]byte("Hold(string operationId,string assetId,string source,string destination,uint256 quantity,uint256 expiry)"))
	redeemTypeHash   = keccak([]byte("Redeem(string operationId,string assetId,string source,uint256 quantity)"))
)

func keccak(parts ...[]byte) []byte {
	h := sha3.NewLegacyKeccak256()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func word(n *big.Int) []byte {
	out := make([]byte, 32)
	n.FillBytes(out)
	return out
}

// VerifyingContract is the 20-byte stand-in for a contract address in the EIP-712 domain of a chaincode.
func VerifyingContract(channel, chaincode string) []byte {
	return keccak([]byte("fabric:" + channel + "/" + chaincode))[12:]
}

// DomainSeparator of the FinP2P domain for one chain id and verifying contract.
func DomainSeparator(chainID *big.Int, contract []byte) []byte {
	padded := make([]byte, 32)
	copy(padded[12:], contract)
	return keccak(domainTypeHash, keccak([]byte("FinP2P")), keccak([]byte("1")), word(chainID), padded)
}

// ConsentDigest is the 32-byte digest the source signs for op; kind is Transfer, Hold or Redeem.
func ConsentDigest(kind string, op *Operation, domainSeparator []byte) ([]byte, error) {
	str := func(s string) []byte { return keccak([]byte(s)) }
	var structHash []byte
	switch kind {
	case "Transfer":
		structHash = keccak(transferTypeHash, str(op.OperationID), str(op.AssetID), str(op.Source), str(op.Destination), word(op.quantity))
	case "Hold":
		structHash = keccak(holdTypeHash, str(op.OperationID), str(op.AssetID), str(op.Source), str(op.Destination), word(op.quantity), word(op.expiry))
	case "Redeem":
		structHash = keccak(redeemTypeHash, str(op.OperationID), str(op.AssetID), str(op.Source), word(op.quantity))
	default:
		return nil, errInvalidField("kind", "no consent is defined for "+kind)
	}
	return keccak([]byte{0x19, 0x01}, domainSeparator, structHash), nil
}

func hex0x(b []byte) string { return "0x" + hex.EncodeToString(b) }
