"""Every table of the node, grouped by the part that owns it. Schema changes go through a migration in
``migrations/versions``; ``tests/test_store.py`` fails when these models and the migrations disagree."""

from __future__ import annotations

from sqlalchemy import BigInteger, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

metadata = SQLModel.metadata


# -- privacy: the built-in SQL ACL backend -------------------------------------------------------------------------
class AclRuleRow(SQLModel, table=True):
    """Grants ``subject`` the ``action`` on resources matching ``resource``.

    ``subject`` is ``org:<orgId>``, ``group:<name>`` or ``*`` (every member); ``resource`` is a resource id or a
    pattern with ``*`` wildcards (``orgA:101:*``).
    """

    __tablename__ = "acl_rule"
    __table_args__ = (UniqueConstraint("subject", "action", "resource", name="uq_acl_rule"),)

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=200, index=True)
    action: str = Field(max_length=40)
    resource: str = Field(max_length=300, index=True)
    created_ms: int = Field(sa_type=BigInteger)


class AclGroupMemberRow(SQLModel, table=True):
    """Membership of an organization in a named group that ACL rules can name."""

    __tablename__ = "acl_group_member"

    group_name: str = Field(primary_key=True, max_length=100)
    org_id: str = Field(primary_key=True, max_length=200)


# -- identity: replay window, revocation lists --------------------------------------------------------------------
class ReplayHorizonRow(SQLModel, table=True):
    """Per sender, a timestamp no envelope accepted from it exceeds; written before an envelope beyond it is
    handled. After a restart, the horizons of the earlier run (another ``boot_id``) are floors: an envelope at or
    below its sender's floor may have been accepted already and is refused (:mod:`finp2p.identity.replay`)."""

    __tablename__ = "replay_horizon"

    sender: str = Field(primary_key=True, max_length=66)
    horizon_ms: int = Field(sa_type=BigInteger)
    boot_id: str = Field(max_length=16)


class RevocationListRow(SQLModel, table=True):
    """The newest revocation list held of each issuer (ours too, on a governance node)."""

    __tablename__ = "revocation_list"

    issuer: str = Field(primary_key=True, max_length=66)
    sequence: int = Field(sa_type=BigInteger)
    document: str = Field(sa_type=Text)


# -- governance: registrations ---------------------------------------------------------------------------------------
class RegistrationRow(SQLModel, table=True):
    """An organization's request to join, and what became of it (pending, approved, rejected, revoked)."""

    __tablename__ = "registration"

    id: str = Field(primary_key=True, max_length=32)
    org_id: str = Field(index=True, max_length=100)
    fin_id: str = Field(index=True, max_length=66)
    name: str = Field(max_length=200)
    status: str = Field(max_length=16, index=True)
    request: str = Field(sa_type=Text)
    credential: str | None = Field(default=None, sa_type=Text)
    cert_chain: str | None = Field(default=None, sa_type=Text)
    reason: str | None = Field(default=None, sa_type=Text)
    created_ms: int = Field(sa_type=BigInteger)
    decided_ms: int | None = Field(default=None, sa_type=BigInteger)


# -- messaging: idempotency, pub/sub -------------------------------------------------------------------------------
class IdempotentRequestRow(SQLModel, table=True):
    """The first answer to a request carrying an idempotency key, replayed for every retry of it."""

    __tablename__ = "idempotent_request"

    sender: str = Field(primary_key=True, max_length=66)
    key: str = Field(primary_key=True, max_length=128)
    request_hash: str = Field(max_length=64)
    state: str = Field(max_length=12)  # running | done
    boot_id: str = Field(max_length=32)
    reply: str | None = Field(default=None, sa_type=Text)
    created_ms: int = Field(sa_type=BigInteger, index=True)


class TopicRow(SQLModel, table=True):
    """A topic this node publishes, with the sequence number of its last message."""

    __tablename__ = "topic"

    topic: str = Field(primary_key=True, max_length=300)
    last_seq: int = Field(default=0, sa_type=BigInteger)


class TopicMessageRow(SQLModel, table=True):
    """The durable outbox: every message published on a topic, in sequence."""

    __tablename__ = "topic_message"

    topic: str = Field(primary_key=True, max_length=300)
    seq: int = Field(primary_key=True, sa_type=BigInteger)
    body: str = Field(sa_type=Text)
    created_ms: int = Field(sa_type=BigInteger)


