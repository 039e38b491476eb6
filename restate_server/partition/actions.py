"""Actions: what a partition asks the rest of the process to do once a batch is durable."""

from __future__ import annotations

from typing import Any

import msgspec

from restate_server.storage.records import (
    Failure,
    JournalEntry,
    Outcome,
    Target,
    TimerKind,
    TraceContext,
)


class InvokeAttempt(msgspec.Struct, tag="invoke_attempt"):
    """Start (or resume) running an invocation against its deployment."""

    invocation_id: bytes
    epoch: int
    target: Target
    random_seed: int
    deployment_id: str | None
    protocol_version: int | None
    # the whole journal when the partition has it at hand (a fresh invocation), so the
    # first attempt need not read it back; None: read it from storage
    journal: list[JournalEntry] | None = None
    # the invocation's span context when it is traced: the parent of the attempt's span
    trace_context: TraceContext | None = None


class NotifyInvoker(msgspec.Struct, tag="notify"):
    """A notification appended to a running invocation's journal at ``index``."""

    invocation_id: bytes
    epoch: int
    index: int
    type_id: int
    body: bytes
    # V7: the SDK asked for an ack of its run proposal; send ProposeRunCompletionAck instead
    ack_completion_id: int | None = None


class AbortAttempt(msgspec.Struct, tag="abort"):
    """Stop whatever attempt runs for this invocation (it completed or was killed)."""

    invocation_id: bytes


class FailAttempt(msgspec.Struct, tag="fail_attempt"):
    """A command of the running attempt was rejected; the attempt fails and is retried.

    ``epoch`` is the invocation's new epoch: later attempts must use it.
    """

    invocation_id: bytes
    epoch: int
    code: int
    message: str


class IngressReply(msgspec.Struct, tag="reply"):
    request_id: int
    invocation_id: bytes
    outcome: Outcome
    # completion time + retention, for the idempotency-expires header of retained results
    expires_at: int | None = None
    # the outcome was produced by the server (e.g. the invocation is not completed) rather
    # than by the invocation itself
    from_ingress: bool = False
    # the invocation's target, for answers to attach requests (output content type)
    target: Target | None = None


class IngressSendAck(msgspec.Struct, tag="send_ack"):
    request_id: int
    invocation_id: bytes
    previously_accepted: bool
    execution_time: int | None = None


class CommandReply(msgspec.Struct, tag="command_reply"):
    """The result of an admin/ingress command that is not an invocation outcome."""

    request_id: int
    # e.g. "accepted", "done", "completed", "not_found", "not_completed"
    result: str
    # an invocation the command created (restart-as-new)
    invocation_id: bytes | None = None
    # facts for the caller's error message (e.g. of an incompatible deployment)
    details: dict[str, Any] | None = None


class Shuffle(msgspec.Struct, tag="shuffle"):
    """Hand an outbox entry to the partition that owns its target."""

    source_partition: int
    target_partition: int
    sequence: int
    command: Any


class InvocationSpanStart(msgspec.Struct, tag="span_start"):
    """A traced invocation runs for the first time: record its span (creation to now)."""

    invocation_id: bytes
    target: Target
    trace_context: TraceContext
    created_at: int


class InvocationSpanEnd(msgspec.Struct, tag="span_end"):
    """A traced invocation completed (``failure`` None: successfully)."""

    invocation_id: bytes
    target: Target
    trace_context: TraceContext
    failure: Failure | None


class RegisterTimer(msgspec.Struct, tag="timer"):
    key: bytes
    due: int
    timer: TimerKind


Action = (
    InvokeAttempt
    | NotifyInvoker
    | AbortAttempt
    | FailAttempt
    | IngressReply
    | IngressSendAck
    | CommandReply
    | Shuffle
    | RegisterTimer
    | InvocationSpanStart
    | InvocationSpanEnd
)
