"""The FinP2P ledger-adapter API served over the node's ledger plugins (see ``finp2p adapter serve``)."""
