"""A client of the Fabric Gateway API (Fabric 2.4+ and 3.x) on ``grpcio`` and the protos of
``hyperledger-fabric-protos``: signed proposals, Endorse, Submit, CommitStatus, Evaluate and ChaincodeEvents.

The flow of one transaction, as Fabric's own Gateway clients run it:

1. a **proposal**: channel header (type ENDORSER_TRANSACTION, channel, transaction id, timestamp, chaincode),
   signature header (the MSP identity and a nonce; the transaction id is ``sha256(nonce || creator)``) and the
   chaincode invocation, signed by the identity;
2. **Endorse**: the gateway has the peers of the endorsement policy run it and returns the prepared transaction
   (an unsigned envelope holding the endorsements, the chaincode's result and its event);
3. **Submit** the envelope, signed, to the ordering service; then **CommitStatus** (a signed request) waits for
   the peer to commit the block and answers the transaction's validation code and block number.

Every call has a deadline. A refusal by the chaincode comes back as the FinP2P error its message names (see
:mod:`finp2p_fabric.errors`); a peer that cannot be reached is FP6013, and a commit not seen after the transaction
was submitted FP6015 (it may still commit: the node looks it up before submitting again).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import chaincode_event_pb2, chaincode_pb2, proposal_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from finp2p.errors import ErrorCode, FinP2PError
from finp2p_fabric.errors import rpc_error
from finp2p_fabric.identity import Identity

#: gRPC settings of the connection to the peer: reconnect soon after the peer comes back (gRPC's own backoff
#: grows to two minutes), keep idle connections alive, allow large blocks (qscc answers whole blocks).
_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.max_receive_message_length", 100 * 1024 * 1024),
]

#: How a CommitStatus call ends when the commit was not seen: FP6015, the transaction may still commit.
_UNSEEN = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE})


@dataclass(frozen=True)
class Timeouts:
    """Deadlines of the Gateway calls, in seconds."""

    endorse: float = 30.0
    submit: float = 30.0
    commit: float = 60.0
    evaluate: float = 30.0


@dataclass(frozen=True)
class Proposal:
    """A signed proposal and what it was made from."""

    tx_id: str
    channel: str
    signed: proposal_pb2.SignedProposal
    timestamp: int


@dataclass(frozen=True)
class Prepared:
    """An endorsed transaction, ready to be signed and submitted."""

    proposal: Proposal
    envelope: common_pb2.Envelope


class Gateway:
    """One identity's connection to one peer's Gateway service. Safe to use concurrently; the gRPC channel is
    opened on first use (in the running event loop) and reconnects by itself."""

    def __init__(
        self,
        endpoint: str,
        tls_ca: bytes | None,
        identity: Identity,
        *,
        server_name: str | None = None,
        timeouts: Timeouts = Timeouts(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint
        self.identity = identity
        self.timeouts = timeouts
        #: Where the proposals' timestamps come from: Fabric takes a transaction's time from its client.
        self.clock = clock
        self._tls_ca = tls_ca
        self._server_name = server_name
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None

    # -- connection ---------------------------------------------------------------------------------------------
    def stub(self) -> Any:
        if self._stub is None:
            options = list(_CHANNEL_OPTIONS)
            if self._server_name:
                options.append(("grpc.ssl_target_name_override", self._server_name))
            if self._tls_ca is None:
                self._channel = grpc.aio.insecure_channel(self.endpoint, options=options)
            else:
                credentials = grpc.ssl_channel_credentials(root_certificates=self._tls_ca)
                self._channel = grpc.aio.secure_channel(self.endpoint, credentials, options=options)
            self._stub = gateway_pb2_grpc.GatewayStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        self._channel = self._stub = None

    # -- proposals ----------------------------------------------------------------------------------------------
    def proposal(self, channel: str, chaincode: str, function: str, args: Sequence[str | bytes]) -> Proposal:
        """A signed proposal to invoke ``function(*args)`` of ``chaincode`` on ``channel``."""
        nonce = os.urandom(24)
        creator = self.identity.creator
        tx_id = hashlib.sha256(nonce + creator).hexdigest()
        now = self.clock()
        seconds = int(now)
        extension = proposal_pb2.ChaincodeHeaderExtension(chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode))
        channel_header = common_pb2.ChannelHeader(
            type=common_pb2.ENDORSER_TRANSACTION,
            channel_id=channel,
            tx_id=tx_id,
            timestamp=Timestamp(seconds=seconds, nanos=int((now - seconds) * 1e9)),
            extension=extension.SerializeToString(),
        )
        header = common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=common_pb2.SignatureHeader(creator=creator, nonce=nonce).SerializeToString(),
        )
        arguments = [function.encode(), *(a.encode() if isinstance(a, str) else a for a in args)]
        invocation = chaincode_pb2.ChaincodeInvocationSpec(
            chaincode_spec=chaincode_pb2.ChaincodeSpec(
                type=chaincode_pb2.ChaincodeSpec.GOLANG,
                chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode),
                input=chaincode_pb2.ChaincodeInput(args=arguments),
            )
        )
        payload = proposal_pb2.ChaincodeProposalPayload(input=invocation.SerializeToString())
        proposal_bytes = proposal_pb2.Proposal(
            header=header.SerializeToString(), payload=payload.SerializeToString()
        ).SerializeToString()
        signed = proposal_pb2.SignedProposal(
            proposal_bytes=proposal_bytes, signature=self.identity.sign(proposal_bytes)
        )
        return Proposal(tx_id, channel, signed, seconds)

    # -- calls --------------------------------------------------------------------------------------------------
    async def _call(self, method: str, request: Any, timeout: float, what: str) -> Any:
        try:
            return await getattr(self.stub(), method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            if method == "CommitStatus" and exc.code() in _UNSEEN:
                # Submitted already: the orderer has it, and the lookup by operation id will find it once the
                # peer commits it. gRPC reports a deadline met mid-stream as a cancelled or reset stream too.
                raise FinP2PError(
                    ErrorCode.LEDGER_TIMEOUT,
                    f"{what}: the transaction was submitted and its commit not seen in {timeout:g} s "
                    f"({exc.code().name}: {exc.details() or 'no details'})",
                ) from None
            raise rpc_error(exc, what, self.endpoint) from None

    async def endorse(self, proposal: Proposal, what: str) -> Prepared:
        request = gateway_pb2.EndorseRequest(
            transaction_id=proposal.tx_id, channel_id=proposal.channel, proposed_transaction=proposal.signed
        )
        answer = await self._call("Endorse", request, self.timeouts.endorse, what)
        return Prepared(proposal, answer.prepared_transaction)

    async def submit(self, prepared: Prepared, what: str) -> None:
        envelope = prepared.envelope
        envelope.signature = self.identity.sign(envelope.payload)
        request = gateway_pb2.SubmitRequest(
            transaction_id=prepared.proposal.tx_id, channel_id=prepared.proposal.channel, prepared_transaction=envelope
        )
        await self._call("Submit", request, self.timeouts.submit, what)

    async def commit_status(self, proposal: Proposal, what: str) -> tuple[int, int]:
        """``(validation code, block number)`` of a submitted transaction, once the peer has committed it."""
        request = gateway_pb2.CommitStatusRequest(
            transaction_id=proposal.tx_id, channel_id=proposal.channel, identity=self.identity.creator
        ).SerializeToString()
        signed = gateway_pb2.SignedCommitStatusRequest(request=request, signature=self.identity.sign(request))
        answer = await self._call("CommitStatus", signed, self.timeouts.commit, f"{what} ({proposal.tx_id})")
        return int(answer.result), int(answer.block_number)

    async def evaluate(self, proposal: Proposal, what: str) -> bytes:
        """The chaincode's answer to a query (run on one peer, not submitted)."""
        request = gateway_pb2.EvaluateRequest(
            transaction_id=proposal.tx_id, channel_id=proposal.channel, proposed_transaction=proposal.signed
        )
        answer = await self._call("Evaluate", request, self.timeouts.evaluate, what)
        return bytes(answer.result.payload)

    async def chaincode_events(
        self, channel: str, chaincode: str, start_block: int | None = None, after_tx_id: str = ""
    ) -> AsyncIterator[tuple[int, chaincode_event_pb2.ChaincodeEvent]]:
        """The chaincode's events as blocks commit them, from ``start_block`` (default: the next block), as
        ``(block number, event)``. Ends only when the caller stops iterating or the peer goes away (FP6013)."""
        if start_block is None:
            position = ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit())
        else:
            position = ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start_block))
        request = gateway_pb2.ChaincodeEventsRequest(
            channel_id=channel,
            chaincode_id=chaincode,
            identity=self.identity.creator,
            start_position=position,
            after_transaction_id=after_tx_id,
        ).SerializeToString()
        signed = gateway_pb2.SignedChaincodeEventsRequest(request=request, signature=self.identity.sign(request))
        call = self.stub().ChaincodeEvents(signed)
        try:
            async for answer in call:
                for event in answer.events:
                    yield int(answer.block_number), event
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc, "chaincode events", self.endpoint) from None
        finally:
            call.cancel()

    async def wait_ready(self, timeout: float) -> None:
        """Wait until the connection to the peer is up (at most ``timeout`` seconds; FP6013 otherwise)."""
        self.stub()
        assert self._channel is not None
        try:
            await asyncio.wait_for(self._channel.channel_ready(), timeout)
        except TimeoutError:
            raise FinP2PError(
                ErrorCode.LEDGER_UNREACHABLE, f"cannot reach the Fabric peer at {self.endpoint} in {timeout:g} s"
            ) from None
