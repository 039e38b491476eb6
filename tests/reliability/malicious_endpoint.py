"""A malicious or broken SDK endpoint (issue 12, item 3), with frame-level control.

An HTTP/2 cleartext server on the ``h2`` library, run on an event loop in a background
thread of the test process. Every mode listens on its own loopback port, so the server
opens one connection per mode (a connection cut in one mode fails no attempt of
another), and announces one service, ``Mal-<mode>``, with one handler ``run``. Discovery
is always answered correctly; what the invocation stream does depends on the mode
(``MODES``). Every mode first waits for the Start message and the replayed journal, as
an SDK does, then misbehaves; most then send a valid Output and End, so a server that
ignored the bad part would complete the invocation instead of retrying it.

    ep = MaliciousEndpoint().start()
    srv.register(ep.url("stall"))
    ...
    ep.attempts("stall")        # attempts received so far
    ep.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from restate_server.protocol import messages as pm
from restate_server.protocol.framing import FrameDecoder, encode_frame, encode_raw_frame
from restate_server.protocol.wire import (
    LENGTH_DELIMITED,
    VARINT,
    encode_varint,
    length_delimited,
    tag,
)
from tests.support.ports import LOOPBACK

MANIFEST_CT = "application/vnd.restate.endpointmanifest.v4+json"
MIB = 1024 * 1024
# the tests configure worker.invoker.message-size-limit to 1 MiB; these are either side
OVER_LIMIT_BYTES = 30 * MIB  # under the 32 MiB default: refused only if the setting is used
UNDER_LIMIT_BYTES = 900 * 1024
HUGE_ANNOUNCED = 2 * 1024 * MIB

MODES: dict[str, str] = {
    "random-bytes": "4 KiB of random bytes after a valid head",
    "huge-header": "a frame header announcing a 2 GiB OutputCommand",
    "over-limit": "a 30 MiB OutputCommand sent in full, then End",
    "unknown-type": "a message of type 0xFC01 (custom entry range, no ignorable flag)",
    "start-from-sdk": "a StartMessage (a runtime-to-SDK message) from the SDK",
    "notification-from-sdk": "a RunCompletionNotification (written by the runtime) from the SDK",
    "rst-stream": "RST_STREAM (INTERNAL_ERROR) after the head",
    "stall": "the head, then nothing (past the inactivity and abort timeouts)",
    "cut-mid-message": "20 bytes of a 114-byte message, then the TCP connection closed",
    "end-mid-message": "20 bytes of a 114-byte message, then END_STREAM",
    "wrong-version": "content-type application/vnd.restate.invocation.v3 in the response head",
    "journal-mismatch": "attempt 1 journals Run 'step1'; later attempts expect a Sleep there",
    "random-protobuf": "a valid header of a command type with a random (protobuf) body",
    "far-retry-delay": "an ErrorMessage asking for the next retry in 2^64-1 ms",
    "big-ok": "control: a 900 KiB Output (under the limit) and End",
}

# where the fake's journal-mismatch text comes from: the TS SDK's (see the protocol notes)
MISMATCH_MESSAGE = (
    "Found a mismatch between the code paths taken during the previous execution and the "
    "paths taken during this execution.\nThis typically happens when some parts of the code "
    "are non-deterministic.\n- The mismatch happened while executing 'sleep' (index '1')\n"
    "- Difference:\n   type: Run != Sleep"
)

# types the random-protobuf mode picks from: commands and the SDK's control messages (an
# End or a Suspension may end the invocation: the test then sends another)
_FUZZ_TYPES = sorted(
    [t for t in pm.MESSAGE_TYPES if pm.is_command(t) and t != pm.InputCommandMessage.TYPE]
    + [
        pm.ProposeRunCompletionMessage.TYPE,
        pm.ErrorMessage.TYPE,
        pm.SuspensionMessage.TYPE,
        pm.AwaitingOnMessage.TYPE,
        pm.EndMessage.TYPE,
    ]
)
_FUZZ_TEXTS = ("", "Greeter", "greet", "Mal-stall", "run", "k", "é", "inv_1abc", "0" * 40)


@dataclass
class AttemptRecord:
    """One invocation attempt as the endpoint saw it."""

    at: float
    invocation_id: str  # Start.debug_id
    known_entries: int
    retry_count: int  # Start.retry_count_since_last_stored_entry
    journal_types: list[int]
    sent: list[tuple[int, bytes]] = field(default_factory=list)  # random-protobuf frames


def manifest(mode: str, *, initial_interval_ms: int = 50) -> bytes:
    """One service per mode; a fast retry policy, so a test sees many attempts."""
    return json.dumps(
        {
            "protocolMode": "BIDI_STREAM",
            "minProtocolVersion": 5,
            "maxProtocolVersion": 6,
            "services": [
                {
                    "name": service_name(mode),
                    "ty": "SERVICE",
                    "handlers": [
                        {
                            "name": "run",
                            "input": {"required": False, "contentType": "application/json"},
                            "output": {"contentType": "application/json"},
                        }
                    ],
                    "retryPolicyInitialInterval": initial_interval_ms,
                    "retryPolicyMaxInterval": initial_interval_ms,
                    "retryPolicyExponentiationFactor": 1.0,
                    "retryPolicyMaxAttempts": 1_000_000,
                    "retryPolicyOnMaxAttempts": "PAUSE",
                }
            ],
        }
    ).encode()


def service_name(mode: str) -> str:
    return f"Mal-{mode}"


def random_protobuf(rng: random.Random, depth: int = 0) -> bytes:
    """A well-formed protobuf message with random fields (varints, text, bytes, nested)."""
    out = bytearray()
    for _ in range(rng.randrange(0, 6)):
        number = rng.choice((1, 2, 3, 4, 5, 6, 11, 12, 14, 15, rng.randrange(1, 40)))
        kind = rng.randrange(4 if depth < 2 else 3)
        if kind == 0:
            bits = rng.choice((1, 7, 32, 63, 64))
            out += tag(number, VARINT) + encode_varint(rng.getrandbits(bits))
        elif kind == 1:
            text = rng.choice(_FUZZ_TEXTS).encode()
            out += length_delimited(tag(number, LENGTH_DELIMITED), text)
        elif kind == 2:
            blob = rng.randbytes(rng.randrange(0, 24))
            out += length_delimited(tag(number, LENGTH_DELIMITED), blob)
        else:
            nested = random_protobuf(rng, depth + 1)
            out += length_delimited(tag(number, LENGTH_DELIMITED), nested)
    return bytes(out)


_VARINT_KINDS = (pm.UINT, pm.OPT_UINT, pm.BOOL, pm.REPEATED_UINT)
_NESTED_KINDS = (pm.MESSAGE, pm.REPEATED_MESSAGE)


def random_message(rng: random.Random, cls: type[pm.Message], depth: int = 0) -> bytes:
    """Random values in the fields of ``cls``, each with its own wire type: a body that
    decodes, so what it means reaches the server's state machine."""
    out = bytearray()
    for number, _attr, kind, nested in cls.FIELDS:
        if rng.random() < 0.4:
            continue
        if kind in _VARINT_KINDS:
            bits = rng.choice((1, 3, 7, 32, 63, 64, 70))  # 70: past what a varint may hold
            out += tag(number, VARINT) + encode_varint(rng.getrandbits(bits))
            continue
        if kind in _NESTED_KINDS:
            payload = random_message(rng, nested, depth + 1) if depth < 3 else b""
        elif kind == pm.VALUE:
            payload = length_delimited(tag(1, LENGTH_DELIMITED), rng.choice((b'"x"', b"", b"{")))
        elif kind == pm.VOID:
            payload = b""
        elif rng.random() < 0.8:  # text (mostly valid UTF-8)
            payload = rng.choice(_FUZZ_TEXTS).encode()
        else:
            payload = rng.randbytes(rng.randrange(0, 24))
        out += length_delimited(tag(number, LENGTH_DELIMITED), payload)
    return bytes(out)


