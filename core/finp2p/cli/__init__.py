"""The ``finp2p`` command line."""
