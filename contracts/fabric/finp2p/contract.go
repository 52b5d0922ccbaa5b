// Package finp2p is the FinP2P chaincode: assets with escrow and a receipt registry, the same operations and
// rules as the Solidity contracts FinP2PAssets and ReceiptRegistry.
//
// Many assets, each named by its FinP2P asset id; balances (available and held) belong to FinIDs. Every operation
// carries a FinP2P operation id that can be used once, recorded with the transaction that spent it. Transfer,
// hold and redeem need the owner's consent: an EIP-712 signature over the operation (the same digest as the
// Solidity contract, see eip712.go), or over a FinP2P router's template whose digest the operator checked,
// usable once. Only the operator (the MSP identity that called Configure) submits operations. One chaincode event per
// operation carries it.
package finp2p

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"unicode/utf8"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
)

// Operation is one operation as the plugin sends it (JSON); fields an operation does not use are left empty.
// Quantity and expiry are decimal strings (uint256); expiry is the unix time after which a hold can no longer be
// released or redeemed (0: never).
type Operation struct {
	OperationID string `json:"operationId"`
	AssetID     string `json:"assetId"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Quantity    string `json:"quantity"`
	Expiry      string `json:"expiry"`

	quantity *big.Int
	expiry   *big.Int
}

// Consent is the owner's consent. Template empty: the signature is over this chaincode's own typed data for the
// operation. Otherwise the 32-byte hex digest of a FinP2P signature template the operator checked against the
// operation; the owner's signature over it is checked here, and the template can be used once.
type Consent struct {
	Template  string `json:"template"`
	Signature string `json:"signature"`
}

// Config is fixed by Configure: the operator's identity and the EIP-712 domain.
type Config struct {
	OperatorMSP       string `json:"operatorMsp"`
	OperatorID        string `json:"operatorId"`
	ChainID           string `json:"chainId"`
	Channel           string `json:"channel"`
	Chaincode         string `json:"chaincode"`
	VerifyingContract string `json:"verifyingContract"`
	InitialisedIn     string `json:"initialisedIn"`
}

type balance struct {
	Available string `json:"available"`
	Held      string `json:"held"`
}

// Spent records which transaction spent an operation id, and as which operation.
type Spent struct {
	TxID      string `json:"txId"`
	Operation string `json:"operation"`
}

// Hold is one escrow. Status: active, released, rolledback, redeemed.
type Hold struct {
	AssetID     string `json:"assetId"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Quantity    string `json:"quantity"`
	Expiry      string `json:"expiry"`
	Status      string `json:"status"`
	HeldIn      string `json:"heldIn"`
	SettledIn   string `json:"settledIn,omitempty"`
}

// Event is the payload of the chaincode event of an operation (and the transaction's result).
type Event struct {
	Name            string     `json:"name"`
	Op              *Operation `json:"op,omitempty"`
	ConsentTemplate string     `json:"consentTemplate,omitempty"`
	Root            string     `json:"root,omitempty"`
	Count           string     `json:"count,omitempty"`
	AssetID         string     `json:"assetId,omitempty"`
	TxID            string     `json:"txId"`
}

// Contract is the FinP2P chaincode's one contract.
type Contract struct {
	contractapi.Contract
}

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// ---------------------------------------------------------------------------------------------------- set-up

// Configure fixes the operator (the caller's MSP id and identity) and the EIP-712 domain's chain id (decimal; "" is 0).
func (c *Contract) Configure(ctx contractapi.TransactionContextInterface, chainID string) (string, error) {
	s := newState(ctx.GetStub())
	var cfg Config
	if found, err := s.getJSON(keyConfig, &cfg); err != nil {
		return "", err
	} else if found {
		return "", errInitialised()
	}
	if chainID == "" {
		chainID = "0"
	}
	if _, err := parseUint(chainID, "chainId", true); err != nil {
		return "", err
	}
	msp, id, err := caller(ctx)
	if err != nil {
		return "", err
	}
	name, err := chaincodeName(ctx)
	if err != nil {
		return "", err
	}
	channel := ctx.GetStub().GetChannelID()
	cfg = Config{
		OperatorMSP:       msp,
		OperatorID:        id,
		ChainID:           chainID,
		Channel:           channel,
		Chaincode:         name,
		VerifyingContract: hex0x(VerifyingContract(channel, name)),
		InitialisedIn:     ctx.GetStub().GetTxID(),
	}
	if err := s.putJSON(keyConfig, cfg); err != nil {
		return "", err
	}
	return toJSON(cfg)
}

