"""What the invoker does with a malicious or broken endpoint, without sockets (issue 12,
item 3; the end-to-end probes are tests/reliability/test_malicious_endpoints.py).

A fake stream plays the endpoint's response; a fake partition commits what the attempt
forwards (and rejects commands when told to)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from restate_server.config import load_config
from restate_server.http2.errors import H2StreamReset
from restate_server.http2.stream import H2Stream
from restate_server.invoker.attempt import ENDED, Attempt
from restate_server.invoker.errors import MAX_RETRY_DELAY_MS, AttemptError
from restate_server.invoker.invocation_task import InvocationTask
from restate_server.invoker.invoker import Invoker
from restate_server.invoker.retry import RetryPolicy
from restate_server.partition.actions import FailAttempt, InvokeAttempt
from restate_server.partition.commands import AttemptEnded, JournalCommand
from restate_server.partition.processor import PartitionProcessor
from restate_server.partition.state_machine import StateMachine
from restate_server.partition.table import PartitionTable
from restate_server.protocol import messages as pm
from restate_server.protocol.errors import ProtocolError
from restate_server.protocol.framing import encode_frame, encode_raw_frame
from restate_server.protocol.wire import decode_varint, encode_varint
from restate_server.query.in_flight import capture
from restate_server.server import invoker_options
from restate_server.storage.committer import Committer
from restate_server.storage.db import Store
from restate_server.storage.records import JournalEntry, Target
from tests.support.collector import collector_off

MIB = 1024 * 1024
CT = "application/vnd.restate.invocation.v6"
TARGET = Target("Mal", "run", None, "service", None)
INPUT = JournalEntry(pm.InputCommandMessage.TYPE, encode_frame(pm.InputCommandMessage())[8:], 0)


class FakeStream:
    """The endpoint's side: a 200 head with ``content_type``, then ``chunks``."""

    def __init__(self, chunks: list[bytes], content_type: str = CT) -> None:
        self.chunks = list(chunks)
        self.content_type = content_type
        self.sent: list[bytes] = []
        self.was_reset = False
        self.ended = False

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def end(self) -> None:
        self.ended = True

    async def response(self) -> tuple[int, list[tuple[str, str]]]:
        return 200, [("content-type", self.content_type)]

    async def read(self) -> bytes:
        await asyncio.sleep(0)
        return self.chunks.pop(0) if self.chunks else b""

    def reset(self) -> None:
        self.was_reset = True


class FakePartition:
    """Commits every forwarded command on the next loop turn; ``reject`` decides which
    journal commands fail their attempt, as a failed precondition does (a new epoch)."""

    partition_id = 0

    def __init__(self) -> None:
        self.invoker: Invoker | None = None
        self.reject: Callable[[Any], bool] = lambda command: False
        self.commands: list[Any] = []

    def submit(self, command: Any, on_durable: Callable[[], None] | None = None) -> None:
        self.commands.append(command)
        asyncio.get_running_loop().call_soon(self._commit, command, on_durable)

    def _commit(self, command: Any, on_durable: Callable[[], None] | None) -> None:
        # actions of a group are performed before its commit callbacks run
        if isinstance(command, JournalCommand) and self.reject(command):
            assert self.invoker is not None
            fail = FailAttempt(command.invocation_id, command.epoch + 1, 500, "rejected")
            self.invoker.perform(fail)
        if on_durable is not None:
            on_durable()