def fuzz_frames(seed: int) -> list[tuple[int, bytes]]:
    """1-3 frames of the random-protobuf mode: random bytes, random protobuf, or random
    values in the message's own fields (a third each)."""
    rng = random.Random(seed)
    frames = []
    for _ in range(rng.randrange(1, 4)):
        type_id = rng.choice(_FUZZ_TYPES)
        how = rng.randrange(3)
        if how == 0:
            body = rng.randbytes(rng.randrange(1, 64))
        elif how == 1:
            body = random_protobuf(rng)
        else:
            body = random_message(rng, pm.MESSAGE_TYPES[type_id])
        frames.append((type_id, body))
    return frames


def _output(value: bytes) -> bytes:
    return encode_frame(pm.OutputCommandMessage(value=value)) + encode_frame(pm.EndMessage())


_OK = _output(b'"ok"')


class _Stream:
    """One request/response exchange on a connection."""

    def __init__(self, conn: _Connection, stream_id: int, path: str, headers: dict[str, str]):
        self.conn = conn
        self.id = stream_id
        self.path = path
        self.headers = headers
        self.decoder = FrameDecoder(64 * MIB)
        self.frames: list[Any] = []
        self.start: pm.StartMessage | None = None
        self.outbox: deque[memoryview] = deque()
        self.end_pending = False
        self.closed = False  # reset, or ended by us
        self.acted = False
        self.request_ended = False

    @property
    def journal(self) -> list[Any]:
        return self.frames[1:]

    def respond(self, content_type: str | None = None) -> None:
        ct = content_type or self.headers.get("content-type", "")
        self.conn.h2.send_headers(
            self.id,
            [(":status", "200"), ("content-type", ct), ("x-restate-server", "malicious/1")],
        )
        self.conn.flush()

    def send(self, data: bytes) -> None:
        if data:
            self.outbox.append(memoryview(data))
        self.conn.pump(self)

    def end(self) -> None:
        self.end_pending = True
        self.conn.pump(self)

    def reset(self, code: int = h2.errors.ErrorCodes.INTERNAL_ERROR) -> None:
        self.closed = True
        self.outbox.clear()
        self.conn.streams.pop(self.id, None)
        with contextlib.suppress(h2.exceptions.H2Error):
            self.conn.h2.reset_stream(self.id, code)
        self.conn.flush()