class SubscriberRow(SQLModel, table=True):
    """A subscription to one of our topics, and how far the subscriber has acknowledged it."""

    __tablename__ = "subscriber"

    topic: str = Field(primary_key=True, max_length=300)
    org_id: str = Field(primary_key=True, max_length=100)
    address: str = Field(max_length=300)
    acked_seq: int = Field(default=0, sa_type=BigInteger)
    active: bool = True
    created_ms: int = Field(sa_type=BigInteger)


class SubscriptionRow(SQLModel, table=True):
    """A topic of another node this node subscribes to, and the last message it processed."""

    __tablename__ = "subscription"

    publisher_org: str = Field(primary_key=True, max_length=100)
    topic: str = Field(primary_key=True, max_length=300)
    publisher_address: str = Field(max_length=300)
    last_seq: int = Field(default=0, sa_type=BigInteger)
    active: bool = True


class InboxMessageRow(SQLModel, table=True):
    """Messages received on subscribed topics, each stored once, in the order of the publisher's sequence."""

    __tablename__ = "inbox_message"

    publisher_org: str = Field(primary_key=True, max_length=100)
    topic: str = Field(primary_key=True, max_length=300)
    seq: int = Field(primary_key=True, sa_type=BigInteger)
    body: str = Field(sa_type=Text)
    received_ms: int = Field(sa_type=BigInteger)


# -- discovery: the registrar (governance nodes), the node's own advert and shared resources -----------------------
class AdvertRow(SQLModel, table=True):
    """The newest advert of each organization held by a registrar. ``home``: published here by the organization
    itself (rather than replicated from another registrar), so this registrar relays broadcasts to it."""

    __tablename__ = "advert"

    org_id: str = Field(primary_key=True, max_length=100)
    fin_id: str = Field(max_length=66)
    role: str = Field(max_length=16)
    sequence: int = Field(sa_type=BigInteger)
    expires_ms: int = Field(sa_type=BigInteger, index=True)
    received_ms: int = Field(sa_type=BigInteger, index=True)
    home: bool = False
    document: str = Field(sa_type=Text)


class OwnAdvertRow(SQLModel, table=True):
    """The last advert this node published (one row)."""

    __tablename__ = "own_advert"

    id: int = Field(default=1, primary_key=True)
    sequence: int = Field(sa_type=BigInteger)
    document: str = Field(sa_type=Text)


class SharedResourceRow(SQLModel, table=True):
    """A resource this node shares in its advert; editable while the node runs (`finp2p advert share`)."""

    __tablename__ = "shared_resource"

    resource_id: str = Field(primary_key=True, max_length=300)
    topic: str | None = Field(default=None, max_length=300)
    visible_to: str = Field(sa_type=Text)  # JSON list of subjects


# -- privacy: the private store -------------------------------------------------------------------------------------
class PrivateRecordRow(SQLModel, table=True):
    """Private information about a resource (a user's KYC, an asset's details), owned by the resource's
    organization. ``replica``: a copy pushed here by its owner, kept current by the owner's updates."""

    __tablename__ = "private_record"

    resource_id: str = Field(primary_key=True, max_length=300)
    owner_org: str = Field(max_length=100, index=True)
    kind: str = Field(max_length=16)
    data: str = Field(sa_type=Text)
    version: int = Field(sa_type=BigInteger)
    updated_ms: int = Field(sa_type=BigInteger)
    replica: bool = False


class AccessNoticeRow(SQLModel, table=True):
    """What other organizations told this node about its access to their resources (granted, withdrawn,
    available), newest last."""

    __tablename__ = "access_notice"

    id: int | None = Field(default=None, primary_key=True)
    owner_org: str = Field(max_length=100, index=True)
    resource: str = Field(max_length=300)
    event: str = Field(max_length=16)
    version: int | None = Field(default=None, sa_type=BigInteger)
    received_ms: int = Field(sa_type=BigInteger)


# -- REST API ---------------------------------------------------------------------------------------------------
class ApiTokenRow(SQLModel, table=True):
    """An API token of the organization's own applications, kept as its SHA-256 only."""

    __tablename__ = "api_token"

    token_hash: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=100, index=True)
    created_ms: int = Field(sa_type=BigInteger)


class ManagedAssetRow(SQLModel, table=True):
    """An asset this organization manages: its primary node is this node, its units live on ``ledger_id``."""

    __tablename__ = "managed_asset"

    asset_id: str = Field(primary_key=True, max_length=300)
    ledger_id: str = Field(max_length=200)
    details: str = Field(sa_type=Text)  # JSON: name, metadata, what the ledger answered
    created_ms: int = Field(sa_type=BigInteger)


