"""Every error a user of the node can meet: a stable code, a title and a sentence that says what to do.

Codes are grouped by the part of the node that raises them, and never reused or renumbered once released:

======  ===========================================
FP00xx  any part of the node
FP10xx  configuration
FP11xx  plugins
FP12xx  store and migrations
FP2xxx  identity, credentials, envelopes
FP3xxx  messaging and transports
FP4xxx  adverts and discovery
FP5xxx  privacy and ACLs
FP6xxx  ledgers
FP7xxx  asset transactions and receipts
FP8xxx  REST and adapter APIs
======  ===========================================

Each code also says which HTTP status answers it on the REST and ledger-adapter APIs (:attr:`ErrorCode.status`) and
whether it is **transient** (:attr:`ErrorCode.transient`): the trouble may pass (a peer or a ledger that does not
answer, or answers late), so an operation that meets it is retried, never ended; every other code is a definite
answer. ``finp2p errors`` prints the whole catalogue.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.Enum):
    """The catalogue. Each member is ``(code, title, what the user should do)``."""

    # -- any part --------------------------------------------------------------------------------------------
    NOT_FOUND = (
        "FP0001",
        "not found",
        "Check the id: nothing this node holds (an operation, a record, a transaction) has it.",
    )
    # -- configuration ---------------------------------------------------------------------------------------
    CONFIG_NOT_FOUND = (
        "FP1001",
        "config file not found",
        "Check the path, or create one with `finp2p config init`.",
    )
    CONFIG_SYNTAX = (
        "FP1002",
        "config file is not valid TOML",
        "Fix the TOML syntax at the line and column given.",
    )
    CONFIG_VALUE = ("FP1003", "invalid config value", "Set the key named to a value of the expected kind.")
    CONFIG_UNKNOWN_SECTION = (
        "FP1004",
        "unknown config section",
        "Remove the section, or install and enable the plugin that defines it (see `finp2p plugins`).",
    )
    CONFIG_ENV = (
        "FP1005",
        "invalid environment override",
        "Fix or unset the FINP2P_<SECTION>__<KEY> variable named.",
    )
    # -- plugins ---------------------------------------------------------------------------------------------
    PLUGIN_IMPORT = (
        "FP1101",
        "plugin failed to import",
        "Reinstall the distribution named, or uninstall it; `finp2p plugins` shows what is loaded.",
    )
    PLUGIN_HOOK_SIGNATURE = (
        "FP1102",
        "plugin implements a hook wrongly",
        "The plugin was written for another version of the hook specs: upgrade the plugin or finp2p.",
    )
    PLUGIN_BAD_RESULT = (
        "FP1103",
        "plugin returned an invalid value",
        "Report it to the plugin's authors; the hook's docstring in finp2p.hookspecs says what is expected.",
    )
    PLUGIN_STRICT = (
        "FP1104",
        "plugins failed to load in strict mode",
        "Fix or uninstall the plugins listed, or start without --strict to skip them.",
    )
    PLUGIN_CONFLICT = (
        "FP1105",
        "two plugins provide the same component",
        "Uninstall one of them, or disable one with `plugins.disabled` in the config.",
    )
    PLUGIN_UNKNOWN_KIND = (
        "FP1106",
        "no plugin provides this component",
        "Install the plugin distribution that provides it; `finp2p plugins` lists what is available.",
    )
    PLUGIN_WRAPPER = (
        "FP1107",
        "hook wrappers are not supported",
        "Implement the hook as a plain implementation (tryfirst and trylast order it); finp2p.hookspecs says why.",
    )
    # -- store -----------------------------------------------------------------------------------------------
    STORE_URL = (
        "FP1201",
        "unsupported database URL",
        "Use sqlite:///PATH or postgresql://USER@HOST:PORT/DB in store.url.",
    )
    STORE_UNREACHABLE = (
        "FP1202",
        "database unreachable",
        "Check that the database server runs and that store.url names the right host, port, user and database.",
    )
    STORE_TOO_NEW = (
        "FP1203",
        "database schema is newer than this finp2p",
        "Upgrade finp2p to the version that last wrote this database, or point store.url at another database.",
    )
    STORE_MIGRATION = (
        "FP1204",
        "database migration failed",
        "Restore the database from its backup, then report the error with the finp2p version.",
    )

    # -- identity, credentials, envelopes -------------------------------------------------------------------
    MALFORMED = (
        "FP2001",
        "malformed encoding",
        "Send the object in the documented form: canonical JSON with the fields and hex lengths named.",
    )
    BAD_SIGNATURE = (
        "FP2002",
        "signature does not match the content",
        "The content was changed after it was signed, or signed by an unknown key: obtain an untampered copy.",
    )
    WRONG_SIGNER = (
        "FP2003",
        "signed by another key",
        "The signature is valid for a different identity than the one named: have it signed by the named key.",
    )
    CREDENTIAL_EXPIRED = (
        "FP2004",
        "credential expired",
        "Ask the issuer for a new credential (an organization re-registers with `finp2p org register`).",
    )
    CREDENTIAL_NOT_YET_VALID = (
        "FP2005",
        "credential not yet valid",
        "Check the clocks of the issuer and of this machine (NTP).",
    )
    CREDENTIAL_REVOKED = (
        "FP2006",
        "credential revoked",
        "The issuer revoked this identity; its operator must settle the reason with the network's governance.",
    )
    UNKNOWN_ROOT = (
        "FP2007",
        "unknown root",
        "The chain does not end at a founding node of this network's genesis: use the genesis file of the network.",
    )
    WRONG_ROLE = (
        "FP2008",
        "wrong role in the chain",
        "Only founding nodes certify governance nodes, governance nodes organizations, organizations users and assets.",
    )
    WRONG_NETWORK = (
        "FP2009",
        "wrong network",
        "The object belongs to another FinP2P network: use the genesis file of the network it came from.",
    )
    REPLAYED = (
        "FP2010",
        "replayed message",
        "Send each message with a fresh nonce; a retry of the same request must be sent as a new envelope.",
    )
    CLOCK_SKEW = (
        "FP2011",
        "timestamp outside the accepted window",
        "Synchronise this machine's clock (NTP); messages must be sent within the window of their timestamp.",
    )
    UNKNOWN_SENDER = (
        "FP2012",
        "unknown sender",
        "The sender is not a member of the network: it must register with a governance node first.",
    )
    NOT_RECIPIENT = (
        "FP2013",
        "not addressed to this node",
        "Send the message to the organization named among its recipients.",
    )
    KEY_FILE = (
        "FP2014",
        "key file unusable",
        "Check the path, the passphrase (file or FINP2P_KEY_PASSPHRASE) and that only the owner may read it (0600).",
    )
    GENESIS = (
        "FP2015",
        "genesis file invalid",
        "Use the genesis file published by the network's founders, unmodified.",
    )
    REVOCATION_LIST = (
        "FP2016",
        "revocation list refused",
        "Only founding and governance nodes publish revocation lists, each with a higher sequence than the last.",
    )
    TLS_MISMATCH = (
        "FP2017",
        "the TLS certificate does not match the credential",
        "Use the TLS certificate issued with this credential, or re-register to obtain a matching pair.",
    )
    SENT_BEFORE_RESTART = (
        "FP2018",
        "sent before this node restarted",
        "Send the request again, as a new envelope: the node restarted moments ago and cannot tell an envelope "
        "timestamped before that from a replay.",
    )
    REGISTRATION_REJECTED = (
        "FP2102",
        "registration rejected",
        "Contact the network's governance to learn why, then register again with corrected details.",
    )
    RENDEZVOUS_UNREACHABLE = (
        "FP2103",
        "no rendezvous node answered",
        "Check the network connection and the rendezvous addresses in the genesis file, then try again.",
    )
    REGISTRATION_CONFLICT = (
        "FP2104",
        "organization id taken",
        "Register under another organization id, or with the FinID that holds this one.",
    )
    UNKNOWN_REGISTRATION = (
        "FP2105",
        "unknown registration",
        "Check the registration id with `finp2p governance list --status pending`.",
    )
    NOT_A_MEMBER_YET = (
        "FP2106",
        "this node is not a member yet",
        "Register it first with `finp2p org register`.",
    )
    TOO_MANY_REGISTRATIONS = (
        "FP2107",
        "too many registration requests",
        "Wait the number of seconds given, then register once; a pending registration needs no new request.",
    )
    # -- messaging and transports ----------------------------------------------------------------------------
    PEER_UNREACHABLE = (
        "FP3001",
        "peer unreachable",
        "Check that the peer runs and that its advertised address is right; the request may be retried.",
    )
    PEER_TLS = (
        "FP3002",
        "the TLS handshake was refused",
        "Connect with TLS 1.3 and a certificate issued by the network's governance (mutual TLS).",
    )
    SENDER_MISMATCH = (
        "FP3003",
        "sender does not match the TLS peer",
        "Sign envelopes with the key of the organization whose certificate the connection uses.",
    )
    UNKNOWN_MESSAGE_TYPE = (
        "FP3004",
        "unknown message type",
        "Send a message type the peer supports (see its advertised capabilities).",
    )
    BODY_TOO_LARGE = (
        "FP3005",
        "message too large",
        "Split the request or send less; the peer's size limit applies to the whole envelope.",
    )
    PEER_TIMEOUT = (
        "FP3006",
        "peer did not answer in time",
        "The request may be retried with the same idempotency key; check the peer's health if it persists.",
    )
    PEER_ERROR = (
        "FP3007",
        "peer failed to handle the request",
        "The peer reported an internal error; retry later or contact its operator with the request id.",
    )
    MEMBERS_ONLY = (
        "FP3008",
        "members only",
        "Connect with the TLS certificate issued at registration; only registration is open to newcomers.",
    )
    IN_PROGRESS = (
        "FP3009",
        "request in progress",
        "The first attempt with this idempotency key is still running: retry with the same key a little later.",
    )
    OUTCOME_UNKNOWN = (
        "FP3010",
        "outcome unknown after a restart",
        "The node restarted while running this request; it is never run twice: check its effect before acting.",
    )
    IDEMPOTENCY_CONFLICT = (
        "FP3011",
        "idempotency key reused for another request",
        "Use a new idempotency key for a different request; reuse a key only to retry the same request.",
    )
    NOT_SUBSCRIBED = (
        "FP3012",
        "no such subscription",
        "Subscribe first with `finp2p pubsub subscribe`; the publisher may also have ended the subscription.",
    )
    BROADCAST_TARGETS = (
        "FP3013",
        "no node to broadcast to",
        "Check the group or ledger named, and that discovery knows members serving it.",
    )
    NOT_FOR_US = (
        "FP3014",
        "cannot decrypt the payload",
        "The payload is encrypted for other recipients; send it to the nodes it was encrypted for.",
    )

    # -- adverts and discovery ------------------------------------------------------------------------------------
    BAD_RESOURCE_ID = (
        "FP4001",
        "malformed resource id",
        "Write resource ids as <orgId>:<type>:<id>, e.g. bank-a:101:alice (101 user, 102 asset, 105 intent, 106 plan).",
    )
    MISSING_CAPABILITIES = (
        "FP4002",
        "mandatory capabilities missing",
        "Upgrade the node to a finp2p that speaks every mandatory protocol (see finp2p.network.capabilities).",
    )
    BAD_ADDRESS = (
        "FP4003",
        "address not public",
        "Advertise a public DNS name or public IP address; private, loopback and link-local ones are devnet-only.",
    )
    STALE_ADVERT = (
        "FP4004",
        "stale advert",
        "Publish adverts with a sequence above the last one; the registrar holds a newer advert of this organization.",
    )
    ADVERT_EXPIRED = (
        "FP4005",
        "advert expired",
        "Publish a fresh advert (the node refreshes its advert before its lifetime ends when it runs).",
    )
    FOREIGN_ADVERT = (
        "FP4006",
        "advert of another organization",
        "An organization publishes only its own advert, signed with its own FinID key.",
    )
    NO_ADVERT = (
        "FP4007",
        "no advert found",
        "Nothing matches: check the organization's id, and that it runs and advertises.",
    )
    NO_REGISTRAR = (
        "FP4008",
        "no registrar answered",
        "Check that a rendezvous node of the genesis runs and is reachable; the next one is tried automatically.",
    )

    # -- privacy -------------------------------------------------------------------------------------------------
    ACL_DENIED = (
        "FP5001",
        "access denied",
        "The resource's owner has not granted this organization that action: ask its operator for access.",
    )

    # -- ledgers -------------------------------------------------------------------------------------------------
    LEDGER_INSUFFICIENT_BALANCE = (
        "FP6001",
        "insufficient balance",
        "The source holds fewer available units than the operation needs: lower the quantity or fund the source.",
    )
    LEDGER_BAD_SIGNATURE = (
        "FP6002",
        "the owner's signature does not authorise this operation",
        "Have the source sign this operation's EIP-712 typed data with its FinID key, over exactly these fields.",
    )
    LEDGER_OPERATION_ID_USED = (
        "FP6003",
        "operation id already used",
        "Every operation needs a fresh operation id: look the earlier operation up instead of sending it again.",
    )
    LEDGER_UNKNOWN_HOLD = (
        "FP6004",
        "no active hold with this operation id",
        "Check the hold's operation id: it may never have been made, or be released, redeemed or rolled back.",
    )
    LEDGER_HOLD_EXPIRED = (
        "FP6005",
        "the hold has expired",
        "An expired hold can only be rolled back: roll it back, then hold again with a later expiry.",
    )
    LEDGER_HOLD_QUANTITY = (
        "FP6006",
        "quantity does not fit the hold",
        "Release or redeem at most the held quantity; roll back exactly the held quantity.",
    )
    LEDGER_HOLD_MISMATCH = (
        "FP6007",
        "operation does not match its hold",
        "Use the asset, source and destination the hold was made with.",
    )
    LEDGER_UNKNOWN_ASSET = ("FP6008", "asset not on this ledger", "Create the asset on this ledger first.")
    LEDGER_ASSET_EXISTS = (
        "FP6009",
        "asset already exists on this ledger",
        "Use the existing asset, or create the new one under another asset id.",
    )
    LEDGER_NOT_OPERATOR = (
        "FP6010",
        "not the operator of the ledger's contracts",
        "Submit with the operator key the contracts were deployed for (the primary node's FinID key).",
    )
    LEDGER_INVALID_ACCOUNT = (
        "FP6011",
        "invalid FinID for this ledger",
        "Give a FinID: the lowercase hex of a 33-byte compressed secp256k1 public key.",
    )
    LEDGER_INVALID_QUANTITY = (
        "FP6012",
        "invalid quantity",
        "Give a positive whole number of the asset's smallest unit.",
    )
    LEDGER_UNREACHABLE = (
        "FP6013",
        "ledger unreachable",
        "Check the endpoint in the ledger profile and that the ledger's node runs, then retry.",
    )
    LEDGER_REVERTED = (
        "FP6014",
        "the ledger refused the operation",
        "Look the transaction up on the ledger for the reason; nothing changed on the ledger.",
    )
    LEDGER_TIMEOUT = (
        "FP6015",
        "no confirmation in time",
        "The transaction may still be confirmed: look it up by its id before sending the operation again.",
    )
    LEDGER_PROFILE = (
        "FP6016",
        "invalid ledger profile",
        "Fix the profile file named (`finp2p ethereum deploy` and `devnet/fabric up` or `deploy` write valid ones).",
    )
    LEDGER_ALREADY_RECORDED = (
        "FP6017",
        "receipt already recorded",
        "Nothing to do: the receipt registry holds this receipt (or batch) already.",
    )
    LEDGER_NO_FUNDS = (
        "FP6018",
        "the operator account cannot pay for the transaction",
        "Fund the operator's address on this chain, then retry.",
    )
    LEDGER_UNSUPPORTED_CONSENT = (
        "FP6019",
        "unsupported signature template",
        "This ledger checks the owner's EIP712 signature on-chain: have the owner sign the EIP712 template.",
    )
    LEDGER_INVALID_FIELD = (
        "FP6020",
        "invalid operation field",
        "Give asset ids and operation ids as non-empty strings of at most 1024 characters.",
    )
    LEDGER_CONSENT_USED = (
        "FP6021",
        "the owner's signed template was used already",
        "A signature authorises one operation: have the owner sign a template for this one.",
    )
    LEDGER_NO_HISTORY = (
        "FP6022",
        "the ledger cannot answer as of that point",
        "Ask for the current balance, or for a height or time this ledger still keeps.",
    )
    LEDGER_FABRIC_NOT_FOUND = (
        "FP6023",
        "no Hyperledger Fabric release found",
        "Set FABRIC_HOME to a Fabric release directory (bin/, config/) or FABRIC_ARCHIVE to its release archive.",
    )
    LEDGER_NO_PROFILE = (
        "FP6024",
        "no ledger profile of yours reaches this ledger",
        "Give a profile of yours for the ledger named (--ledger chains/....toml): ledgers are read through your own "
        "connections, never where a bundle or a peer says.",
    )

    # -- asset transactions and receipts -------------------------------------------------------------------------
    RECEIPT_BAD_SIGNATURE = (
        "FP7001",
        "the receipt's signature does not check out",
        "Do not trust this receipt: it was altered, or not signed by the organization it names.",
    )
    RECEIPT_INVALID = (
        "FP7002",
        "malformed receipt",
        "Pass the receipt or bundle exactly as the node wrote it (`finp2p receipt show` prints one).",
    )
    RECEIPT_LEDGER_MISMATCH = (
        "FP7003",
        "the ledger does not confirm the receipt",
        "Do not trust this receipt: its transaction is missing, failed, or differs from what the receipt says.",
    )
    RECEIPT_NOT_RECORDED = (
        "FP7004",
        "the receipt is not recorded on the requester's ledger",
        "Check the bundle's record (ledger, transaction, proof), or ask the requester to record the receipt.",
    )
    OPERATION_ID_CONFLICT = (
        "FP7005",
        "operation id already used for another request",
        "Use a fresh operation id for a new operation; resend a retry exactly as the first request.",
    )
    ASSET_NOT_MANAGED = (
        "FP7006",
        "asset not managed here",
        "Send operations on an asset to its organization's primary node (discovery routes them there).",
    )
    COMPLIANCE_REFUSED = (
        "FP7007",
        "compliance checks refused the operation",
        "Read the reasons given; the asset's manager decides what its rules require.",
    )
    OPERATION_NOT_ALLOWED = (
        "FP7008",
        "this organization may not ask for that operation",
        "Only the asset's manager issues it; only the organization that asked for a hold releases or rolls it back.",
    )
    CONSENT_INVALID = (
        "FP7009",
        "the owner's consent does not match the operation",
        "Fetch the consent template for exactly this operation and have the source sign its hash with its key.",
    )
    OPERATION_INVALID = (
        "FP7010",
        "invalid operation request",
        "Fix the field named; `GET /openapi.json` documents every field.",
    )
    RECEIPT_UNTRUSTED = (
        "FP7011",
        "the primary node's receipt does not match the request",
        "Do not rely on this operation; report the receipt (kept with the operation) to the asset's manager.",
    )
    TEMPLATE_UNSUPPORTED = (
        "FP7012",
        "signature template of a kind this node cannot read",
        "Have the investor sign one of FinP2P's templates (PrimarySale, Buying, Selling, Redemption, Transfer, "
        "PrivateOffer, Loan, or their hashList form); `finp2p errors` lists what each authorises.",
    )
    OPERATION_NOT_CONFIRMED = (
        "FP7013",
        "the operation ended at its deadline without the primary node's answer",
        "It may have executed: check the balances, then `finp2p operations retry ID` asks the primary node again "
        "(it never executes an operation twice).",
    )
    OPERATION_CANCELLED = (
        "FP7014",
        "the operation was ended before the primary node executed it",
        "Nothing was executed, and the asset's primary node refuses this operation id from now on: submit it again "
        "with a new operation id if it is still wanted.",
    )
    OPERATION_ENDED = (
        "FP7015",
        "the operation has ended",
        "Only a pending operation, or one that ended without a confirmed outcome (FP7013, FP7004), can be retried or "
        "abandoned; `finp2p operations list` shows each one's state.",
    )
    OPERATION_REPEATED = (
        "FP7016",
        "the operation was executed already",
        "A finished operation is answered with its receipt only under its own Idempotency-Key: send that key again "
        "to read it. A new operation needs its own operation id (a hold: a new one) and the owner's signature for it.",
    )

    # -- REST and adapter APIs -------------------------------------------------------------------------------------
    API_UNAUTHORIZED = (
        "FP8001",
        "the API token is missing or unknown",
        "Send `Authorization: Bearer <token>` with a token made by `finp2p api token NAME`.",
    )
    REQUEST_TIMEOUT = (
        "FP8002",
        "the request did not arrive in time",
        "Send the whole request at once: a body must arrive within [limits] body_timeout_s of its headers.",
    )

    def __init__(self, code: str, title: str, hint: str) -> None:
        self.code = code
        self.title = title
        self.hint = hint

    @property
    def exit_status(self) -> int:
        """The CLI exit status for this error (see ``finp2p --help``)."""
        return _EXIT_STATUS.get(self.code[:4], EXIT_FAILURE)

    @property
    def status(self) -> int:
        """The HTTP status that answers this error on the node's APIs: its own, else its part's."""
        if self.name in _HTTP_STATUS:
            return _HTTP_STATUS[self.name]
        return next((status for prefix, status in _HTTP_DEFAULTS if self.code.startswith(prefix)), 400)

    @property
    def transient(self) -> bool:
        """Whether the trouble may pass: an operation that meets it is retried (see the module's docstring)."""
        return self.name in _TRANSIENT


#: HTTP statuses of the codes that have their own; the others take their part's (:data:`_HTTP_DEFAULTS`).
_HTTP_STATUS = {
    "NOT_FOUND": 404,
    "CREDENTIAL_REVOKED": 403,
    "PEER_UNREACHABLE": 502,
    "PEER_TIMEOUT": 504,
    "BODY_TOO_LARGE": 413,
    "IN_PROGRESS": 409,
    "OUTCOME_UNKNOWN": 409,
    "IDEMPOTENCY_CONFLICT": 409,
    "BAD_RESOURCE_ID": 400,
    "NO_ADVERT": 404,
    "NO_REGISTRAR": 502,
    "ACL_DENIED": 403,
    "LEDGER_ASSET_EXISTS": 409,
    "LEDGER_UNKNOWN_ASSET": 404,
    "LEDGER_INVALID_ACCOUNT": 400,
    "LEDGER_INVALID_QUANTITY": 400,
    "LEDGER_INVALID_FIELD": 400,
    "LEDGER_UNREACHABLE": 503,
    "LEDGER_TIMEOUT": 503,
    "LEDGER_PROFILE": 400,
    "LEDGER_NO_HISTORY": 400,
    "LEDGER_NO_PROFILE": 400,
    "RECEIPT_INVALID": 400,
    "OPERATION_ID_CONFLICT": 409,
    "ASSET_NOT_MANAGED": 404,
    "CONSENT_INVALID": 400,
    "OPERATION_INVALID": 400,
    "OPERATION_NOT_CONFIRMED": 504,
    "OPERATION_CANCELLED": 409,
    "OPERATION_ENDED": 409,
    "OPERATION_REPEATED": 409,
    "API_UNAUTHORIZED": 401,
    "REQUEST_TIMEOUT": 408,
}
#: Each part's status: a peer's trouble is 502; a ledger's refusal or a business rule is understood and refused
#: (422); bad input is 400.
_HTTP_DEFAULTS = (("FP3", 502), ("FP5", 403), ("FP6", 422), ("FP7", 422), ("FP12", 503))
#: The troubles that may pass: an unreachable or slow peer, ledger or registrar, a request still running elsewhere.
_TRANSIENT = frozenset(
    {
        "PEER_UNREACHABLE",
        "PEER_TIMEOUT",
        "PEER_ERROR",
        "IN_PROGRESS",
        "NO_REGISTRAR",
        "LEDGER_UNREACHABLE",
        "LEDGER_TIMEOUT",
        "STORE_UNREACHABLE",
        "RENDEZVOUS_UNREACHABLE",
        "SENT_BEFORE_RESTART",
    }
)
#: CLI exit statuses. 2 is click's own for usage errors.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_PLUGIN = 4
EXIT_STORE = 5
_EXIT_STATUS = {"FP10": EXIT_CONFIG, "FP11": EXIT_PLUGIN, "FP12": EXIT_STORE}


class FinP2PError(Exception):
    """An error with a catalogue code. ``detail`` says what happened in this case; the hint says what to do."""

    def __init__(self, code: ErrorCode, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.context = context

    def __str__(self) -> str:
        return f"{self.code.code} {self.code.title}: {self.detail}. {self.code.hint}"

    def to_dict(self) -> dict[str, Any]:
        """The error as every API answers it: code, title, detail, hint and any context."""
        out: dict[str, Any] = {
            "code": self.code.code,
            "title": self.code.title,
            "detail": self.detail,
            "hint": self.code.hint,
        }
        if self.context:
            out["context"] = self.context
        return out


#: Every transient code: the one classification the primary node, the requester and the adapter all use.
TRANSIENT = frozenset(c for c in ErrorCode if c.transient)


def catalogue() -> list[dict[str, Any]]:
    """Every code with its name, title, hint, HTTP status and whether it is transient (``finp2p errors``)."""
    return [
        {"code": c.code, "name": c.name, "title": c.title, "hint": c.hint, "status": c.status, "transient": c.transient}
        for c in ErrorCode
    ]
