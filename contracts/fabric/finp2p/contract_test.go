package finp2p

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"sort"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/cid"
	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/queryresult"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ------------------------------------------------------------------------------------------- a mock ledger
// Only for these unit tests: the real chaincode runs on a real peer in the Python tests.

// ledger is committed world state; each transaction sees it as it was before the transaction (as on Fabric,
// where a transaction does not read its own writes) and its writes apply only if it succeeds.
type ledger struct {
	state map[string][]byte
	txs   int
	now   int64
}

type mockStub struct {
	shim.ChaincodeStubInterface
	ledger  *ledger
	txID    string
	pending map[string][]byte
	event   string
	payload []byte
}

func (m *mockStub) GetState(key string) ([]byte, error) { return m.ledger.state[key], nil }
func (m *mockStub) PutState(key string, value []byte) error {
	m.pending[key] = value
	return nil
}
func (m *mockStub) GetTxID() string { return m.txID }
func (m *mockStub) GetStateByRange(start, end string) (shim.StateQueryIteratorInterface, error) {
	var keys []string
	for k := range m.ledger.state {
		if k >= start && k < end {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	it := &mockIterator{}
	for _, k := range keys {
		it.kvs = append(it.kvs, &queryresult.KV{Key: k, Value: m.ledger.state[k]})
	}
	return it, nil
}

type mockIterator struct{ kvs []*queryresult.KV }

func (it *mockIterator) HasNext() bool { return len(it.kvs) > 0 }
func (it *mockIterator) Next() (*queryresult.KV, error) {
	kv := it.kvs[0]
	it.kvs = it.kvs[1:]
	return kv, nil
}
func (it *mockIterator) Close() error    { return nil }
func (m *mockStub) GetChannelID() string { return "finp2p" }
func (m *mockStub) GetTxTimestamp() (*timestamppb.Timestamp, error) {
	return &timestamppb.Timestamp{Seconds: m.ledger.now}, nil
}
func (m *mockStub) SetEvent(name string, payload []byte) error {
	m.event, m.payload = name, payload
	return nil
}
func (m *mockStub) GetSignedProposal() (*peer.SignedProposal, error) {
	spec, _ := proto.Marshal(&peer.ChaincodeInvocationSpec{
		ChaincodeSpec: &peer.ChaincodeSpec{ChaincodeId: &peer.ChaincodeID{Name: "finp2p"}},
	})
	payload, _ := proto.Marshal(&peer.ChaincodeProposalPayload{Input: spec})
	proposal, _ := proto.Marshal(&peer.Proposal{Payload: payload})
	return &peer.SignedProposal{ProposalBytes: proposal}, nil
}

type mockIdentity struct {
	cid.ClientIdentity
	msp, id string
}

func (m *mockIdentity) GetMSPID() (string, error) { return m.msp, nil }
func (m *mockIdentity) GetID() (string, error) {
	return base64.StdEncoding.EncodeToString([]byte(m.id)), nil
}

var (
	operatorID = &mockIdentity{msp: "Org1MSP", id: "x509::CN=User1@org1.example.com::CN=ca.org1.example.com"}
	intruderID = &mockIdentity{msp: "Org1MSP", id: "x509::CN=User2@org1.example.com::CN=ca.org1.example.com"}
)

// run executes one transaction as who; its writes are committed when it succeeds.
func (l *ledger) run(t *testing.T, who cid.ClientIdentity, fn func(contractapi.TransactionContextInterface) (string, error)) (string, *mockStub, error) {
	t.Helper()
	l.txs++
	stub := &mockStub{ledger: l, txID: "tx" + big.NewInt(int64(l.txs)).String(), pending: map[string][]byte{}}
	ctx := &contractapi.TransactionContext{}
	ctx.SetStub(stub)
	ctx.SetClientIdentity(who)
	out, err := fn(ctx)
	if err == nil {
		for k, v := range stub.pending {
			l.state[k] = v
		}
	}
	return out, stub, err
}

func (l *ledger) ok(t *testing.T, fn func(contractapi.TransactionContextInterface) (string, error)) string {
	t.Helper()
	out, _, err := l.run(t, operatorID, fn)
	if err != nil {
		t.Fatalf("unexpected refusal: %v", err)
	}
	return out
}

// refused checks that fn fails with the FinP2P code and error name given, and leaves the state unchanged.
func (l *ledger) refused(t *testing.T, who cid.ClientIdentity, code, name string, fn func(contractapi.TransactionContextInterface) (string, error)) {
	t.Helper()
	before := len(l.state)
	_, _, err := l.run(t, who, fn)
	if err == nil {
		t.Fatalf("expected %s %s, the transaction succeeded", code, name)
	}
	if !strings.HasPrefix(err.Error(), code+" "+name+" {") {
		t.Fatalf("expected %s %s, got %v", code, name, err)
	}
	if len(l.state) != before {
		t.Fatalf("a refused transaction changed the state")
	}
}

type key struct {
	priv  *secp256k1.PrivateKey
	finID string
}

func newKey(seed byte) key {
	priv := secp256k1.PrivKeyFromBytes([]byte(strings.Repeat(string([]byte{seed}), 32)))
	return key{priv, hex.EncodeToString(priv.PubKey().SerializeCompressed())}
}

func (k key) sign(digest []byte) string {
	compact := ecdsa.SignCompact(k.priv, digest, true) // v || r || s, low s
	return hex.EncodeToString(compact[1:])
}

func opJSON(op Operation) string {
	if op.Expiry == "" {
		op.Expiry = "0"
	}
	raw, _ := json.Marshal(op)
	return string(raw)
}

var cc = &Contract{}

func setup(t *testing.T) (*ledger, []byte) {
	l := &ledger{state: map[string][]byte{}, now: 1_800_000_000}
	l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) { return cc.Configure(ctx, "") })
	l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.CreateAsset(ctx, "org:102:a")
	})
	return l, DomainSeparator(big.NewInt(0), VerifyingContract("finp2p", "finp2p"))
}

