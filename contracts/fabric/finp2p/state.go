package finp2p

import (
	"encoding/json"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
)

// Keys of the world state. Asset ids, FinIDs and operation ids are joined with a NUL-free separator that none of
// them may contain (they are checked to be printable text).
const (
	keyConfig  = "config"
	prefAsset  = "asset~"
	prefSupply = "supply~"
	prefBal    = "balance~"
	prefOp     = "operation~"
	prefHold   = "hold~"
	prefTpl    = "template~"
	prefRoot   = "root~"
	sep        = "~"
)

// txState reads and writes the world state of one transaction. Fabric's GetState does not see the
// transaction's own writes, so writes are kept here too and read back from here (a transfer to oneself would
// otherwise lose the debit).
type txState struct {
	stub    shim.ChaincodeStubInterface
	written map[string][]byte
}

func newState(stub shim.ChaincodeStubInterface) *txState {
	return &txState{stub: stub, written: map[string][]byte{}}
}

func (s *txState) get(key string) ([]byte, error) {
	if v, ok := s.written[key]; ok {
		return v, nil
	}
	return s.stub.GetState(key)
}

func (s *txState) getJSON(key string, into any) (bool, error) {
	raw, err := s.get(key)
	if err != nil || raw == nil {
		return false, err
	}
	return true, json.Unmarshal(raw, into)
}

func (s *txState) put(key string, value []byte) error {
	s.written[key] = value
	return s.stub.PutState(key, value)
}

func (s *txState) putJSON(key string, value any) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return err
	}
	return s.put(key, raw)
}