// GetConfig is the operator and domain fixed by Configure.
func (c *Contract) GetConfig(ctx contractapi.TransactionContextInterface) (string, error) {
	cfg, err := config(newState(ctx.GetStub()))
	if err != nil {
		return "", err
	}
	return toJSON(cfg)
}

// ------------------------------------------------------------------------------------------------ operations

// CreateAsset makes an asset known.
func (c *Contract) CreateAsset(ctx contractapi.TransactionContextInterface, assetID string) (string, error) {
	s, err := operator(ctx)
	if err != nil {
		return "", err
	}
	if err := checkText(assetID, "assetId"); err != nil {
		return "", err
	}
	if raw, err := s.get(prefAsset + assetID); err != nil {
		return "", err
	} else if raw != nil {
		return "", errAssetExists(assetID)
	}
	if err := s.put(prefAsset+assetID, []byte(ctx.GetStub().GetTxID())); err != nil {
		return "", err
	}
	return emit(ctx, &Event{Name: "AssetCreated", AssetID: assetID})
}

// Issue creates units owned by the destination.
func (c *Contract) Issue(ctx contractapi.TransactionContextInterface, opJSON string) (string, error) {
	s, op, err := begin(ctx, opJSON, "issue")
	if err != nil {
		return "", err
	}
	if _, err := parseFinID(op.Destination, "destination"); err != nil {
		return "", err
	}
	if err := addSupply(ctx, s, op.AssetID, op.quantity); err != nil {
		return "", err
	}
	if err := credit(s, op.AssetID, op.Destination, op.quantity); err != nil {
		return "", err
	}
	return emit(ctx, &Event{Name: "Issued", Op: op})
}

// Transfer moves units from the source to the destination with the source's consent.
func (c *Contract) Transfer(ctx contractapi.TransactionContextInterface, opJSON, consentJSON string) (string, error) {
	s, op, err := begin(ctx, opJSON, "transfer")
	if err != nil {
		return "", err
	}
	template, err := consent(ctx, s, op, "Transfer", consentJSON)
	if err != nil {
		return "", err
	}
	if _, err := parseFinID(op.Destination, "destination"); err != nil {
		return "", err
	}
	if err := debit(s, op.AssetID, op.Source, op.quantity); err != nil {
		return "", err
	}
	if err := credit(s, op.AssetID, op.Destination, op.quantity); err != nil {
		return "", err
	}
	return emit(ctx, &Event{Name: "Transferred", Op: op, ConsentTemplate: template})
}

// Redeem destroys units: from the active hold with the same operation id when there is one (the owner consented
// when the units were held), otherwise from the owner's balance with the owner's consent.
func (c *Contract) Redeem(ctx contractapi.TransactionContextInterface, opJSON, consentJSON string) (string, error) {
	s, err := operator(ctx)
	if err != nil {
		return "", err
	}
	op, err := parseOperation(opJSON)
	if err != nil {
		return "", err
	}
	hold, err := activeHold(s, op.OperationID)
	if err != nil {
		return "", err
	}
	template := ""
	if hold != nil {
		if err := settle(ctx, s, hold, op, "redeemed"); err != nil {
			return "", err
		}
		if err := refundRemainder(s, hold, op.quantity); err != nil {
			return "", err
		}
	} else {
		if s, op, err = begin(ctx, opJSON, "redeem"); err != nil {
			return "", err
		}
		if template, err = consent(ctx, s, op, "Redeem", consentJSON); err != nil {
			return "", err
		}
		if err := debit(s, op.AssetID, op.Source, op.quantity); err != nil {
			return "", err
		}
	}
	if err := addSupply(ctx, s, op.AssetID, new(big.Int).Neg(op.quantity)); err != nil {
		return "", err
	}
	return emit(ctx, &Event{Name: "Redeemed", Op: op, ConsentTemplate: template})
}

