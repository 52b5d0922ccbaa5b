"""Keys and FinIDs, canonical encoding, credentials and their chains, genesis, revocation, TLS certificates."""