def _invoker(partition: FakePartition, stream: FakeStream, **options: Any) -> Invoker:
    deployment = SimpleNamespace(
        id="dp_1",
        uri="http://endpoint/",
        use_http_11=False,
        protocol_type="BidiStream",
        additional_headers={},
        min_protocol_version=5,
        max_protocol_version=6,
    )
    info = SimpleNamespace(
        handler_ty=None,
        enable_lazy_state=False,
        inactivity_timeout_ms=60_000,
        abort_timeout_ms=60_000,
        retry_policy=None,
    )
    registry = SimpleNamespace(
        resolve_invocation_target=lambda service, handler: info,
        latest_deployment_for=lambda service: deployment,
        get_deployment=lambda deployment_id: deployment,
    )

    async def open_stream(*args: Any) -> FakeStream:
        return stream

    invoker = Invoker(
        store=None,  # type: ignore[arg-type]
        registry=registry,
        transport=SimpleNamespace(open=open_stream),  # type: ignore[arg-type]
        processor_for=lambda _id: partition,  # type: ignore[arg-type,return-value]
        default_retry_policy=RetryPolicy(),
        durable_read=lambda fn: asyncio.sleep(0, fn()),  # type: ignore[arg-type,return-value]
        **options,
    )
    partition.invoker = invoker
    return invoker


async def _first_failure(stream: FakeStream, **options: Any) -> AttemptError | None:
    """Run one invocation task until its first failure (None: the attempt succeeded)."""
    partition = FakePartition()
    return await _run_task(partition, stream, **options)


async def _run_task(
    partition: FakePartition, stream: FakeStream, **options: Any
) -> AttemptError | None:
    invoker = _invoker(partition, stream, **options)
    action = InvokeAttempt(bytes(24), 1, TARGET, 0, None, None, journal=[INPUT])
    task = InvocationTask(invoker, action, partition)  # type: ignore[arg-type]
    failures: list[AttemptError] = []

    async def backoff(failure: AttemptError) -> bool:
        failures.append(failure)
        return False

    task._backoff = backoff  # type: ignore[method-assign]
    invoker.tasks[task.invocation_id] = task
    await asyncio.wait_for(task._run(), 5)
    return failures[0] if failures else None


def _ok() -> bytes:
    return encode_frame(pm.OutputCommandMessage(value=b'"ok"')) + encode_frame(pm.EndMessage())


async def test_a_header_over_the_configured_limit_is_refused_at_once() -> None:
    header = pm.OutputCommandMessage.TYPE.to_bytes(2, "big") + bytes(2) + (16 * MIB).to_bytes(4)
    # only the header and a KiB arrive: the refusal may not wait for the announced body
    stream = FakeStream([header + bytes(1024)])
    failure = await _first_failure(stream, message_size_limit=MIB)
    assert failure is not None
    assert failure.message == (
        f"message of {16 * MIB} bytes exceeds the limit of {MIB} bytes "
        "(worker.invoker.message-size-limit)"
    )
    assert (failure.code, failure.doc_code) == (571, "RT0003")
    assert stream.was_reset


async def test_a_message_under_the_limit_goes_through_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = b'"' + b"x" * 300_000 + b'"'
    frames = encode_frame(pm.OutputCommandMessage(value=value)) + encode_frame(pm.EndMessage())
    stream = FakeStream([frames[i : i + 16384] for i in range(0, len(frames), 16384)])
    failure = await _first_failure(stream, message_size_limit=MIB, message_size_warning=256 * 1024)
    assert failure is None
    assert "reaches the worker.invoker.message-size-warning of 262144 bytes" in caplog.text


def test_the_configured_limit_reaches_the_invoker() -> None:
    env = {
        "RESTATE_WORKER__INVOKER__MESSAGE_SIZE_LIMIT": "1 MiB",
        "RESTATE_WORKER__INVOKER__MESSAGE_SIZE_WARNING": "512 KiB",
    }
    options = invoker_options(load_config(None, env, {}))
    assert (options["message_size_limit"], options["message_size_warning"]) == (MIB, 512 * 1024)
    defaults = invoker_options(load_config(None, {}, {}))
    assert (defaults["message_size_limit"], defaults["message_size_warning"]) == (
        32 * MIB,
        10 * MIB,
    )