// Hold escrows units of the source under the operation id; the destination may be empty (any payee).
func (c *Contract) Hold(ctx contractapi.TransactionContextInterface, opJSON, consentJSON string) (string, error) {
	s, op, err := begin(ctx, opJSON, "hold")
	if err != nil {
		return "", err
	}
	template, err := consent(ctx, s, op, "Hold", consentJSON)
	if err != nil {
		return "", err
	}
	if op.Destination != "" {
		if _, err := parseFinID(op.Destination, "destination"); err != nil {
			return "", err
		}
	}
	if err := debit(s, op.AssetID, op.Source, op.quantity); err != nil {
		return "", err
	}
	b, err := readBalance(s, op.AssetID, op.Source)
	if err != nil {
		return "", err
	}
	held, _ := new(big.Int).SetString(b.Held, 10)
	b.Held = held.Add(held, op.quantity).String()
	if err := s.putJSON(balanceKey(op.AssetID, op.Source), b); err != nil {
		return "", err
	}
	hold := Hold{
		AssetID: op.AssetID, Source: op.Source, Destination: op.Destination, Quantity: op.Quantity,
		Expiry: op.Expiry, Status: "active", HeldIn: ctx.GetStub().GetTxID(),
	}
	if err := s.putJSON(prefHold+op.OperationID, hold); err != nil {
		return "", err
	}
	return emit(ctx, &Event{Name: "Held", Op: op, ConsentTemplate: template})
}

// Release pays the quantity of the hold to the destination; any remainder returns to the source.
func (c *Contract) Release(ctx contractapi.TransactionContextInterface, opJSON string) (string, error) {
	s, err := operator(ctx)
	if err != nil {
		return "", err
	}
	op, err := parseOperation(opJSON)
	if err != nil {
		return "", err
	}
	hold, err := activeHold(s, op.OperationID)
	if err != nil {
		return "", err
	}
	if hold == nil {
		return "", errUnknownHold(op.OperationID)
	}
	if err := settle(ctx, s, hold, op, "released"); err != nil {
		return "", err
	}
	if _, err := parseFinID(op.Destination, "destination"); err != nil {
		return "", err
	}
	if hold.Destination != "" && hold.Destination != op.Destination {
		return "", errHoldMismatch("destination")
	}
	if err := credit(s, hold.AssetID, op.Destination, op.quantity); err != nil {
		return "", err
	}
	if err := refundRemainder(s, hold, op.quantity); err != nil {
		return "", err
	}
	return emit(ctx, &Event{Name: "Released", Op: op})
}

// Rollback returns the whole hold to its source, before or after its expiry.
func (c *Contract) Rollback(ctx contractapi.TransactionContextInterface, opJSON string) (string, error) {
	s, err := operator(ctx)
	if err != nil {
		return "", err
	}
	op, err := parseOperation(opJSON)
	if err != nil {
		return "", err
	}
	hold, err := activeHold(s, op.OperationID)
	if err != nil {
		return "", err
	}
	if err := checkHold(hold, op); err != nil {
		return "", err
	}
	if op.Quantity != hold.Quantity {
		return "", errReleaseExceedsHold(hold.Quantity, op.Quantity)
	}
	if err := closeHold(ctx, s, hold, op.OperationID, "rolledback"); err != nil {
		return "", err
	}
	held, _ := new(big.Int).SetString(hold.Quantity, 10)
	if err := credit(s, hold.AssetID, hold.Source, held); err != nil {
		return "", err
	}
	return emit(ctx, &Event{Name: "RolledBack", Op: op})
}

// ---------------------------------------------------------------------------------------------------- receipts

// Record records a receipt hash, or the Merkle root of a batch of count receipts; a root recorded before is refused.
func (c *Contract) Record(ctx contractapi.TransactionContextInterface, rootHex, count string) (string, error) {
	s, err := operator(ctx)
	if err != nil {
		return "", err
	}
	root, err := parseHash(rootHex, "root")
	if err != nil {
		return "", err
	}
	n, err := parseUint(count, "count", true)
	if err != nil {
		return "", err
	}
	if n.Sign() == 0 {
		return "", errEmptyBatch()
	}
	key := prefRoot + hex.EncodeToString(root)
	if raw, err := s.get(key); err != nil {
		return "", err
	} else if raw != nil {
		return "", errAlreadyRecorded(hex0x(root))
	}
	if err := s.put(key, []byte(ctx.GetStub().GetTxID())); err != nil {
		return "", err
	}
	return emit(ctx, &Event{Name: "ReceiptsRecorded", Root: hex0x(root), Count: n.String()})
}