class _Connection(asyncio.Protocol):
    def __init__(self, endpoint: MaliciousEndpoint, mode: str) -> None:
        self.endpoint = endpoint
        self.mode = mode
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.endpoint._transports.add(transport)  # type: ignore[arg-type]
        self.h2.initiate_connection()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.endpoint._transports.discard(self.transport)  # type: ignore[arg-type]
        for stream in self.streams.values():
            stream.closed = True
            stream.outbox.clear()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def cut(self) -> None:
        """Close the TCP connection once what is written is flushed (FIN, no GOAWAY)."""
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            self.cut()
            return
        for event in events:
            stream_id = int(getattr(event, "stream_id", 0) or 0)
            if isinstance(event, h2.events.RequestReceived):
                headers = {str(k): str(v) for k, v in event.headers or ()}
                stream = _Stream(self, stream_id, headers.get(":path", ""), headers)
                self.streams[stream_id] = stream
                if headers.get(":method") == "GET":
                    self._discover(stream)
            elif isinstance(event, h2.events.DataReceived):
                self._on_data(stream_id, event.data or b"", event.flow_controlled_length or 0)
            elif isinstance(event, h2.events.StreamEnded):
                ended = self.streams.get(stream_id)
                if ended is not None:
                    ended.request_ended = True
                    if ended.closed:  # both sides done: forget it
                        del self.streams[stream_id]
            elif isinstance(event, h2.events.StreamReset):
                gone = self.streams.pop(stream_id, None)
                if gone is not None:
                    gone.closed = True
                    gone.outbox.clear()
            elif isinstance(event, h2.events.WindowUpdated):
                for waiting in list(self.streams.values()):
                    self.pump(waiting)
        self.flush()

    def _discover(self, stream: _Stream) -> None:
        body = manifest(self.mode, initial_interval_ms=self.endpoint.initial_interval_ms)
        self.h2.send_headers(
            stream.id,
            [(":status", "200"), ("content-type", MANIFEST_CT), ("content-length", str(len(body)))],
        )
        stream.send(body)
        stream.end()

    def _on_data(self, stream_id: int, data: bytes, flow_controlled: int) -> None:
        with contextlib.suppress(h2.exceptions.H2Error):  # the stream was reset meanwhile
            self.h2.acknowledge_received_data(flow_controlled, stream_id)
        stream = self.streams.get(stream_id)
        if stream is None or stream.closed:
            return
        stream.frames.extend(stream.decoder.feed(data))
        if stream.start is None and stream.frames:
            stream.start = pm.decode_message(stream.frames[0].type_id, stream.frames[0].body)
        start = stream.start
        if stream.acted or start is None or len(stream.frames) < 1 + start.known_entries:
            return
        stream.acted = True
        self.endpoint._record(self.mode, stream)
        behaviour = _BEHAVIOURS[self.mode]
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            behaviour(self.endpoint, stream)
        )
        task.add_done_callback(self.endpoint._check)

    def pump(self, stream: _Stream) -> None:
        """Send what flow control allows; END_STREAM once the outbox is empty."""
        try:
            while stream.outbox and not stream.closed:
                window = min(
                    self.h2.local_flow_control_window(stream.id), self.h2.max_outbound_frame_size
                )
                if window <= 0:
                    break
                chunk = stream.outbox[0]
                n = min(window, len(chunk))
                self.h2.send_data(stream.id, bytes(chunk[:n]))
                if n == len(chunk):
                    stream.outbox.popleft()
                else:
                    stream.outbox[0] = chunk[n:]
            if not stream.outbox and stream.end_pending and not stream.closed:
                stream.closed = True
                self.h2.end_stream(stream.id)
                if stream.request_ended:
                    self.streams.pop(stream.id, None)
        except h2.exceptions.H2Error:  # the server reset or closed the stream meanwhile
            stream.closed = True
            stream.outbox.clear()
        self.flush()


