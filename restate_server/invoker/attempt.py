"""One attempt of an invocation: one HTTP exchange with the SDK endpoint.

The attempt writes Start and the replayed journal without waiting for the
response head (the exchange is full duplex), then forwards what the SDK writes
to the partition as commands, and pushes notifications the partition appends
while the stream is open. It ends on End / Suspension (success for the
invoker) or raises :class:`AttemptError` (retried by the invocation task).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import quote

from restate_server.http2.errors import H2StreamRefused
from restate_server.invoker import errors
from restate_server.invoker.errors import AttemptAborted, AttemptError
from restate_server.invoker.journal_reader import read_attempt_input
from restate_server.invoker.transport import AttemptStream
from restate_server.partition.commands import (
    AttemptEnded,
    AttemptSuspended,
    JournalCommand,
    ProposeRunCompletion,
)
from restate_server.partition.journal_messages import failure_from_pm
from restate_server.protocol import messages as pm
from restate_server.protocol.errors import ProtocolError
from restate_server.protocol.framing import (
    HEADER_SIZE,
    REQUESTED_ACK,
    FrameDecoder,
    encode_frame,
    encode_raw_frame,
)
from restate_server.protocol.ids import InvocationId
from restate_server.protocol.versions import invocation_content_type

if TYPE_CHECKING:
    from restate_server.invoker.invocation_task import InvocationTask
    from restate_server.schema.model import Deployment
    from restate_server.tracing.tracer import AttemptSpan

log = logging.getLogger(__name__)

ENDED = "ended"
SUSPENDED = "suspended"

_COMMAND_MIN, _COMMAND_MAX = 0x0400, 0x7FFF
_DRAIN_TIMEOUT_S = 5.0


class Attempt:
    def __init__(self, task: InvocationTask, retry_count: int) -> None:
        self.task = task
        self.epoch = task.epoch
        self.retry_count = retry_count
        self.stream: AttemptStream | None = None
        self.known_entries = 0
        self.request_open = False
        self.journaled_commands = 0
        self.sdk_server: str | None = None
        self._command_count = 0  # commands in the journal (for CommandAck indexes)
        self._buffered: list[tuple[int, int, bytes, int | None]] | None = []
        self._pin: tuple[str, int] | None = None  # travels with the first forwarded effect
        self._uncommitted = 0  # forwarded commands not yet committed
        self._drained: asyncio.Future[None] | None = None
        self._last_activity = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._timed_out: str | None = None
        self._partition_failure: AttemptError | None = None
        self._aborted = False
        self._version = 6
        self._span: AttemptSpan | None = None  # set when the invocation is traced

    # ---- notifications from the partition

    def notify(self, index: int, type_id: int, body: bytes, ack_completion_id: int | None) -> None:
        if self._buffered is not None:
            self._buffered.append((index, type_id, body, ack_completion_id))
            return
        if index < self.known_entries or not self.request_open or self.stream is None:
            return
        self._write_notification(type_id, body, ack_completion_id)

    def _write_notification(self, type_id: int, body: bytes, ack_completion_id: int | None) -> None:
        assert self.stream is not None
        if ack_completion_id is not None:
            frame = encode_frame(
                pm.ProposeRunCompletionAckMessage(completion_id=ack_completion_id),
                version=self._version,
            )
        else:
            frame = encode_raw_frame(type_id, body)
        self.stream.send(frame)
        self._touch()

    def abort(self) -> None:
        self._aborted = True
        if self.stream is not None:
            self.stream.reset()

    def abort_stream_quietly(self) -> None:
        """Drop the HTTP exchange of a failed attempt (no-op once it is closed)."""
        self.request_open = False
        if self.stream is not None:
            try:
                self.stream.reset()
            except Exception:
                log.debug("reset of a finished stream failed", exc_info=True)

    def request_suspension(self) -> bool:
        """Ask the SDK to suspend (shutdown): close our side of the stream, as the
        inactivity timeout does; the abort timeout still bounds the wait. False when
        there is no open stream to close (not started yet, or request-response)."""
        if not self.request_open or self.stream is None:
            return False
        self.request_open = False
        self.stream.end()
        return True

    def fail_from_partition(self, error: AttemptError) -> None:
        """The partition rejected a command: fail this attempt with that error."""
        self._partition_failure = error
        if self.stream is not None:
            self.stream.reset()

    async def durable_barrier(self) -> None:
        """Wait until every command forwarded by this attempt is committed."""
        if self._uncommitted > 0:
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained

    # ---- the exchange

    async def run(self) -> str:
        task = self.task
        deployment, version, chosen_now = task.resolve_deployment()
        self._version = version
        if chosen_now:
            self._pin = (deployment.id, version)
        info = task.target_info
        target = task.target
        invocation_id = task.invocation_id

        # Read what to replay only now: notifications committed from here on are
        # buffered by ``notify`` and filtered by index.
        eager = target.key is not None and not info.enable_lazy_state
        initial_journal = task.take_initial_journal()
        store = task.store
        read = partial(read_attempt_input, store, invocation_id, target, eager, initial_journal)
        if initial_journal is not None and info.handler_ty != "Shared":
            # A first attempt with its journal in hand reads at most the state of the key
            # it holds; every write to that state was committed before the action that
            # started it, and nobody else writes it until it runs.
            attempt_input = read()
        else:
            # A replay may find entries written in a batch that is still being synced.
            attempt_input = await task.invoker.durable_read(read)
        if self._aborted:
            raise AttemptAborted()
        entries = attempt_input.entries
        if not entries:
            raise AttemptAborted()
        self.known_entries = len(entries)
        self._command_count = sum(1 for e in entries if e.type_id < 0x8000)

        start = pm.StartMessage(
            id=invocation_id,
            debug_id=task.invocation_id_str,
            known_entries=len(entries),
            state_map=[pm.StateEntry(key=k, value=v) for k, v in attempt_input.state or ()],
            partial_state=attempt_input.state is None,
            key=target.key or "",
            retry_count_since_last_stored_entry=self.retry_count,
            duration_since_last_stored_entry=max(
                0, int(time.time() * 1000) - entries[-1].appended_at
            ),
            random_seed=task.random_seed if version >= 6 else 0,
        )
        content_type = invocation_content_type(version)
        headers = [
            ("content-type", content_type),
            ("accept", content_type),
            ("x-restate-invocation-id", task.invocation_id_str),
        ]
        if target.key is not None:
            headers.append(("x-restate-service-key", quote(target.key, safe="")))
        headers.append(("x-restate-cluster-name", task.invoker.cluster_name))
        headers.extend(deployment.additional_headers.items())
        signer = task.invoker.request_signer
        if signer is not None:
            # aud is the path below the deployment URI; sub the key (objects, workflows)
            aud = f"/invoke/{target.service}/{target.handler}"
            headers.extend(signer.headers(aud, target.key))
        if task.trace_context is not None:
            self._start_span(deployment, version, headers)

        request_response = (
            deployment.protocol_type == "RequestResponse" or info.inactivity_timeout_ms == 0
        )
        try:
            self.stream = stream = await task.invoker.transport.open(
                deployment.uri, deployment.use_http_11, target.service, target.handler, headers
            )
            if self._aborted:
                stream.reset()
                raise AttemptAborted()
            task.on_attempt_started(deployment.id)
            payload = [encode_frame(start, version=version)]
            payload.extend(encode_raw_frame(e.type_id, e.body) for e in entries)
            stream.send(b"".join(payload))
            self.request_open = True
            buffered, self._buffered = self._buffered or [], None
            if request_response:
                stream.end()
                self.request_open = False
            else:
                for index, type_id, body, ack in buffered:
                    if index >= self.known_entries:
                        self._write_notification(type_id, body, ack)

            self._arm_watchdog(info.inactivity_timeout_ms, info.abort_timeout_ms, request_response)
            outcome = await self._pump(stream, content_type, version)
            self._disarm_watchdog()
            await self._settle()
        except BaseException as exc:
            if self._span is not None:
                self._end_span_on(exc)
            raise
        finally:
            self._disarm_watchdog()
        if self._span is not None:
            self._span.ended(outcome == SUSPENDED)
        return outcome

    async def _settle(self) -> None:
        """After the terminal message: wait until the attempt's commands are committed.

        The partition may have rejected one of them (a failed precondition: FailAttempt,
        with a new epoch); it then ignores the terminal message, sent under the old
        epoch, so this attempt must fail and be retried, or the invocation would wait
        for ever with no attempt running.
        """
        await self.durable_barrier()
        if self._partition_failure is not None:
            raise self._partition_failure

    # ---- tracing (only when the invocation is traced)

    def _start_span(
        self, deployment: Deployment, version: int, headers: list[tuple[str, str]]
    ) -> None:
        """The attempt's span; its context goes to the endpoint as ``traceparent``."""
        task = self.task
        tracer = task.invoker.tracer
        assert tracer is not None and task.trace_context is not None
        self._span = span = tracer.attempt_span(
            task.invocation_id_str,
            task.target,
            task.trace_context,
            deployment.id,
            deployment.uri,
            version,
        )
        headers.extend(span.headers())

    def _end_span_on(self, exc: BaseException) -> None:
        assert self._span is not None
        if isinstance(exc, AttemptError):
            self._span.failed()
        else:  # aborted or cancelled: no outcome of its own
            self._span.dropped()

    async def _pump(self, stream: AttemptStream, content_type: str, version: int) -> str:
        try:
            status, headers = await stream.response()
        except (AttemptError, AttemptAborted):
            raise
        except Exception as exc:
            raise self._stream_failure(exc) from exc
        self._touch()
        self._check_head(status, headers, content_type)

        invoker = self.task.invoker
        decoder = FrameDecoder(invoker.message_size_limit)
        warn_size = invoker.message_size_warning
        while True:
            try:
                chunk = await stream.read()
            except (AttemptError, AttemptAborted):
                raise
            except Exception as exc:
                raise self._stream_failure(exc) from exc
            if not chunk:
                if self._partition_failure is not None:
                    raise self._partition_failure
                if self._timed_out:
                    raise AttemptError(self._timed_out, doc_code=errors.ABORT_TIMEOUT)
                if decoder.pending:
                    where = "a message" if decoder.pending >= HEADER_SIZE else "a message header"
                    raise AttemptError(
                        f"the response ended inside {where} ({decoder.pending} of "
                        f"{decoder.needed} bytes received)",
                        code=571,
                    )
                raise AttemptError(
                    "the response ended without a terminal message (End, Suspension or Error)",
                    doc_code=errors.SDK_ERROR,
                )
            self._touch()
            try:
                frames = decoder.feed(chunk)
            except ProtocolError as exc:  # the only one: a header announcing too much
                raise AttemptError(
                    f"{exc} (worker.invoker.message-size-limit)",
                    code=571,
                    doc_code=errors.MESSAGE_TOO_LARGE,
                ) from exc
            for frame in frames:
                if len(frame.body) >= warn_size:
                    log.warning(
                        "Message of %d bytes (type %#06x) from the SDK reaches the "
                        "worker.invoker.message-size-warning of %d bytes",
                        len(frame.body),
                        frame.type_id,
                        warn_size,
                        extra=self.task.log_extra(),
                    )
                outcome = self._on_frame(frame.type_id, frame.flags, frame.body, version)
                if outcome is not None:
                    self._finish(stream)
                    return outcome

    def _stream_failure(self, exc: BaseException) -> BaseException:
        # The stream keeps the error it raised, and the error's traceback the stream's
        # frames: a reference cycle per failed attempt, left to the (rarely running, see
        # gc_tuning) collector. The traceback is of no use here.
        exc.__traceback__ = None
        if self._aborted:
            return AttemptAborted()
        if self._partition_failure is not None:
            return self._partition_failure
        if self._timed_out:
            return AttemptError(self._timed_out, doc_code=errors.ABORT_TIMEOUT)
        message = f"error when talking to the deployment: {exc or type(exc).__name__}"
        if isinstance(exc, H2StreamRefused):
            return AttemptError(
                message, reached_sdk=False, refused=True, doc_code=errors.UNREACHABLE
            )
        return AttemptError(message, doc_code=errors.UNREACHABLE)

    def _check_head(self, status: int, headers: list[tuple[str, str]], content_type: str) -> None:
        header_map = dict(headers)
        self.sdk_server = header_map.get("x-restate-server")
        if 200 <= status < 300:
            got = header_map.get("content-type")
            if got != content_type:
                raise AttemptError(
                    f"unexpected content type '{got}' in the response, expected '{content_type}'",
                    doc_code=errors.PROTOCOL,
                )
            return
        retry_after = None
        if status in (429, 503):
            retry_after = _parse_retry_after(header_map.get("retry-after"))
        reasons = {
            415: "the SDK does not support the negotiated service protocol version",
            413: "content too large",
            404: "the deployment does not know this service/handler",
        }
        message = reasons.get(status, "unexpected status code")
        if status in (429, 502, 503, 504):
            doc_code = errors.UNREACHABLE
        elif status == 415:
            doc_code = errors.BAD_PROTOCOL_VERSION
        else:
            doc_code = errors.PROTOCOL
        raise AttemptError(
            f"{message} (HTTP {status})",
            code=status if status >= 400 else 500,
            retry_after_ms=retry_after,
            doc_code=doc_code,
        )

    def _on_frame(self, type_id: int, flags: int, body: bytes, version: int) -> str | None:
        task = self.task
        try:
            message = pm.decode_message(type_id, body, version)
        except ProtocolError as exc:
            if type_id not in pm.MESSAGE_TYPES:  # e.g. a custom entry (0xFC00 and up)
                raise AttemptError(
                    f"the SDK sent a message of unknown type {type_id:#06x}", code=571
                ) from exc
            raise AttemptError(f"cannot decode message {type_id:#06x}: {exc}", code=571) from exc

        if _COMMAND_MIN <= type_id <= _COMMAND_MAX:
            if type_id == pm.InputCommandMessage.TYPE:
                raise AttemptError("the SDK sent an Input command", code=571)
            self._command_count += 1
            on_durable = None
            if flags & REQUESTED_ACK:
                on_durable = self._command_ack(self._command_count - 1)
            command = JournalCommand(task.invocation_id, self.epoch, type_id, body, message)
            span = self._span
            if span is not None:
                span.command(type_id, message)
                command.trace_context = span.cause_of(type_id)
            self._forward(command, on_durable)
            self.journaled_commands += 1
            return None
        if type_id == pm.ProposeRunCompletionMessage.TYPE:
            if self._span is not None:
                self._span.run_ended(message.result_completion_id)
            self._forward(
                ProposeRunCompletion(
                    task.invocation_id,
                    self.epoch,
                    message.result_completion_id,
                    message.value,
                    failure_from_pm(message.failure),
                    requested_ack=bool(flags & REQUESTED_ACK) and version >= 7,
                )
            )
            self.journaled_commands += 1
            return None
        if type_id == pm.EndMessage.TYPE:
            self._forward(AttemptEnded(task.invocation_id, self.epoch))
            return ENDED
        if type_id == pm.SuspensionMessage.TYPE:
            completions = list(message.waiting_completions)
            signals = list(message.waiting_signals)
            names = list(message.waiting_named_signals)
            if message.awaiting_on is not None:
                _collect_future(message.awaiting_on, completions, signals, names)
            if not (completions or signals or names):
                raise AttemptError("empty suspension message", code=571)
            self._forward(
                AttemptSuspended(task.invocation_id, self.epoch, completions, signals, names)
            )
            return SUSPENDED
        if type_id == pm.ErrorMessage.TYPE:
            raise _error_from_message(message, version)
        if type_id == pm.AwaitingOnMessage.TYPE:
            return None
        name = pm.MESSAGE_NAMES.get(type_id, f"{type_id:#06x}")
        raise AttemptError(f"unexpected message {name} from the SDK", code=571)

    def _forward(self, command: object, on_durable: Callable[[], None] | None = None) -> None:
        if self._pin is not None:
            command.pin = self._pin  # type: ignore[attr-defined]
            self._pin = None
        self._uncommitted += 1
        callback = self._committed
        if on_durable is not None:

            def callback() -> None:
                self._committed()
                on_durable()

        self.task.processor.submit(command, callback)  # type: ignore[arg-type]

    def _committed(self) -> None:
        self._uncommitted -= 1
        if self._uncommitted == 0 and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _command_ack(self, command_index: int) -> Callable[[], None]:
        def send_ack() -> None:
            if self.request_open and self.stream is not None:
                ack = pm.CommandAckMessage(command_index=command_index)
                self.stream.send(encode_frame(ack, version=self._version))

        return send_ack

    def _finish(self, stream: AttemptStream) -> None:
        """After the terminal message: close our side; theirs closes by itself.

        Nothing the SDK sends after its terminal message matters; a stream that the
        SDK does not close within a few seconds is reset.
        """
        if self.request_open:
            self.request_open = False
            stream.end()
        asyncio.get_running_loop().call_later(_DRAIN_TIMEOUT_S, stream.reset)

    # ---- inactivity / abort timeouts

    def _touch(self) -> None:
        self._last_activity = asyncio.get_running_loop().time()

    def _arm_watchdog(self, inactivity_ms: int, abort_ms: int, request_response: bool) -> None:
        loop = asyncio.get_running_loop()
        self._last_activity = loop.time()
        self._inactivity_s = inactivity_ms / 1000
        self._abort_s = abort_ms / 1000
        self._phase_abort = request_response or inactivity_ms <= 0
        self._schedule_watchdog()

    def _schedule_watchdog(self) -> None:
        timeout = self._abort_s if self._phase_abort else self._inactivity_s
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_at(self._last_activity + timeout, self._on_watchdog)

    def _on_watchdog(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self._abort_s if self._phase_abort else self._inactivity_s
        if loop.time() < self._last_activity + timeout - 0.001:
            self._schedule_watchdog()  # there was activity since: wait for the rest
            return
        if not self._phase_abort:
            # Inactivity: close our side, which asks the SDK to suspend.
            self._phase_abort = True
            if self.request_open and self.stream is not None:
                self.request_open = False
                self.stream.end()
            self._touch()
            self._schedule_watchdog()
            return
        self._timed_out = (
            f"the SDK sent nothing for {self._abort_s:g} s after the request was closed "
            "(abort timeout)"
        )
        if self.stream is not None:
            # not a plain reset: a connection as silent as the stream may be dead, and the
            # retry must not wait on it too
            self.stream.give_up()

    def _disarm_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None


def _collect_future(
    future: pm.Future, completions: list[int], signals: list[int], names: list[str]
) -> None:
    """V7: flatten a future tree; resuming when any leaf is present is conservative."""
    completions.extend(future.waiting_completions)
    signals.extend(future.waiting_signals)
    names.extend(future.waiting_named_signals)
    for nested in future.nested_futures:
        _collect_future(nested, completions, signals, names)


def _error_from_message(message: pm.ErrorMessage, version: int) -> AttemptError:
    code = message.code or 500
    return AttemptError(
        message.message or "the SDK reported an error",
        code=code,
        doc_code=errors.sdk_doc_code(code) or errors.SDK_ERROR,
        retry_after_ms=message.next_retry_delay,
        related_command_index=message.related_command_index,
        related_command_name=message.related_command_name,
        related_command_type=message.related_command_type,
        stacktrace=message.stacktrace or None,
        behavior=message.behavior if version >= 7 else 0,
    )


def _parse_retry_after(value: str | None) -> int | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value) * 1000
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, int(when.timestamp() * 1000 - time.time() * 1000))


def invocation_id_str(raw: bytes) -> str:
    return str(InvocationId.from_bytes(raw))