// IsRecorded says whether a receipt hash is recorded, alone (proof "[]") or in a batch (its Merkle proof, a JSON
// list of 32-byte hex siblings).
func (c *Contract) IsRecorded(ctx contractapi.TransactionContextInterface, leafHex, proofJSON string) (bool, error) {
	leaf, err := parseHash(leafHex, "leaf")
	if err != nil {
		return false, err
	}
	var siblings []string
	if proofJSON != "" {
		if err := json.Unmarshal([]byte(proofJSON), &siblings); err != nil {
			return false, errInvalidField("proof", "a JSON list of hex hashes")
		}
	}
	if len(siblings) > 256 {
		return false, errInvalidField("proof", "longer than any tree's depth")
	}
	proof := make([][]byte, 0, len(siblings))
	for _, sibling := range siblings {
		h, err := parseHash(sibling, "proof")
		if err != nil {
			return false, err
		}
		proof = append(proof, h)
	}
	raw, err := ctx.GetStub().GetState(prefRoot + hex.EncodeToString(RootOf(leaf, proof)))
	return raw != nil, err
}

// RecordedIn is the id of the transaction that recorded a root (a receipt hash, or a batch's Merkle root), or ""
// when it was never recorded: how a node finds its record again after a restart (FP6017).
func (c *Contract) RecordedIn(ctx contractapi.TransactionContextInterface, rootHex string) (string, error) {
	root, err := parseHash(rootHex, "root")
	if err != nil {
		return "", err
	}
	raw, err := ctx.GetStub().GetState(prefRoot + hex.EncodeToString(root))
	return string(raw), err
}

// ------------------------------------------------------------------------------------------------------- reads

// BalanceOf is {"available": ..., "held": ...} of a FinID in an asset.
func (c *Contract) BalanceOf(ctx contractapi.TransactionContextInterface, assetID, finID string) (string, error) {
	if _, err := parseFinID(finID, "finId"); err != nil {
		return "", err
	}
	b, err := readBalance(newState(ctx.GetStub()), assetID, finID)
	if err != nil {
		return "", err
	}
	return toJSON(b)
}

// SupplyOf is all units of an asset in existence: the sum of the changes its issues and redeems recorded.
func (c *Contract) SupplyOf(ctx contractapi.TransactionContextInterface, assetID string) (string, error) {
	start, end := supplyRange(assetID)
	changes, err := ctx.GetStub().GetStateByRange(start, end)
	if err != nil {
		return "", err
	}
	defer changes.Close()
	supply := new(big.Int)
	for changes.HasNext() {
		change, err := changes.Next()
		if err != nil {
			return "", err
		}
		delta, ok := new(big.Int).SetString(string(change.GetValue()), 10)
		if !ok {
			return "", fmt.Errorf("supply change %q is not a number", change.GetKey())
		}
		supply.Add(supply, delta)
	}
	return supply.String(), nil
}

// AssetExists says whether the asset was created.
func (c *Contract) AssetExists(ctx contractapi.TransactionContextInterface, assetID string) (bool, error) {
	raw, err := ctx.GetStub().GetState(prefAsset + assetID)
	return raw != nil, err
}

// OperationOf is what the ledger knows of an operation id: the transaction that spent it and, for a hold, the
// hold (with the transaction that settled it). One read for a node that lost track of an operation.
func (c *Contract) OperationOf(ctx contractapi.TransactionContextInterface, operationID string) (string, error) {
	s := newState(ctx.GetStub())
	out := struct {
		Spent *Spent `json:"spent"`
		Hold  *Hold  `json:"hold"`
	}{}
	var spent Spent
	if found, err := s.getJSON(prefOp+operationID, &spent); err != nil {
		return "", err
	} else if found {
		out.Spent = &spent
	}
	var hold Hold
	if found, err := s.getJSON(prefHold+operationID, &hold); err != nil {
		return "", err
	} else if found {
		out.Hold = &hold
	}
	return toJSON(out)
}