func (l *ledger) consent(t *testing.T, who key, kind string, op Operation, domain []byte) string {
	t.Helper()
	parsed, err := parseOperation(opJSON(op))
	if err != nil {
		t.Fatal(err)
	}
	digest, err := ConsentDigest(kind, parsed, domain)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(Consent{Signature: who.sign(digest)})
	return string(raw)
}

func (l *ledger) balance(t *testing.T, finID string) string {
	t.Helper()
	return l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.BalanceOf(ctx, "org:102:a", finID)
	})
}

func (l *ledger) supply(t *testing.T) string {
	return l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.SupplyOf(ctx, "org:102:a")
	})
}

func bal(available, held string) string {
	return `{"available":"` + available + `","held":"` + held + `"}`
}

// ----------------------------------------------------------------------------------------------------- tests

// The digests agree with the Python encoder (finp2p_ethereum.consent.consent_digest), which the Python tests check
// against the Solidity contract and eth-account: one signature format serves both ledgers.
func TestConsentDigestsMatchTheSolidityContracts(t *testing.T) {
	contract := VerifyingContract("finp2p", "finp2p")
	if got := hex0x(contract); got != vectorVerifyingContract {
		t.Fatalf("verifying contract %s, expected %s", got, vectorVerifyingContract)
	}
	domain := DomainSeparator(big.NewInt(31337), contract)
	for kind, expected := range vectorDigests {
		op, err := parseOperation(opJSON(vectorOps[kind]))
		if err != nil {
			t.Fatal(err)
		}
		digest, err := ConsentDigest(kind, op, domain)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(digest) != expected {
			t.Errorf("%s digest %x, expected %s", kind, digest, expected)
		}
	}
}

func TestMerkleRootsMatchFinP2PAssetsMerkle(t *testing.T) {
	leaves := make([][]byte, 5)
	for i := range leaves {
		leaves[i] = []byte(strings.Repeat(string([]byte{byte(i + 1)}), 32))
	}
	// Proof of leaf 0 in a tree of five, as finp2p.assets.merkle.proofs computes it.
	proof := [][]byte{leaves[1], keccakSorted(leaves[2], leaves[3]), leaves[4]}
	if got := hex.EncodeToString(RootOf(leaves[0], proof)); got != vectorMerkleRoot {
		t.Fatalf("root %s, expected %s", got, vectorMerkleRoot)
	}
}

func keccakSorted(a, b []byte) []byte {
	if string(a) < string(b) {
		return keccak(a, b)
	}
	return keccak(b, a)
}

