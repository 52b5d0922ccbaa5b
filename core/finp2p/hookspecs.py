"""The whole plugin contract of a FinP2P node.

A plugin is a module or object with functions named after the hooks below, marked with ``finp2p.hookimpl``. It
reaches the node in one of two ways: built-in plugins ship inside ``finp2p.builtins``, and every other plugin is a
distribution that declares an entry point in the ``finp2p`` group::

    [project.entry-points.finp2p]
    myledger = "my_package.plugin"

The node registers built-in plugins first, then installed ones in the order of their distribution names. A hook
implementation may accept fewer arguments than the spec names (pluggy passes only those it asks for), never others.

**Call order** is pluggy's own, for every hook: implementations marked ``tryfirst`` first, then the most recently
registered first, those marked ``trylast`` last (:meth:`finp2p.plugins.PluginManager.implementations` lists them in
that order). Hook *wrappers* (``wrapper=True`` or ``hookwrapper=True``) are refused when the plugin is registered
(FP1107 ``PLUGIN_WRAPPER``): the node calls each implementation on its own, to await it, time it and keep one
plugin's failure from silencing the others, which a wrapper around the whole call would defeat.

Hooks marked *gathered* call every implementation and use every answer; no hook stops at a first result. Where two
answers claim the same name (a component kind, a message type), the hook says what happens. Event hooks
(``finp2p_node_started`` and the others that return nothing) are called from the node's event loop: an
implementation may return an awaitable, which the node awaits before it calls the next one.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    import click
    from pydantic import BaseModel

    from finp2p.compliance import TransferCheck, Violation
    from finp2p.components import ComponentKind
    from finp2p.config import Settings
    from finp2p.identity.trust import Identity
    from finp2p.ledger import Ledger
    from finp2p.network.messaging import Incoming
    from finp2p.network.pubsub import Delivered
    from finp2p.network.transport import Transport
    from finp2p.node import Node
    from finp2p.privacy.acl import AclBackend

PROJECT = "finp2p"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- components --------------------------------------------------------------------------------------------------
@hookspec
def finp2p_ledger_kinds() -> list[ComponentKind[Ledger]]:
    """Declare the ledger kinds this plugin provides. *Gathered.*

    Called once, when the plugin manager first builds its table of components (at node start and by
    ``finp2p plugins``). Return a list of :class:`finp2p.components.ComponentKind` whose ``factory`` builds a
    :class:`finp2p.ledger.Ledger` from a ledger profile's ``settings`` mapping (the ``[settings]`` table of a
    profile in ``chains/``, with ``ledger_id`` and ``profile_dir``, the profile's folder, added) and a
    :class:`finp2p.components.ComponentContext`. Relative paths in a profile are relative to ``profile_dir``.

    A kind name (``ethereum``, ``fabric``) must be unique across all loaded plugins; a second plugin claiming the
    same name is refused with FP1105 ``PLUGIN_CONFLICT`` and the kind stays with the plugin registered first.
    """


@hookspec
def finp2p_transport_kinds() -> list[ComponentKind[Transport]]:
    """Declare the transport kinds this plugin provides. *Gathered.*

    Same rules as :func:`finp2p_ledger_kinds`. The factory receives the node's ``[transport]`` settings and returns
    a :class:`finp2p.network.transport.Transport`. The node uses the kind named by ``transport.kind`` in its config.
    """


@hookspec
def finp2p_acl_backend_kinds() -> list[ComponentKind[AclBackend]]:
    """Declare the ACL backend kinds this plugin provides. *Gathered.*

    Same rules as :func:`finp2p_ledger_kinds`. The factory receives the node's ``[acl]`` settings and returns a
    :class:`finp2p.privacy.acl.AclBackend`; ``context.store`` is the node's open store. The node uses the kind
    named by ``acl.backend`` in its config (``sql``, the built-in one, by default).
    """


# -- policy ------------------------------------------------------------------------------------------------------
@hookspec
def finp2p_check_transfer(
    check: TransferCheck, settings: Settings
) -> Violation | list[Violation] | Awaitable[Violation | list[Violation] | None] | None:
    """Decide whether a transfer may be executed. *Gathered*: every implementation is asked, always.

    Called on the asset's primary node after the owner's signature is verified and the parties' information is
    fetched, before anything is sent to the ledger. Return ``None`` (or an empty list) to allow it, or one or more
    :class:`finp2p.compliance.Violation` to veto it. Any violation from any plugin rejects the transfer, and the
    requester receives all the reasons. May return an awaitable (to ask an outside service); the node awaits it with
    the transfer's deadline. An exception counts as a violation, so a broken check never lets a transfer through.
    """


# -- events ------------------------------------------------------------------------------------------------------
@hookspec
def finp2p_receipt_issued(receipt: dict[str, Any], node: Node) -> Awaitable[None] | None:
    """A primary node has signed a receipt for an operation it executed, before it is sent to the requester.

    ``receipt`` is the receipt as it is sent (the ledger-adapter API's receipt shape with its proof). Must not
    modify it. Errors are logged and do not stop the receipt.
    """


@hookspec
def finp2p_receipt_received(receipt: dict[str, Any], node: Node) -> Awaitable[None] | None:
    """A requester has verified a receipt from a primary node and recorded it on its own ledger.

    ``receipt`` is as in :func:`finp2p_receipt_issued`. Errors are logged and change nothing.
    """


@hookspec
def finp2p_operation_step(node: Node | None, operation: dict[str, Any], step: str) -> None:
    """A primary node, or the ledger-adapter server (``node`` is then ``None`` and ``operation`` holds the adapter
    operation's name, ``cid`` and ``via="adapter"``), has finished one step of an asset operation (for metrics,
    audit trails and fault tests).

    ``step`` is ``received`` (the request arrived, nothing written yet), ``executing`` (checked and written down,
    about to reach the ledger), ``on-ledger`` (the ledger answered; not yet written) or ``done`` (the transaction
    id and the signed receipt are written, about to be sent). ``operation`` is the request. Called synchronously, in
    order, once per step each time the step is passed (a resumed operation passes some steps again); errors are
    logged and change nothing.
    """


@hookspec
def finp2p_node_started(node: Node) -> Awaitable[None] | None:
    """The node is serving: its store is migrated and its components are up.

    A plugin that runs background work starts it here (and stops it in :func:`finp2p_node_stopping`). An exception
    stops the node: a plugin that cannot start must say so rather than run half-started.
    """


@hookspec
def finp2p_node_stopping(node: Node) -> Awaitable[None] | None:
    """The node is about to close its components and store. Called once, also when it stops after an error.

    Finish or hand over work in flight; the node waits for an awaitable result, then goes on whatever it raised.
    """


# -- messaging ---------------------------------------------------------------------------------------------------
@hookspec
def finp2p_message_handlers(node: Node) -> dict[str, Callable[[Incoming], Awaitable[dict[str, Any]]]]:
    """Add request/response message types this node answers. *Gathered.*

    Called once as the node's network starts, before it serves. Return ``{message type: handler}``; a handler
    receives a :class:`finp2p.network.messaging.Incoming` whose signature, sender credential chain, revocation,
    TLS binding and replay were all checked, and returns the answer's result object. Raise a ``FinP2PError`` to
    refuse; its code reaches the sender. Types are namespaced (``myplugin.thing``); a type claimed twice stops the
    node. Requests carrying an idempotency key run at most once; the first answer is replayed to retries.
    """


@hookspec
def finp2p_broadcast_queries(
    node: Node,
) -> dict[str, Callable[[dict[str, Any], Identity], Awaitable[tuple[Any, int | None]]]]:
    """Add kinds of broadcast question this node answers. *Gathered.*

    Called once as the node's network starts. Return ``{kind: handler}``; a handler receives the (decrypted)
    payload and the verified identity of the asking organization, and returns ``(value, height)``: any JSON value,
    and the ledger height it was read at (``None`` when no ledger is involved). The asker compares the values of all
    answers and treats those read at an older height as out of date.
    """


@hookspec
def finp2p_topic_message(node: Node, message: Delivered) -> Awaitable[None] | None:
    """A message arrived on a topic this node subscribes to, and is stored in its inbox.

    Called once per message, in sequence order per topic, after the message is committed (so a crash after it
    loses nothing: the inbox holds it). Errors are logged and do not affect delivery.
    """


# -- extensions --------------------------------------------------------------------------------------------------
@hookspec
def finp2p_cli_commands() -> list[click.Command]:
    """Add commands to the ``finp2p`` command line. *Gathered.*

    Called when the CLI is built. Return ``click`` commands or groups; their names must not clash with built-in
    commands or with another plugin's (a clash is reported and the later one skipped).
    """


@hookspec
def finp2p_config_sections() -> dict[str, type[BaseModel]]:
    """Declare config sections this plugin reads. *Gathered.*

    Return ``{section name: pydantic model}``. The section ``[name]`` of the node's config (and its
    ``FINP2P_NAME__KEY`` environment overrides) is validated with the model, and errors name the file and the key.
    A section that no plugin declares is an error (FP1004). The validated model is in
    ``settings.sections[name]``.
    """