// ConsentDigestOf is the digest the source signs for an operation (kind Transfer, Hold or Redeem), for checks.
func (c *Contract) ConsentDigestOf(ctx contractapi.TransactionContextInterface, kind, opJSON string) (string, error) {
	s := newState(ctx.GetStub())
	cfg, err := config(s)
	if err != nil {
		return "", err
	}
	op, err := parseOperation(opJSON)
	if err != nil {
		return "", err
	}
	digest, err := ConsentDigest(kind, op, domainOf(cfg))
	if err != nil {
		return "", err
	}
	return hex0x(digest), nil
}

// ---------------------------------------------------------------------------------------------------- internal

func toJSON(v any) (string, error) {
	raw, err := json.Marshal(v)
	return string(raw), err
}

func caller(ctx contractapi.TransactionContextInterface) (string, string, error) {
	identity := ctx.GetClientIdentity()
	msp, err := identity.GetMSPID()
	if err != nil {
		return "", "", fmt.Errorf("reading the caller's MSP id: %w", err)
	}
	encoded, err := identity.GetID()
	if err != nil {
		return "", "", fmt.Errorf("reading the caller's identity: %w", err)
	}
	// "x509::<subject>::<issuer>", which the client identity library hands out base64-encoded.
	id, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return "", "", fmt.Errorf("reading the caller's identity: %w", err)
	}
	return msp, string(id), nil
}

// chaincodeName is this chaincode's name, from the proposal that invoked it.
func chaincodeName(ctx contractapi.TransactionContextInterface) (string, error) {
	signed, err := ctx.GetStub().GetSignedProposal()
	if err != nil {
		return "", err
	}
	var proposal peer.Proposal
	if err := proto.Unmarshal(signed.GetProposalBytes(), &proposal); err != nil {
		return "", err
	}
	var payload peer.ChaincodeProposalPayload
	if err := proto.Unmarshal(proposal.GetPayload(), &payload); err != nil {
		return "", err
	}
	var spec peer.ChaincodeInvocationSpec
	if err := proto.Unmarshal(payload.GetInput(), &spec); err != nil {
		return "", err
	}
	name := spec.GetChaincodeSpec().GetChaincodeId().GetName()
	if name == "" {
		return "", fmt.Errorf("the proposal names no chaincode")
	}
	return name, nil
}

func config(s *txState) (*Config, error) {
	var cfg Config
	found, err := s.getJSON(keyConfig, &cfg)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errNotInitialised()
	}
	return &cfg, nil
}

func domainOf(cfg *Config) []byte {
	chainID, _ := new(big.Int).SetString(cfg.ChainID, 10)
	contract, _ := hex.DecodeString(strings.TrimPrefix(cfg.VerifyingContract, "0x"))
	return DomainSeparator(chainID, contract)
}

// operator refuses any caller but the operator.
func operator(ctx contractapi.TransactionContextInterface) (*txState, error) {
	s := newState(ctx.GetStub())
	cfg, err := config(s)
	if err != nil {
		return nil, err
	}
	msp, id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if msp != cfg.OperatorMSP || id != cfg.OperatorID {
		return nil, errNotOperator(msp + "/" + id)
	}
	return s, nil
}

func checkText(value, field string) error {
	if value == "" || len(value) > 1024 {
		return errInvalidField(field, "a non-empty string of at most 1024 bytes")
	}
	if !utf8.ValidString(value) {
		return errInvalidField(field, "not UTF-8")
	}
	for _, r := range value {
		if r < 0x20 || r == 0x7f {
			return errInvalidField(field, "a control character")
		}
	}
	return nil
}

func parseUint(text, field string, zeroOK bool) (*big.Int, error) {
	if text == "" || len(text) > 78 || (len(text) > 1 && text[0] == '0') {
		return nil, errInvalidQuantity(field)
	}
	for _, c := range text {
		if c < '0' || c > '9' {
			return nil, errInvalidQuantity(field)
		}
	}
	n, ok := new(big.Int).SetString(text, 10)
	if !ok || n.Cmp(maxUint256) > 0 {
		return nil, errInvalidQuantity(field)
	}
	if n.Sign() == 0 && !zeroOK {
		return nil, errZeroQuantity()
	}
	return n, nil
}