func TestIssueTransferAndBalances(t *testing.T) {
	l, domain := setup(t)
	alice, bob := newKey(1), newKey(2)
	issue := Operation{OperationID: "i-1", AssetID: "org:102:a", Destination: alice.finID, Quantity: "100"}
	l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) { return cc.Issue(ctx, opJSON(issue)) })
	op := Operation{OperationID: "t-1", AssetID: "org:102:a", Source: alice.finID, Destination: bob.finID, Quantity: "30"}
	consent := l.consent(t, alice, "Transfer", op, domain)
	out, stub, err := l.run(t, operatorID, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.Transfer(ctx, opJSON(op), consent)
	})
	if err != nil {
		t.Fatal(err)
	}
	if stub.event != "Transferred" || string(stub.payload) != out || !strings.Contains(out, `"txId":"`+stub.txID+`"`) {
		t.Fatalf("event %s %s, result %s", stub.event, stub.payload, out)
	}
	if l.balance(t, alice.finID) != bal("70", "0") || l.balance(t, bob.finID) != bal("30", "0") || l.supply(t) != "100" {
		t.Fatal("balances after transfer")
	}
	// To oneself: nothing is lost although Fabric does not read a transaction's own writes.
	self := Operation{OperationID: "t-2", AssetID: "org:102:a", Source: bob.finID, Destination: bob.finID, Quantity: "30"}
	c2 := l.consent(t, bob, "Transfer", self, domain)
	l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.Transfer(ctx, opJSON(self), c2)
	})
	if l.balance(t, bob.finID) != bal("30", "0") {
		t.Fatalf("a transfer to oneself changed the balance: %s", l.balance(t, bob.finID))
	}
	spent := l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) { return cc.OperationOf(ctx, "t-1") })
	if spent != `{"spent":{"txId":"`+stub.txID+`","operation":"transfer"},"hold":null}` {
		t.Fatalf("operation record %s", spent)
	}
}

func TestRefusals(t *testing.T) {
	l, domain := setup(t)
	alice, bob, mallory := newKey(1), newKey(2), newKey(3)
	issue := Operation{OperationID: "i-1", AssetID: "org:102:a", Destination: alice.finID, Quantity: "10"}
	l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) { return cc.Issue(ctx, opJSON(issue)) })
	tooMuch := Operation{OperationID: "x-1", AssetID: "org:102:a", Source: alice.finID, Destination: bob.finID, Quantity: "11"}
	c := l.consent(t, alice, "Transfer", tooMuch, domain)
	l.refused(t, operatorID, "FP6001", "InsufficientBalance", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.Transfer(ctx, opJSON(tooMuch), c)
	})
	l.refused(t, operatorID, "FP6003", "OperationIdUsed", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.Issue(ctx, opJSON(issue))
	})
	op := Operation{OperationID: "s-1", AssetID: "org:102:a", Source: alice.finID, Destination: bob.finID, Quantity: "5"}
	forged := l.consent(t, mallory, "Transfer", op, domain)
	wrongAmount := l.consent(t, alice, "Transfer", Operation{OperationID: "s-1", AssetID: "org:102:a", Source: alice.finID, Destination: bob.finID, Quantity: "50"}, domain)
	wrongKind := l.consent(t, alice, "Hold", op, domain)
	for _, bad := range []string{forged, wrongAmount, wrongKind, `{"signature":"00"}`, `not json`} {
		l.refused(t, operatorID, "FP6002", "BadSignature", func(ctx contractapi.TransactionContextInterface) (string, error) {
			return cc.Transfer(ctx, opJSON(op), bad)
		})
	}
	// A high-s twin of a valid signature is refused (as the Solidity contract refuses it).
	var sig struct{ Signature string }
	_ = json.Unmarshal([]byte(l.consent(t, alice, "Transfer", op, domain)), &sig)
	raw, _ := hex.DecodeString(sig.Signature)
	s := new(big.Int).SetBytes(raw[32:])
	s.Sub(secp256k1.S256().N, s)
	high := make([]byte, 32)
	s.FillBytes(high)
	twin := `{"signature":"` + hex.EncodeToString(raw[:32]) + hex.EncodeToString(high) + `"}`
	l.refused(t, operatorID, "FP6002", "BadSignature", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.Transfer(ctx, opJSON(op), twin)
	})
	genuine := l.consent(t, alice, "Transfer", op, domain)
	l.refused(t, intruderID, "FP6010", "NotOperator", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.Transfer(ctx, opJSON(op), genuine)
	})
	l.refused(t, intruderID, "FP6010", "NotOperator", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.Record(ctx, strings.Repeat("11", 32), "1")
	})
	l.refused(t, intruderID, "FP6010", "AlreadyInitialised", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.Configure(ctx, "")
	})
	bad := []struct{ code, name, op string }{
		{"FP6011", "InvalidFinId", opJSON(Operation{OperationID: "b-1", AssetID: "org:102:a", Destination: "02" + strings.Repeat("zz", 32), Quantity: "1"})},
		{"FP6011", "InvalidFinId", opJSON(Operation{OperationID: "b-2", AssetID: "org:102:a", Destination: "02" + strings.Repeat("00", 31) + "05", Quantity: "1"})},
		{"FP6011", "InvalidFinId", opJSON(Operation{OperationID: "b-2", AssetID: "org:102:a", Destination: strings.ToUpper(alice.finID), Quantity: "1"})},
		{"FP6012", "ZeroQuantity", opJSON(Operation{OperationID: "b-3", AssetID: "org:102:a", Destination: alice.finID, Quantity: "0"})},
		{"FP6012", "InvalidQuantity", opJSON(Operation{OperationID: "b-4", AssetID: "org:102:a", Destination: alice.finID, Quantity: "-5"})},
		{"FP6012", "InvalidQuantity", opJSON(Operation{OperationID: "b-4", AssetID: "org:102:a", Destination: alice.finID, Quantity: new(big.Int).Lsh(big.NewInt(1), 256).String()})},
		{"FP6020", "InvalidField", opJSON(Operation{OperationID: "", AssetID: "org:102:a", Destination: alice.finID, Quantity: "1"})},
		{"FP6020", "InvalidField", `{"operationId":"b-5","assetId":"org:102:a","quantity":"1","extra":1}`},
		{"FP6008", "UnknownAsset", opJSON(Operation{OperationID: "b-6", AssetID: "nope", Destination: alice.finID, Quantity: "1"})},
	}
	for _, b := range bad {
		l.refused(t, operatorID, b.code, b.name, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return cc.Issue(ctx, b.op)
		})
	}
	l.refused(t, operatorID, "FP6009", "AssetExists", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.CreateAsset(ctx, "org:102:a")
	})
	if l.balance(t, alice.finID) != bal("10", "0") || l.balance(t, bob.finID) != bal("0", "0") {
		t.Fatal("refusals changed balances")
	}
}

