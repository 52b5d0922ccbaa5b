package finp2p

import (
	"encoding/json"
	"fmt"
)

// Error is a refusal of the chaincode. Its text is machine-readable and stable:
//
//	FP6001 InsufficientBalance {"available":"10","required":"11"}
//
// the FinP2P error code, the name of the error (the same names as the Solidity contract's custom errors) and its
// arguments as a JSON object. The Fabric plugin turns it into the same FinP2P error as an Ethereum revert.
type Error struct {
	Code string
	Name string
	Args map[string]any
}

func (e *Error) Error() string {
	args, _ := json.Marshal(e.Args)
	if e.Args == nil {
		args = []byte("{}")
	}
	return fmt.Sprintf("%s %s %s", e.Code, e.Name, args)
}

func fail(code, name string, kv ...any) *Error {
	args := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		args[kv[i].(string)] = kv[i+1]
	}
	return &Error{Code: code, Name: name, Args: args}
}

// The refusals, by the FinP2P error they are.
func errInsufficientBalance(available, required string) error {
	return fail("FP6001", "InsufficientBalance", "available", available, "required", required)
}
func errBadSignature(why string) error { return fail("FP6002", "BadSignature", "reason", why) }
func errOperationIDUsed(id string) error {
	return fail("FP6003", "OperationIdUsed", "operationId", id)
}
func errUnknownHold(id string) error { return fail("FP6004", "UnknownHold", "operationId", id) }
func errHoldExpired(expiry string) error {
	return fail("FP6005", "HoldExpired", "expiry", expiry)
}
func errReleaseExceedsHold(held, requested string) error {
	return fail("FP6006", "ReleaseExceedsHold", "held", held, "requested", requested)
}
func errHoldMismatch(field string) error { return fail("FP6007", "HoldMismatch", "field", field) }
func errUnknownAsset(id string) error    { return fail("FP6008", "UnknownAsset", "assetId", id) }
func errAssetExists(id string) error     { return fail("FP6009", "AssetExists", "assetId", id) }
func errNotOperator(caller string) error { return fail("FP6010", "NotOperator", "caller", caller) }
func errNotInitialised() error           { return fail("FP6010", "NotInitialised") }
func errInitialised() error              { return fail("FP6010", "AlreadyInitialised") }
func errInvalidFinID(what string) error  { return fail("FP6011", "InvalidFinId", "field", what) }
func errZeroQuantity() error             { return fail("FP6012", "ZeroQuantity") }
func errInvalidQuantity(what string) error {
	return fail("FP6012", "InvalidQuantity", "field", what)
}
func errEmptyBatch() error { return fail("FP6012", "EmptyBatch") }
func errAlreadyRecorded(root string) error {
	return fail("FP6017", "AlreadyRecorded", "root", root)
}
func errInvalidField(field, why string) error {
	return fail("FP6020", "InvalidField", "field", field, "reason", why)
}
func errConsentUsed(template string) error {
	return fail("FP6021", "ConsentUsed", "template", template)
}
