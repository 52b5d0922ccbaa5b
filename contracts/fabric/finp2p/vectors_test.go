package finp2p

// Computed by the Python side (finp2p_ethereum.consent.consent_digest with chain id 31337 and the verifying
// contract below; finp2p.assets.merkle.root of the leaves 0x01..01 to 0x05..05), whose encoder the Python tests
// check against the Solidity contract and eth-account.
const (
	vectorVerifyingContract = "0x2238472d56bc1babb3ec36de1673e67fc7ebc8ba" // keccak256("fabric:finp2p/finp2p")[12:]
	vectorAlice             = "031b84c5567b126440995d3ed5aaba0565d71e1834604819ff9c17f5e9d5dd078f"
	vectorBob               = "024d4b6cd1361032ca9bd2aeb9d900aa4d45d9ead80ac9423374c451a7254d0766"
	vectorMerkleRoot        = "55d458ff264cc10cb4ef71d27a18db86f587999b2355cfa5eb5fccf8c973bced"
)

var vectorOps = map[string]Operation{
	"Transfer": {OperationID: "d-1", AssetID: "org:102:ü-asset", Source: vectorAlice, Destination: vectorBob, Quantity: "1000000000000000000000000000000"},
	"Hold":     {OperationID: "d-2", AssetID: "org:102:x", Source: vectorAlice, Quantity: "7", Expiry: "1900000000"},
	"Redeem":   {OperationID: "d-3", AssetID: "org:102:x", Source: vectorAlice, Quantity: "3"},
}

var vectorDigests = map[string]string{
	"Transfer": "0c9f459f7af560ea614bcafd77706283fb24e2e520f04ecbb00fd013d06404cb",
	"Hold":     "6f5d4df51cf3c140e02eebfdcde5665f4bd7176050162a714ac1daf10fc6b6a6",
	"Redeem":   "667dbb75baf5fa746aa56ad5bc4f0bf589baf473fc8277fde723f21bc8625764",
}
