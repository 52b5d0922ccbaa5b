"""The built-in transport's hooks: the ``https`` kind (:mod:`finp2p.builtins.https`, imported when one is built)."""

from __future__ import annotations

from typing import Any

from finp2p.components import ComponentContext, ComponentKind
from finp2p.hookspecs import hookimpl
from finp2p.network.transport import Transport


def _factory(settings: dict[str, Any], context: ComponentContext) -> Transport:
    from finp2p.builtins.https import HttpsSettings, HttpsTransport

    return HttpsTransport(HttpsSettings(**settings))


@hookimpl
def finp2p_transport_kinds() -> list[ComponentKind[Transport]]:
    return [ComponentKind("https", _factory, "HTTPS, TLS 1.3, mutual authentication by network certificates")]
