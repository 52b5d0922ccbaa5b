"""The demo and the devnet: users of the node, as the command line is (they start ``finp2p`` processes and call
their APIs).

``network`` holds the processes and the calls a story makes, ``story`` tells ``finp2p demo`` step by step,
``devnet`` leaves the same network running, ``processes`` starts and stops node processes by the commands it
records, ``ports`` chooses free loopback ports.
"""
