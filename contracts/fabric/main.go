// The FinP2P chaincode as a service: the peer's external builder (builders/ccaas) tells the peer where this
// server listens, and the peer connects to it.
//
//	CHAINCODE_SERVER_ADDRESS=127.0.0.1:9999 CORE_CHAINCODE_ID_NAME=<package id> finp2p-chaincode
package main

import (
	"log"
	"os"

	"github.com/finp2p/finp2p-node/contracts/fabric/finp2p"
	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

func main() {
	chaincode, err := contractapi.NewChaincode(&finp2p.Contract{})
	if err != nil {
		log.Fatalf("building the chaincode: %v", err)
	}
	chaincode.Info.Title = "finp2p"
	chaincode.Info.Version = "1"
	address, id := os.Getenv("CHAINCODE_SERVER_ADDRESS"), os.Getenv("CORE_CHAINCODE_ID_NAME")
	if address == "" || id == "" {
		log.Fatal("set CHAINCODE_SERVER_ADDRESS (host:port to listen on) and CORE_CHAINCODE_ID_NAME (the package id)")
	}
	server := &shim.ChaincodeServer{
		CCID:     id,
		Address:  address,
		CC:       chaincode,
		TLSProps: shim.TLSProperties{Disabled: true},
	}
	if err := server.Start(); err != nil {
		log.Fatalf("chaincode server: %v", err)
	}
}