@pytest.mark.parametrize(
    ("chunks", "content_type", "message", "code", "doc_code"),
    [
        (
            [encode_raw_frame(0xFC01, b"\x0a\x03abc") + _ok()],
            CT,
            "the SDK sent a message of unknown type 0xfc01",
            571,
            "RT0012",
        ),
        (
            [encode_frame(pm.StartMessage(known_entries=1)) + _ok()],
            CT,
            "unexpected message StartMessage from the SDK",
            571,
            "RT0012",
        ),
        (
            [encode_frame(pm.OutputCommandMessage(value=b'"' + b"x" * 100 + b'"'))[:20]],
            CT,
            "the response ended inside a message (20 of 114 bytes received)",
            571,
            "RT0012",
        ),
        (
            [encode_frame(pm.EndMessage())[:5]],
            CT,
            "the response ended inside a message header (5 of 8 bytes received)",
            571,
            "RT0012",
        ),
        (
            [],
            CT,
            "the response ended without a terminal message (End, Suspension or Error)",
            500,
            "RT0007",
        ),
        (
            [_ok()],
            "application/vnd.restate.invocation.v3",
            "unexpected content type 'application/vnd.restate.invocation.v3' in the response, "
            f"expected '{CT}'",
            500,
            "RT0012",
        ),
        (
            [encode_frame(pm.ErrorMessage(code=570, message="mismatch", related_command_index=1))],
            CT,
            "mismatch",
            570,
            "RT0016",
        ),
        (
            [encode_frame(pm.ErrorMessage(code=503, message="busy"))],
            CT,
            "busy",
            503,
            "RT0007",
        ),
    ],
)
async def test_each_broken_answer_has_its_message_and_code(
    chunks: list[bytes], content_type: str, message: str, code: int, doc_code: str
) -> None:
    failure = await _first_failure(FakeStream(chunks, content_type))
    assert failure is not None
    assert (failure.message, failure.code, failure.doc_code) == (message, code, doc_code)


def test_the_error_code_reaches_sys_invocation() -> None:
    task = SimpleNamespace(
        invocation_id=b"i" * 24,
        attempt=None,
        attempt_number=3,
        last_start_at=None,
        next_retry_at=1,
        last_attempt_deployment_id="dp_1",
        last_attempt_server=None,
        last_failure=AttemptError("mismatch", code=570, related_command_index=1),
    )
    state = capture([task])[b"i" * 24]
    assert state.last_failure == "[570 Journal mismatch] mismatch"
    assert state.last_failure_error_code == "RT0016"


async def test_a_rejected_command_fails_the_attempt_even_after_its_end() -> None:
    """An SDK sends a command the partition rejects (a call to an unknown service) and
    End at once: the partition ignores the End (its epoch moved on), so the attempt must
    fail and be retried; it used to end, leaving the invocation with no attempt at all."""
    call = pm.OneWayCallCommandMessage(service_name="Nope", handler_name="x")
    stream = FakeStream([encode_frame(call) + _ok()])
    partition = FakePartition()
    partition.reject = lambda command: command.type_id == pm.OneWayCallCommandMessage.TYPE
    failure = await _run_task(partition, stream)
    assert failure is not None and failure.message == "rejected"


async def test_an_accepted_end_still_succeeds() -> None:
    partition = FakePartition()
    outcome_stream = FakeStream([_ok()])
    assert await _run_task(partition, outcome_stream) is None
    assert [type(c).__name__ for c in partition.commands] == ["JournalCommand", "AttemptEnded"]


async def test_the_attempt_waits_for_its_commands_before_it_ends() -> None:
    partition = FakePartition()
    invoker = _invoker(partition, FakeStream([_ok()]))
    task = InvocationTask(
        invoker,
        InvokeAttempt(bytes(24), 1, TARGET, 0, None, None, journal=[INPUT]),
        partition,  # type: ignore[arg-type]
    )
    attempt = Attempt(task, 0)
    assert await attempt.run() == ENDED
    assert attempt._uncommitted == 0


class _BrokenStateMachine(StateMachine):
    """Applying the end of an attempt raises (a bug of the server, say)."""

    def apply(self, txn: Any, command: Any, now: int) -> Any:
        if isinstance(command, AttemptEnded):
            raise RuntimeError("boom")
        return super().apply(txn, command, now)


