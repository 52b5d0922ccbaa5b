"""Implements a hook that does not exist (a typo, or a hook of another finp2p version)."""

from finp2p import hookimpl


@hookimpl
def finp2p_node_startd(node):  # type: ignore[no-untyped-def]
    return None