func parseHash(text, field string) ([]byte, error) {
	raw, err := hex.DecodeString(strings.TrimPrefix(text, "0x"))
	if err != nil || len(raw) != 32 {
		return nil, errInvalidField(field, "a 32-byte hex hash")
	}
	return raw, nil
}

func parseOperation(opJSON string) (*Operation, error) {
	var op Operation
	decoder := json.NewDecoder(strings.NewReader(opJSON))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&op); err != nil {
		return nil, errInvalidField("op", "a JSON operation: "+err.Error())
	}
	if err := checkText(op.OperationID, "operationId"); err != nil {
		return nil, err
	}
	if err := checkText(op.AssetID, "assetId"); err != nil {
		return nil, err
	}
	if op.Expiry == "" {
		op.Expiry = "0"
	}
	var err error
	if op.quantity, err = parseUint(op.Quantity, "quantity", true); err != nil {
		return nil, err
	}
	if op.expiry, err = parseUint(op.Expiry, "expiry", true); err != nil {
		return nil, err
	}
	return &op, nil
}

// begin checks what every new operation needs and spends its operation id.
func begin(ctx contractapi.TransactionContextInterface, opJSON, kind string) (*txState, *Operation, error) {
	s, err := operator(ctx)
	if err != nil {
		return nil, nil, err
	}
	op, err := parseOperation(opJSON)
	if err != nil {
		return nil, nil, err
	}
	if raw, err := s.get(prefAsset + op.AssetID); err != nil {
		return nil, nil, err
	} else if raw == nil {
		return nil, nil, errUnknownAsset(op.AssetID)
	}
	if op.quantity.Sign() == 0 {
		return nil, nil, errZeroQuantity()
	}
	if raw, err := s.get(prefOp + op.OperationID); err != nil {
		return nil, nil, err
	} else if raw != nil {
		return nil, nil, errOperationIDUsed(op.OperationID)
	}
	if err := s.putJSON(prefOp+op.OperationID, Spent{TxID: ctx.GetStub().GetTxID(), Operation: kind}); err != nil {
		return nil, nil, err
	}
	return s, op, nil
}

// consent checks the source's signature over the operation's typed data, or over a template (used once), and
// returns the template's digest (0x-hex) when one was used.
func consent(ctx contractapi.TransactionContextInterface, s *txState, op *Operation, kind, consentJSON string) (string, error) {
	key, err := parseFinID(op.Source, "source")
	if err != nil {
		return "", err
	}
	var given Consent
	if err := json.Unmarshal([]byte(consentJSON), &given); err != nil {
		return "", errBadSignature("the consent is not a JSON object")
	}
	signature, err := hex.DecodeString(strings.TrimPrefix(given.Signature, "0x"))
	if err != nil || len(signature) != 64 {
		return "", errBadSignature("the signature is not 64 bytes of hex (r || s)")
	}
	var digest []byte
	template := ""
	if given.Template == "" {
		cfg, err := config(s)
		if err != nil {
			return "", err
		}
		if digest, err = ConsentDigest(kind, op, domainOf(cfg)); err != nil {
			return "", err
		}
	} else {
		if digest, err = parseHash(given.Template, "template"); err != nil {
			return "", err
		}
		template = hex0x(digest)
		key := prefTpl + hex.EncodeToString(digest)
		if raw, err := s.get(key); err != nil {
			return "", err
		} else if raw != nil {
			return "", errConsentUsed(template)
		}
		if err := s.put(key, []byte(ctx.GetStub().GetTxID())); err != nil {
			return "", err
		}
	}
	if !verifySignature(key, digest, signature) {
		return "", errBadSignature("no valid signature by the source")
	}
	return template, nil
}

func balanceKey(assetID, finID string) string { return prefBal + assetID + sep + finID }

func readBalance(s *txState, assetID, finID string) (*balance, error) {
	b := balance{Available: "0", Held: "0"}
	if _, err := s.getJSON(balanceKey(assetID, finID), &b); err != nil {
		return nil, err
	}
	return &b, nil
}

func amount(text string) *big.Int {
	n, ok := new(big.Int).SetString(text, 10)
	if !ok {
		return new(big.Int)
	}
	return n
}