# ---- the modes: what follows the journal ----------------------------------------------

Behaviour = Callable[["MaliciousEndpoint", _Stream], Coroutine[Any, Any, None]]


async def _random_bytes(ep: MaliciousEndpoint, s: _Stream) -> None:
    s.respond()
    s.send(os.urandom(4096))
    s.end()


async def _huge_header(ep: MaliciousEndpoint, s: _Stream) -> None:
    s.respond()
    header = pm.OutputCommandMessage.TYPE.to_bytes(2, "big") + bytes(2)
    s.send(header + HUGE_ANNOUNCED.to_bytes(4, "big") + bytes(1024))
    # the stream stays open: the server must give up by itself, at once


async def _over_limit(ep: MaliciousEndpoint, s: _Stream) -> None:
    s.respond()
    s.send(ep.over_limit_message())  # as fast as the server's flow-control window allows
    s.end()


async def _big_ok(ep: MaliciousEndpoint, s: _Stream) -> None:
    s.respond()
    s.send(ep.under_limit_message())
    s.end()


async def _unknown_type(ep: MaliciousEndpoint, s: _Stream) -> None:
    s.respond()
    s.send(encode_raw_frame(0xFC01, b"\x0a\x03abc") + _OK)
    s.end()


async def _start_from_sdk(ep: MaliciousEndpoint, s: _Stream) -> None:
    assert s.start is not None
    s.respond()
    start = pm.StartMessage(id=s.start.id, debug_id=s.start.debug_id, known_entries=1)
    s.send(encode_frame(start) + _OK)
    s.end()


async def _notification_from_sdk(ep: MaliciousEndpoint, s: _Stream) -> None:
    s.respond()
    note = pm.RunCompletionNotificationMessage(completion_id=1, value=b'"forged"')
    s.send(encode_frame(note) + _OK)
    s.end()


async def _rst_stream(ep: MaliciousEndpoint, s: _Stream) -> None:
    s.respond()
    s.reset(h2.errors.ErrorCodes.INTERNAL_ERROR)


async def _stall(ep: MaliciousEndpoint, s: _Stream) -> None:
    s.respond()  # and nothing more, whatever the server does with its side


# a whole message of which the cut modes send the first PARTIAL_BYTES
PARTIAL_FRAME = encode_frame(pm.OutputCommandMessage(value=b'"' + b"x" * 100 + b'"'))
PARTIAL_BYTES = 20


def _partial_output() -> bytes:
    return PARTIAL_FRAME[:PARTIAL_BYTES]


async def _cut_mid_message(ep: MaliciousEndpoint, s: _Stream) -> None:
    s.respond()
    s.send(_partial_output())
    s.conn.cut()


async def _end_mid_message(ep: MaliciousEndpoint, s: _Stream) -> None:
    s.respond()
    s.send(_partial_output())
    s.end()


async def _wrong_version(ep: MaliciousEndpoint, s: _Stream) -> None:
    s.respond("application/vnd.restate.invocation.v3")
    s.send(_OK)
    s.end()


async def _journal_mismatch(ep: MaliciousEndpoint, s: _Stream) -> None:
    """The handler was ``run('step1')``; the code deployed since calls ``sleep`` there."""
    s.respond()
    commands = [f for f in s.journal if pm.is_command(f.type_id)]
    if len(commands) < 2:  # first attempt: the old code, which then fails transiently
        run = pm.RunCommandMessage(result_completion_id=1, name="step1")
        done = pm.ProposeRunCompletionMessage(result_completion_id=1, value=b'"done"')
        error = pm.ErrorMessage(code=500, message="transient failure after step1")
        s.send(encode_frame(run) + encode_frame(done) + encode_frame(error))
    elif commands[1].type_id != pm.SleepCommandMessage.TYPE:
        error = pm.ErrorMessage(
            code=570,
            message=MISMATCH_MESSAGE,
            related_command_index=1,
            related_command_name="",
            related_command_type=pm.SleepCommandMessage.TYPE,
        )
        s.send(encode_frame(error))
    else:  # pragma: no cover - the journal holds a Run there
        s.send(_OK)
    s.end()