func TestHoldReleaseRollbackRedeemAndExpiry(t *testing.T) {
	l, domain := setup(t)
	alice, bob := newKey(1), newKey(2)
	issue := Operation{OperationID: "i-1", AssetID: "org:102:a", Destination: alice.finID, Quantity: "100"}
	l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) { return cc.Issue(ctx, opJSON(issue)) })
	hold := func(id, quantity, destination, expiry string) {
		op := Operation{OperationID: id, AssetID: "org:102:a", Source: alice.finID, Destination: destination, Quantity: quantity, Expiry: expiry}
		c := l.consent(t, alice, "Hold", op, domain)
		l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) { return cc.Hold(ctx, opJSON(op), c) })
	}
	settle := func(fn func(contractapi.TransactionContextInterface, string) (string, error), id, source, destination, quantity string) func(contractapi.TransactionContextInterface) (string, error) {
		op := opJSON(Operation{OperationID: id, AssetID: "org:102:a", Source: source, Destination: destination, Quantity: quantity})
		return func(ctx contractapi.TransactionContextInterface) (string, error) { return fn(ctx, op) }
	}
	redeem := func(ctx contractapi.TransactionContextInterface, op string) (string, error) {
		return cc.Redeem(ctx, op, "")
	}

	hold("h-1", "40", bob.finID, "0")
	if l.balance(t, alice.finID) != bal("60", "40") {
		t.Fatal(l.balance(t, alice.finID))
	}
	l.refused(t, operatorID, "FP6006", "ReleaseExceedsHold", settle(cc.Release, "h-1", alice.finID, bob.finID, "41"))
	l.refused(t, operatorID, "FP6007", "HoldMismatch", settle(cc.Release, "h-1", alice.finID, alice.finID, "10"))
	l.refused(t, operatorID, "FP6007", "HoldMismatch", settle(cc.Release, "h-1", bob.finID, bob.finID, "10"))
	l.ok(t, settle(cc.Release, "h-1", alice.finID, bob.finID, "30"))
	if l.balance(t, alice.finID) != bal("70", "0") || l.balance(t, bob.finID) != bal("30", "0") {
		t.Fatal("the remainder returns to the source")
	}
	l.refused(t, operatorID, "FP6004", "UnknownHold", settle(cc.Release, "h-1", alice.finID, bob.finID, "10"))
	l.refused(t, operatorID, "FP6004", "UnknownHold", settle(cc.Rollback, "never", alice.finID, "", "10"))

	hold("h-2", "20", "", "0")
	l.refused(t, operatorID, "FP6006", "ReleaseExceedsHold", settle(cc.Rollback, "h-2", alice.finID, "", "19"))
	l.ok(t, settle(cc.Rollback, "h-2", alice.finID, "", "20"))
	hold("h-3", "25", "", "0")
	l.ok(t, settle(redeem, "h-3", alice.finID, "", "25"))
	if l.balance(t, alice.finID) != bal("45", "0") || l.supply(t) != "75" {
		t.Fatal("after redeem from a hold")
	}
	record := l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) { return cc.OperationOf(ctx, "h-3") })
	if !strings.Contains(record, `"operation":"hold"`) || !strings.Contains(record, `"status":"redeemed"`) {
		t.Fatal(record)
	}

	hold("e-1", "10", bob.finID, big.NewInt(l.now+3600).String())
	l.now += 7200
	l.refused(t, operatorID, "FP6005", "HoldExpired", settle(cc.Release, "e-1", alice.finID, bob.finID, "10"))
	l.refused(t, operatorID, "FP6005", "HoldExpired", settle(redeem, "e-1", alice.finID, "", "10"))
	l.ok(t, settle(cc.Rollback, "e-1", alice.finID, "", "10"))
	if l.balance(t, alice.finID) != bal("45", "0") {
		t.Fatal("an expired hold rolls back")
	}
}

