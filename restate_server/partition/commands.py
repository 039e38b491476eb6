"""Commands: every change of durable state enters a partition as one of these.

Commands are plain msgspec structs so that they can later travel between
processes. Each command carries no clock reading; the processor stamps the
group it applies with one ``now``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from restate_server.storage.records import Failure, Outcome, Sink, Target, TimerKind


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


class Invoke(msgspec.Struct, tag="invoke"):
    request: InvocationRequest


class AttachCaller(msgspec.Struct, tag="attach"):
    """An ingress caller attaching to an existing invocation (attach / output)."""

    invocation_id: bytes
    request_id: int
    # True: wait for completion (attach); False: answer now (output)
    wait: bool = True


# ---- effects reported by the invoker for the attempt it runs (``epoch`` guards staleness)


class PinDeployment(msgspec.Struct, tag="pin"):
    invocation_id: bytes
    epoch: int
    deployment_id: str
    protocol_version: int


class JournalCommand(msgspec.Struct, tag="journal"):
    """A command message the SDK wrote; ``message`` is its decoded form."""

    invocation_id: bytes
    epoch: int
    type_id: int
    body: bytes
    message: Any


class ProposeRunCompletion(msgspec.Struct, tag="propose_run"):
    invocation_id: bytes
    epoch: int
    completion_id: int
    value: bytes | None
    failure: Failure | None
    requested_ack: bool = False


class AttemptEnded(msgspec.Struct, tag="end"):
    invocation_id: bytes
    epoch: int


class AttemptSuspended(msgspec.Struct, tag="suspend"):
    invocation_id: bytes
    epoch: int
    waiting_completions: list[int]
    waiting_signals: list[int]
    waiting_named_signals: list[str]


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


Command = (
    Invoke
    | AttachCaller
    | PinDeployment
    | JournalCommand
    | ProposeRunCompletion
    | AttemptEnded
    | AttemptSuspended
    | AttemptFailed
    | TimerFired
    | Recover
    | CompleteInvocation
)
