"""Commands: every change of durable state enters a partition as one of these.

Commands are plain msgspec structs so that they can later travel between
processes. Each command carries no clock reading; the processor stamps the
group it applies with one ``now``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from restate_server.storage.records import (
    Failure,
    Outcome,
    Sink,
    Target,
    TimerKind,
    TraceContext,
)


class InvocationRequest(msgspec.Struct, kw_only=True):
    """A new invocation: from the ingress, another invocation, or a schedule."""

    invocation_id: bytes
    target: Target
    argument: bytes
    headers: list[tuple[str, str]] = msgspec.field(default_factory=list)
    idempotency_key: str | None = None
    execution_time: int | None = None
    # who waits for the result (a call); None for one-way sends
    sink: Sink | None = None
    # an ingress request that wants the "Accepted"/"PreviouslyAccepted" answer of a send
    send_ack_request_id: int | None = None
    invoked_by: str = "ingress"
    invoked_by_id: bytes | None = None
    invoked_by_target: str | None = None
    completion_retention_ms: int = 0
    journal_retention_ms: int = 0
    # the id was just made from a fresh random key: no existing invocation can have it
    fresh: bool = False
    # the invocation's span context (tracing on and sampled), kept in its status
    trace_context: TraceContext | None = None


class Invoke(msgspec.Struct, tag="invoke"):
    request: InvocationRequest


def as_repeat(command: object) -> None:
    """``command`` is being sent again (resent after a reconnect, or rerouted to another
    leader) and may have reached its partition already: an invocation in it must be
    looked up by id, never taken as new (``fresh`` lets the partition skip that)."""
    if isinstance(command, Invoke):
        command.request.fresh = False


class AttachCaller(msgspec.Struct, tag="attach"):
    """An ingress caller attaching to an existing invocation (attach / output)."""

    invocation_id: bytes
    request_id: int
    # True: wait for completion (attach); False: answer now (output)
    wait: bool = True


# ---- effects reported by the invoker for the attempt it runs (``epoch`` guards staleness)


class JournalCommand(msgspec.Struct, tag="journal"):
    """A command message the SDK wrote; ``message`` is its decoded form."""

    invocation_id: bytes
    epoch: int
    type_id: int
    body: bytes
    message: Any
    # (deployment id, protocol version) chosen by the first attempt, pinned with this
    pin: tuple[str, int] | None = None
    # calls of a traced attempt: the attempt's span context, the callee's cause
    trace_context: TraceContext | None = None


class ProposeRunCompletion(msgspec.Struct, tag="propose_run"):
    invocation_id: bytes
    epoch: int
    completion_id: int
    value: bytes | None
    failure: Failure | None
    requested_ack: bool = False
    pin: tuple[str, int] | None = None


class AttemptEnded(msgspec.Struct, tag="end"):
    invocation_id: bytes
    epoch: int
    pin: tuple[str, int] | None = None


class AttemptSuspended(msgspec.Struct, tag="suspend"):
    invocation_id: bytes
    epoch: int
    waiting_completions: list[int]
    waiting_signals: list[int]
    waiting_named_signals: list[str]
    pin: tuple[str, int] | None = None


class AttemptFailed(msgspec.Struct, tag="failed"):
    """Attempts ran out: pause the invocation, or fail it with ``failure``."""

    invocation_id: bytes
    epoch: int
    failure: Failure
    pause: bool


class TimerFired(msgspec.Struct, tag="timer"):
    key: bytes
    timer: TimerKind


class Recover(msgspec.Struct, tag="recover"):
    """Applied once when a partition starts: resume what was in flight."""


class CompleteInvocation(msgspec.Struct, tag="complete"):
    """End an invocation with a given outcome (kill, cancel of a not-started invocation)."""

    invocation_id: bytes
    outcome: Outcome


# ---- messages between invocations (may cross partitions, see ``Deliver``)


class AppendNotification(msgspec.Struct, tag="append_notification"):
    """Append a ready-made notification to a live invocation's journal."""

    invocation_id: bytes
    type_id: int
    body: bytes
    completion_id: int | None = None
    signal_id: int | None = None
    signal_name: str | None = None


