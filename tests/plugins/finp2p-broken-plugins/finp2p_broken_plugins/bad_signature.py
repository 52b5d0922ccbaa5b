"""Implements a hook with an argument the spec does not have."""

from finp2p import hookimpl


@hookimpl
def finp2p_node_started(node, loop_count):  # type: ignore[no-untyped-def]
    return None