func TestATemplateAuthorisesOneOperation(t *testing.T) {
	l, _ := setup(t)
	alice, bob := newKey(1), newKey(2)
	issue := Operation{OperationID: "i-1", AssetID: "org:102:a", Destination: alice.finID, Quantity: "100"}
	l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) { return cc.Issue(ctx, opJSON(issue)) })
	template := keccak([]byte("a router's template"))
	signed, _ := json.Marshal(Consent{Template: hex0x(template), Signature: alice.sign(template)})
	op := Operation{OperationID: "r-1", AssetID: "org:102:a", Source: alice.finID, Destination: bob.finID, Quantity: "7"}
	out := l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.Transfer(ctx, opJSON(op), string(signed))
	})
	if !strings.Contains(out, `"consentTemplate":"`+hex0x(template)+`"`) {
		t.Fatal(out)
	}
	op.OperationID = "r-2"
	l.refused(t, operatorID, "FP6021", "ConsentUsed", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.Transfer(ctx, opJSON(op), string(signed))
	})
	other := keccak([]byte("another template"))
	forged, _ := json.Marshal(Consent{Template: hex0x(other), Signature: bob.sign(other)})
	l.refused(t, operatorID, "FP6002", "BadSignature", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.Transfer(ctx, opJSON(op), string(forged))
	})
}

func TestReceiptRegistry(t *testing.T) {
	l, _ := setup(t)
	a, b := strings.Repeat("01", 32), strings.Repeat("02", 32)
	root := hex.EncodeToString(keccakSorted(mustHex(a), mustHex(b)))
	_, recording, err := l.run(t, operatorID, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.Record(ctx, root, "2")
	})
	if err != nil {
		t.Fatal(err)
	}
	recordedIn := func(root string) string {
		return l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) { return cc.RecordedIn(ctx, root) })
	}
	if recordedIn(root) != recording.txID || recordedIn("0x"+root) != recording.txID || recordedIn(a) != "" {
		t.Fatal("RecordedIn names the transaction that recorded a root, and nothing for another")
	}
	l.refused(t, operatorID, "FP6017", "AlreadyRecorded", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.Record(ctx, "0x"+root, "2")
	})
	l.refused(t, operatorID, "FP6012", "EmptyBatch", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return cc.Record(ctx, a, "0")
	})
	recorded := func(leaf, proof string) bool {
		out := l.ok(t, func(ctx contractapi.TransactionContextInterface) (string, error) {
			found, err := cc.IsRecorded(ctx, leaf, proof)
			if found {
				return "yes", err
			}
			return "no", err
		})
		return out == "yes"
	}
	if !recorded(a, `["`+b+`"]`) || !recorded(b, `["0x`+a+`"]`) || recorded(a, "[]") || recorded(strings.Repeat("09", 32), `["`+b+`"]`) {
		t.Fatal("proof checks")
	}
}

func mustHex(s string) []byte {
	raw, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return raw
}