func credit(s *txState, assetID, finID string, quantity *big.Int) error {
	b, err := readBalance(s, assetID, finID)
	if err != nil {
		return err
	}
	available := new(big.Int).Add(amount(b.Available), quantity)
	if new(big.Int).Add(available, amount(b.Held)).Cmp(maxUint256) > 0 {
		return errInvalidQuantity("quantity")
	}
	b.Available = available.String()
	return s.putJSON(balanceKey(assetID, finID), b)
}

func debit(s *txState, assetID, finID string, quantity *big.Int) error {
	b, err := readBalance(s, assetID, finID)
	if err != nil {
		return err
	}
	available := amount(b.Available)
	if available.Cmp(quantity) < 0 {
		return errInsufficientBalance(b.Available, quantity.String())
	}
	b.Available = available.Sub(available, quantity).String()
	return s.putJSON(balanceKey(assetID, finID), b)
}

// addSupply records a change of the asset's supply under a key of its own transaction: concurrent issues and
// redeems of one asset then touch no common key, and none invalidates another (one supply key read and written
// by each would let only one of them through per block).
func addSupply(ctx contractapi.TransactionContextInterface, s *txState, assetID string, delta *big.Int) error {
	start, _ := supplyRange(assetID)
	return s.put(start+ctx.GetStub().GetTxID(), []byte(delta.String()))
}

// supplyRange is the key range of an asset's supply changes (NUL cannot occur in an asset id).
func supplyRange(assetID string) (string, string) {
	return prefSupply + assetID + "\x00", prefSupply + assetID + "\x01"
}

func activeHold(s *txState, operationID string) (*Hold, error) {
	var hold Hold
	found, err := s.getJSON(prefHold+operationID, &hold)
	if err != nil || !found || hold.Status != "active" {
		return nil, err
	}
	return &hold, nil
}

func checkHold(hold *Hold, op *Operation) error {
	if hold == nil {
		return errUnknownHold(op.OperationID)
	}
	if hold.AssetID != op.AssetID {
		return errHoldMismatch("assetId")
	}
	if hold.Source != op.Source {
		return errHoldMismatch("source")
	}
	return nil
}

// settle closes an active, unexpired hold paying out op's quantity of it (expiry against the transaction's time).
func settle(ctx contractapi.TransactionContextInterface, s *txState, hold *Hold, op *Operation, outcome string) error {
	if err := checkHold(hold, op); err != nil {
		return err
	}
	if hold.Expiry != "0" {
		now, err := ctx.GetStub().GetTxTimestamp()
		if err != nil {
			return err
		}
		if big.NewInt(now.GetSeconds()).Cmp(amount(hold.Expiry)) > 0 {
			return errHoldExpired(hold.Expiry)
		}
	}
	if op.quantity.Sign() == 0 {
		return errZeroQuantity()
	}
	if op.quantity.Cmp(amount(hold.Quantity)) > 0 {
		return errReleaseExceedsHold(hold.Quantity, op.Quantity)
	}
	return closeHold(ctx, s, hold, op.OperationID, outcome)
}

// closeHold marks the hold settled and takes its units out of the source's held balance.
func closeHold(ctx contractapi.TransactionContextInterface, s *txState, hold *Hold, operationID, outcome string) error {
	hold.Status = outcome
	hold.SettledIn = ctx.GetStub().GetTxID()
	if err := s.putJSON(prefHold+operationID, hold); err != nil {
		return err
	}
	b, err := readBalance(s, hold.AssetID, hold.Source)
	if err != nil {
		return err
	}
	b.Held = new(big.Int).Sub(amount(b.Held), amount(hold.Quantity)).String()
	return s.putJSON(balanceKey(hold.AssetID, hold.Source), b)
}

func refundRemainder(s *txState, hold *Hold, paid *big.Int) error {
	remainder := new(big.Int).Sub(amount(hold.Quantity), paid)
	if remainder.Sign() == 0 {
		return nil
	}
	return credit(s, hold.AssetID, hold.Source, remainder)
}

// emit sets the operation's chaincode event and returns the same JSON as the transaction's result.
func emit(ctx contractapi.TransactionContextInterface, event *Event) (string, error) {
	event.TxID = ctx.GetStub().GetTxID()
	raw, err := json.Marshal(event)
	if err != nil {
		return "", err
	}
	if err := ctx.GetStub().SetEvent(event.Name, raw); err != nil {
		return "", err
	}
	return string(raw), nil
}
