"""``python -m finp2p``: the same as the ``finp2p`` command."""

from finp2p.cli.main import main

main()
