"""FinP2P's Ethereum ledger plugin: the ``ethereum`` ledger kind and the ``finp2p ethereum`` commands.

Importing the package (what loading the plugin does) imports no Ethereum library: web3 and eth-tester are imported
when a ledger of this kind is built, so a command that opens no ledger starts fast.
"""