class AttachInvocation(msgspec.Struct, tag="attach_invocation"):
    """Another invocation waits for (``wait``) or asks for the output of ``target_id``."""

    target_id: bytes
    caller_id: bytes
    completion_id: int
    wait: bool = True


class CancelInvocation(msgspec.Struct, tag="cancel"):
    invocation_id: bytes
    # an admin request waiting for the outcome ("accepted", "completed", "not_found")
    request_id: int | None = None


class KillInvocation(msgspec.Struct, tag="kill"):
    invocation_id: bytes
    request_id: int | None = None


class PurgeInvocation(msgspec.Struct, tag="purge"):
    invocation_id: bytes
    request_id: int | None = None
    # the cleaner: purge only if its retention has expired by then
    only_if_expired: bool = False


class PauseInvocation(msgspec.Struct, tag="pause"):
    invocation_id: bytes
    request_id: int | None = None


class ResumeInvocation(msgspec.Struct, tag="resume"):
    invocation_id: bytes
    request_id: int | None = None


class PurgeJournal(msgspec.Struct, tag="purge_journal"):
    """Drop a completed invocation's journal, keep its status and output."""

    invocation_id: bytes
    request_id: int | None = None


class RestartAsNewInvocation(msgspec.Struct, tag="restart_as_new"):
    """Start a completed invocation again, as ``new_invocation_id`` (admin API).

    The new invocation gets the journal prefix up to ``copy_prefix_up_to`` (included;
    0 = the input only) and the completions of the commands in it.
    """

    invocation_id: bytes
    # made by the caller: the state machine draws no random numbers
    new_invocation_id: bytes
    copy_prefix_up_to: int = 0
    # "keep", "latest" or a deployment id to pin the new invocation to
    deployment: str = "latest"
    request_id: int | None = None


class PatchState(msgspec.Struct, tag="patch_state"):
    """Replace the whole state of one object/workflow key (admin API).

    Applied behind the invocation holding the key, if any; dropped when ``version`` is
    set and is not the version of the state found then.
    """

    partition_key: int
    service: str
    key: str
    state: list[tuple[bytes, bytes]]
    version: str | None = None
    # answered "accepted" once the mutation is committed (applied or queued)
    request_id: int | None = None


class ResolveAwakeable(msgspec.Struct, tag="resolve_awakeable"):
    """Complete an awakeable (a signal of ``invocation_id``) from outside an invocation."""

    invocation_id: bytes
    signal_id: int
    value: bytes | None = None
    failure: Failure | None = None
    request_id: int | None = None


OutboxCommand = Invoke | AppendNotification | AttachInvocation | CancelInvocation | KillInvocation


class Deliver(msgspec.Struct, tag="deliver"):
    """A command from another partition's outbox; ``sequence`` deduplicates re-deliveries."""

    source_partition: int
    sequence: int
    command: OutboxCommand


class TruncateOutbox(msgspec.Struct, tag="truncate_outbox"):
    """The target partition has committed outbox entry ``sequence``; forget it."""

    sequence: int


Command = (
    Invoke
    | AttachCaller
    | JournalCommand
    | ProposeRunCompletion
    | AttemptEnded
    | AttemptSuspended
    | AttemptFailed
    | TimerFired
    | Recover
    | CompleteInvocation
    | AppendNotification
    | AttachInvocation
    | CancelInvocation
    | KillInvocation
    | PurgeInvocation
    | PauseInvocation
    | ResumeInvocation
    | PurgeJournal
    | RestartAsNewInvocation
    | PatchState
    | ResolveAwakeable
    | Deliver
    | TruncateOutbox
)

_outbox_encoder = msgspec.msgpack.Encoder()
_outbox_decoder = msgspec.msgpack.Decoder(OutboxCommand)


def encode_outbox_command(command: OutboxCommand) -> bytes:
    return _outbox_encoder.encode(command)


def decode_outbox_command(raw: bytes) -> OutboxCommand:
    return _outbox_decoder.decode(raw)
