"""Claims the ACL backend kind 'sql', which the built-in plugin provides already."""

from finp2p import hookimpl
from finp2p.components import ComponentKind


@hookimpl
def finp2p_acl_backend_kinds():  # type: ignore[no-untyped-def]
    return [ComponentKind("sql", lambda settings, ctx: None)]