async def _random_protobuf(ep: MaliciousEndpoint, s: _Stream) -> None:
    s.respond()
    frames = fuzz_frames(ep.seed * 1_000_003 + ep.attempts(s.conn.mode))
    ep.records[s.conn.mode][-1].sent = frames
    s.send(b"".join(encode_raw_frame(t, body) for t, body in frames))
    s.end()


async def _far_retry_delay(ep: MaliciousEndpoint, s: _Stream) -> None:
    s.respond()
    error = pm.ErrorMessage(code=500, message="come back later", next_retry_delay=2**64 - 1)
    s.send(encode_frame(error))
    s.end()


_BEHAVIOURS: dict[str, Behaviour] = {
    "far-retry-delay": _far_retry_delay,
    "random-bytes": _random_bytes,
    "huge-header": _huge_header,
    "over-limit": _over_limit,
    "unknown-type": _unknown_type,
    "start-from-sdk": _start_from_sdk,
    "notification-from-sdk": _notification_from_sdk,
    "rst-stream": _rst_stream,
    "stall": _stall,
    "cut-mid-message": _cut_mid_message,
    "end-mid-message": _end_mid_message,
    "wrong-version": _wrong_version,
    "journal-mismatch": _journal_mismatch,
    "random-protobuf": _random_protobuf,
    "big-ok": _big_ok,
}
assert set(_BEHAVIOURS) == set(MODES)


class MaliciousEndpoint:
    """The fake endpoint: one loopback port per mode, served from a background thread."""

    def __init__(
        self,
        modes: tuple[str, ...] | None = None,
        *,
        seed: int = 12,
        initial_interval_ms: int = 50,
    ) -> None:
        self.modes = modes or tuple(MODES)
        self.seed = seed
        self.initial_interval_ms = initial_interval_ms
        self.ports: dict[str, int] = {}
        self.records: dict[str, list[AttemptRecord]] = {mode: [] for mode in self.modes}
        self.errors: list[str] = []  # exceptions raised by the modes (bugs of the fake)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._transports: set[asyncio.Transport] = set()
        self._over_limit: bytes | None = None
        self._under_limit: bytes | None = None

    # ---- what the tests use

    def url(self, mode: str) -> str:
        return f"http://{LOOPBACK}:{self.ports[mode]}"

    def attempts(self, mode: str) -> int:
        with self._lock:
            return len(self.records[mode])

    def last(self, mode: str) -> AttemptRecord | None:
        with self._lock:
            records = self.records[mode]
            return records[-1] if records else None

    def over_limit_message(self) -> bytes:
        """A valid 16 MiB Output (and End): accepted if the limit were the default."""
        if self._over_limit is None:
            self._over_limit = _output(b'"' + b"x" * (OVER_LIMIT_BYTES - 2) + b'"')
        return self._over_limit

    def under_limit_message(self) -> bytes:
        if self._under_limit is None:
            self._under_limit = _output(b'"' + b"y" * (UNDER_LIMIT_BYTES - 2) + b'"')
        return self._under_limit

    # ---- lifecycle

    def start(self, timeout: float = 10.0) -> MaliciousEndpoint:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._listen())
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="malicious-endpoint", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the malicious endpoint did not start")
        if failure:
            raise failure[0]
        return self

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        for mode in self.modes:
            server = await loop.create_server(partial(_Connection, self, mode), LOOPBACK, 0)
            self._servers.append(server)
            self.ports[mode] = server.sockets[0].getsockname()[1]

    def stop(self, timeout: float = 5.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return

        def shutdown() -> None:
            for server in self._servers:
                server.close()
            for transport in list(self._transports):
                transport.abort()
            loop.stop()

        loop.call_soon_threadsafe(shutdown)
        thread.join(timeout)

    def _check(self, task: asyncio.Task[None]) -> None:
        """A mode that raised is a bug of the fake: kept for the tests to assert on."""
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(repr(task.exception()))

    def _record(self, mode: str, stream: _Stream) -> None:
        start = stream.start
        assert start is not None
        record = AttemptRecord(
            at=time.time(),
            invocation_id=start.debug_id,
            known_entries=start.known_entries,
            retry_count=start.retry_count_since_last_stored_entry,
            journal_types=[f.type_id for f in stream.journal],
        )
        with self._lock:
            self.records[mode].append(record)
