"""Values stored in the tables, encoded with msgspec msgpack.

Structs are ``array_like`` to keep records small and fast to (de)serialise.
Schema evolution rule: only append fields, always with a default.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import msgspec


class Failure(msgspec.Struct, array_like=True, frozen=True, gc=False):
    code: int
    message: str
    # Protocol V6 Failure.metadata as (key, value) pairs; None (not empty) when there is none,
    # so the common case allocates nothing. An invocation's outcome keeps them sorted by key
    # with unique keys (the real server turns them into a map there); journal notifications
    # (run, awakeable, signal) keep the SDK's order.
    metadata: tuple[tuple[str, str], ...] | None = None


class Outcome(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """The result of an invocation: a value (raw bytes) or a failure."""

    value: bytes | None = None
    failure: Failure | None = None


class Target(msgspec.Struct, array_like=True, frozen=True, gc=False):
    service: str
    handler: str
    key: str | None
    # "service" | "virtual_object" | "workflow" (the sys_invocation vocabulary)
    service_ty: str
    # "exclusive" | "shared" | "workflow" | None for plain services
    handler_kind: str | None

    @property
    def is_keyed(self) -> bool:
        return self.key is not None

    @property
    def needs_lock(self) -> bool:
        """Exclusive object handlers and workflow runs hold the key's lock."""
        return self.handler_kind in ("exclusive", "workflow")

    def display(self) -> str:
        if self.key is None:
            return f"{self.service}/{self.handler}"
        return f"{self.service}/{self.key}/{self.handler}"


class IngressSink(msgspec.Struct, tag="i", array_like=True, frozen=True, gc=False):
    """An HTTP caller waiting in this process's ingress (not meaningful after a restart)."""

    request_id: int
    # an attach request: its answer carries the retention expiry and the target
    attach: bool = False


class CallerSink(msgspec.Struct, tag="c", array_like=True, frozen=True, gc=False):
    """Another invocation waiting for this one (a Call or an Attach)."""

    caller_id: bytes
    completion_id: int
    # "call" -> CallCompletion notification, "attach" -> AttachInvocationCompletion
    kind: str = "call"


Sink = IngressSink | CallerSink


class TraceContext(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A span's W3C trace context; stored with an invocation, the context of its span.

    An invocation's span id is the last 8 bytes of its uuid (as in the real server), so
    the context is fixed when the invocation is created and survives restarts. Only
    sampled traces are stored. ``cause_span_id`` is the span that caused the invocation
    (the ingress span, or the calling attempt): its parent, unless ``cause_trace_id`` is
    set, when the cause lives in another trace and is a link (one-way calls).
    """

    trace_id: bytes
    span_id: bytes
    flags: int = 1
    trace_state: str = ""
    cause_span_id: bytes | None = None
    cause_trace_id: bytes | None = None


# Raw status vocabulary (sys_invocation_status.status)
SCHEDULED = "scheduled"
INBOXED = "inboxed"
INVOKED = "invoked"
SUSPENDED = "suspended"
PAUSED = "paused"
COMPLETED = "completed"


class InvocationStatus(msgspec.Struct, array_like=True, kw_only=True):
    status: str
    target: Target
    created_at: int
    modified_at: int
    random_seed: int
    idempotency_key: str | None = None
    invoked_by: str = "ingress"
    invoked_by_id: bytes | None = None
    invoked_by_target: str | None = None
    execution_time: int | None = None
    inboxed_at: int | None = None
    scheduled_at: int | None = None
    running_at: int | None = None
    completed_at: int | None = None
    inbox_sequence: int | None = None
    journal_length: int = 0
    journal_modified_at: int = 0
    epoch: int = 0
    deployment_id: str | None = None
    protocol_version: int | None = None
    sinks: list[Sink] = msgspec.field(default_factory=list)
    waiting_completions: list[int] = msgspec.field(default_factory=list)
    waiting_signals: list[int] = msgspec.field(default_factory=list)
    waiting_named_signals: list[str] = msgspec.field(default_factory=list)
    completion_ids: list[int] = msgspec.field(default_factory=list)
    signal_ids: list[int] = msgspec.field(default_factory=list)
    signal_names: list[str] = msgspec.field(default_factory=list)
    output: Outcome | None = None
    completion_retention_ms: int = 0
    journal_retention_ms: int = 0
    expires_at: int | None = None
    journal_expires_at: int | None = None
    trace_id: str | None = None
    # None unless tracing was on (and sampled) when the invocation was created
    trace_context: TraceContext | None = None
    # the completed invocation this one restarts (invoked_by "restart_as_new")
    restarted_from: bytes | None = None


class SleepTimer(msgspec.Struct, tag="sleep", array_like=True, frozen=True, gc=False):
    invocation_id: bytes
    completion_id: int


class ScheduledInvokeTimer(msgspec.Struct, tag="invoke", array_like=True, frozen=True, gc=False):
    invocation_id: bytes


class CleanupTimer(msgspec.Struct, tag="cleanup", array_like=True, frozen=True, gc=False):
    invocation_id: bytes


TimerKind = SleepTimer | ScheduledInvokeTimer | CleanupTimer


class PromiseRecord(msgspec.Struct, array_like=True, kw_only=True):
    completed: bool = False
    outcome: Outcome | None = None
    # (invocation id, completion id) of GetPromise calls waiting for it
    listeners: list[tuple[bytes, int]] = msgspec.field(default_factory=list)


# A key's inbox holds, in order, invocation ids (24 bytes) and state mutations queued
# behind the invocation holding the key; a mutation's encoding carries its 23-character
# tag, so it is always longer than 24 bytes.
INVOCATION_ID_LENGTH = 24


class QueuedStateMutation(
    msgspec.Struct, tag="external_state_mutation", array_like=True, frozen=True, gc=False
):
    """A whole-state replacement (admin API) waiting in a key's inbox."""

    version: str | None
    state: list[tuple[bytes, bytes]]


def is_queued_invocation(inbox_value: bytes) -> bool:
    return len(inbox_value) == INVOCATION_ID_LENGTH


class JournalEntry(NamedTuple):
    type_id: int
    body: bytes
    appended_at: int


_ENTRY_HEADER = struct.Struct(">HQ")


def encode_journal_entry(type_id: int, body: bytes, appended_at: int) -> bytes:
    return _ENTRY_HEADER.pack(type_id, appended_at) + body


def decode_journal_entry(raw: bytes) -> JournalEntry:
    type_id, appended_at = _ENTRY_HEADER.unpack_from(raw)
    return JournalEntry(type_id, raw[_ENTRY_HEADER.size :], appended_at)


_status_encoder = msgspec.msgpack.Encoder()
_status_decoder = msgspec.msgpack.Decoder(InvocationStatus)
_timer_decoder = msgspec.msgpack.Decoder(TimerKind)
_promise_decoder = msgspec.msgpack.Decoder(PromiseRecord)
_mutation_decoder = msgspec.msgpack.Decoder(QueuedStateMutation)


def encode(record: msgspec.Struct) -> bytes:
    return _status_encoder.encode(record)


def decode_status(raw: bytes) -> InvocationStatus:
    return _status_decoder.decode(raw)


def decode_timer(raw: bytes) -> TimerKind:
    return _timer_decoder.decode(raw)


def decode_promise(raw: bytes) -> PromiseRecord:
    return _promise_decoder.decode(raw)


def decode_queued_mutation(raw: bytes) -> QueuedStateMutation:
    return _mutation_decoder.decode(raw)
