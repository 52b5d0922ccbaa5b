"""FinP2P's Hyperledger Fabric ledger plugin: the ``fabric`` ledger kind and the ``finp2p fabric`` commands.

Importing the package (what loading the plugin does) imports neither gRPC nor Fabric's protos: they are imported
when a ledger of this kind is built (:mod:`finp2p_fabric.ledger`, :mod:`finp2p_fabric.consent`), so a command that
opens no ledger starts fast.
"""
