"""The built-in ACL backend's hooks: the ``sql`` kind (:mod:`finp2p.builtins.sql_acl_backend`, imported when one
is built)."""

from __future__ import annotations

from typing import Any

from finp2p.components import ComponentContext, ComponentKind
from finp2p.hookspecs import hookimpl
from finp2p.privacy.acl import AclBackend


def _factory(settings: dict[str, Any], context: ComponentContext) -> AclBackend:
    from finp2p.builtins.sql_acl_backend import SqlAclBackend

    if context.store is None:
        raise ValueError("the sql ACL backend needs the node's store")
    return SqlAclBackend(context.store)


@hookimpl
def finp2p_acl_backend_kinds() -> list[ComponentKind[AclBackend]]:
    return [ComponentKind("sql", _factory, "ACL rules and groups in the node's SQL store")]