async def test_an_attempt_end_that_cannot_be_applied_fails_the_attempt(tmp_path: Any) -> None:
    """Not only journal commands: an End or Suspension the partition failed to apply
    fails its attempt too (retried), instead of leaving the invocation with none."""
    store = Store(str(tmp_path / "db"), sync_writes=False)
    committer = Committer(store, asyncio.get_running_loop())
    performed: list[Any] = []
    processor = PartitionProcessor(
        0,
        (0, 1 << 64),
        store,
        committer,
        _BrokenStateMachine(0, PartitionTable(1)),
        performed.extend,
    )
    await processor.start()
    try:
        await processor.submit_and_wait(AttemptEnded(bytes(24), 3))
        assert [type(a).__name__ for a in performed] == ["FailAttempt"]
        assert (performed[0].epoch, performed[0].code) == (3, 500)
    finally:
        await processor.stop()
        committer.close()
        store.close()


def test_an_sdk_retry_delay_is_bounded() -> None:
    failure = AttemptError("later", retry_after_ms=2**64 - 1)
    assert failure.retry_after_ms == MAX_RETRY_DELAY_MS
    assert AttemptError("soon", retry_after_ms=1500).retry_after_ms == 1500


def test_varints_past_64_bits_are_refused() -> None:
    for value in (0, 127, 128, 2**63, 2**64 - 1):
        assert decode_varint(encode_varint(value), 0)[0] == value
    for value in (2**64, 2**70 - 1):
        with pytest.raises(ProtocolError, match="varint past 64 bits"):
            decode_varint(encode_varint(value), 0)
    # a wake-up time no timer key can hold, in a body that otherwise decodes
    body = b"\x08" + encode_varint(2**64) + b"\x58\x01"
    with pytest.raises(ProtocolError):
        pm.decode_message(pm.SleepCommandMessage.TYPE, body)


def test_invalid_utf8_in_a_repeated_string_is_a_protocol_error() -> None:
    body = b"\x1a\x02\xff\xfe"  # SuspensionMessage.waiting_named_signals = [b"\xff\xfe"]
    with pytest.raises(ProtocolError, match="invalid UTF-8"):
        pm.decode_message(pm.SuspensionMessage.TYPE, body)


class _Connection:
    """What an H2Stream calls on its connection."""

    def reset_stream(self, stream: Any, error_code: int) -> None:
        pass

    def flush_stream(self, stream: Any) -> None:
        pass


@pytest.mark.parametrize("cause", ["reset", "decode"])
async def test_an_attempt_that_failed_is_freed_at_once(cause: str) -> None:
    """A reset stream keeps its error, and the error's traceback kept the frames that held
    the stream: every attempt an endpoint reset was a reference cycle, left to a collector
    that rarely runs (gc_tuning), about 3 KB an attempt (10 MB for an endpoint resetting
    every stream for a minute). And the task's last failure held, through its traceback,
    the task's own frame: a cycle per task that ever failed."""
    partition = FakePartition()
    stream: Any
    if cause == "reset":
        stream = H2Stream(_Connection(), 1)  # type: ignore[arg-type]
        stream.on_response(200, [("content-type", CT)])
        stream.fail(H2StreamReset("stream reset by endpoint (error 2)", 2))
    else:
        stream = FakeStream([encode_raw_frame(pm.RunCommandMessage.TYPE, b"\x07")])
    invoker = _invoker(partition, stream)
    action = InvokeAttempt(bytes(24), 1, TARGET, 0, None, None, journal=[INPUT])
    task = InvocationTask(invoker, action, partition)  # type: ignore[arg-type]

    async def backoff(failure: AttemptError) -> bool:
        return False

    task._backoff = backoff  # type: ignore[method-assign]
    with collector_off():
        await task._run()
        assert task.last_failure is not None and task.last_failure.code in (500, 571)
        finished = weakref.ref(task)
        del task, stream
        assert finished() is None, "the task was kept alive by a reference cycle"
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            cyclic = {type(o).__name__ for o in gc.garbage}
            assert not cyclic & {"H2Stream", "H2StreamReset", "Attempt", "AttemptError"}, cyclic
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