class PrimaryOperationRow(SQLModel, table=True):
    """An operation this node executes as the asset's primary node, step by step, so it runs once.

    ``state``: executing (checked, about to reach the ledger) → done (transaction id and signed receipt), or
    failed. The ledger transaction is looked up by operation id before any retry of ``executing``, so a crash
    between submitting and recording never executes an operation twice.
    """

    __tablename__ = "primary_operation"

    operation_id: str = Field(primary_key=True, max_length=300)
    operation: str = Field(primary_key=True, max_length=20)
    requester: str = Field(max_length=100, index=True)
    request: str = Field(sa_type=Text)  # canonical JSON of the request body
    state: str = Field(max_length=20, index=True)
    transaction_id: str | None = Field(default=None, max_length=200)
    answer: str | None = Field(default=None, sa_type=Text)  # JSON: the signed receipt bundle, or the error
    updated_ms: int = Field(sa_type=BigInteger)


class RequestedOperationRow(SQLModel, table=True):
    """An operation this node's applications asked for, through the REST API: routed to the asset's primary node,
    its receipt verified and recorded on this organization's own ledger.

    ``state``: pending → recorded (the receipt verified and recorded), or failed. A pending operation is retried
    until ``deadline_ms``; ``waiting`` says what it waits for (JSON: who, the last transient error, since when, how
    many attempts, when the next one is). ``bundle`` is written as soon as the receipt checks out, before it is
    recorded.
    """

    __tablename__ = "requested_operation"

    id: str = Field(primary_key=True, max_length=64)
    idempotency_key: str = Field(max_length=200, unique=True)
    request: str = Field(sa_type=Text)
    state: str = Field(max_length=20, index=True)
    bundle: str | None = Field(default=None, sa_type=Text)  # JSON: the receipt bundle, with its record once made
    error: str | None = Field(default=None, sa_type=Text)
    created_ms: int = Field(sa_type=BigInteger)
    updated_ms: int = Field(sa_type=BigInteger)
    deadline_ms: int | None = Field(default=None, sa_type=BigInteger)
    waiting: str | None = Field(default=None, sa_type=Text)


# -- ledger-adapter API ---------------------------------------------------------------------------------------------
class AdapterOperationRow(SQLModel, table=True):
    """An operation asked of the ledger-adapter API, written before it is acknowledged.

    ``state``: pending (accepted, answered with its cid, executing) → done (``result`` holds the operation object,
    a receipt or an error). ``callback``: none, pending (to be sent to the router), sent or failed.
    """

    __tablename__ = "adapter_operation"

    cid: str = Field(primary_key=True, max_length=64)
    idempotency_key: str = Field(max_length=300, unique=True)
    kind: str = Field(max_length=20)  # the operationStatus type: receipt, createAsset, deposit
    operation: str = Field(max_length=20)  # issue, transfer, ..., createAsset, deposit, payout
    request: str = Field(sa_type=Text)  # JSON, as received
    request_hash: str = Field(max_length=64)
    operation_id: str | None = Field(default=None, max_length=300)
    state: str = Field(max_length=20, index=True)
    transaction_id: str | None = Field(default=None, max_length=200, index=True)
    result: str | None = Field(default=None, sa_type=Text)  # JSON: the completed operation object
    callback: str = Field(default="none", max_length=16, index=True)
    created_ms: int = Field(sa_type=BigInteger)
    updated_ms: int = Field(sa_type=BigInteger)


class AdapterOwnerRow(SQLModel, table=True):
    """A FinID's ledger accounts, as the mapping API provisioned them."""

    __tablename__ = "adapter_owner"

    fin_id: str = Field(primary_key=True, max_length=66)
    status: str = Field(max_length=16)
    accounts: str = Field(sa_type=Text)  # JSON object: field -> account
    updated_ms: int = Field(sa_type=BigInteger)


class AdapterPlanRow(SQLModel, table=True):
    """An execution plan a router asked this adapter to approve, with the proposals made on it."""

    __tablename__ = "adapter_plan"

    plan_id: str = Field(primary_key=True, max_length=300)
    status: str = Field(max_length=16)  # approved, rejected
    proposals: str = Field(sa_type=Text)  # JSON list: each proposal, our answer and the router's final status
    updated_ms: int = Field(sa_type=BigInteger)
