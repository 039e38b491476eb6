"""A link to another process's fabric endpoint: submits that survive its restarts.

Every submit is kept until the receiver has answered it (its waiter's answer, or
``Done`` once committed). When the connection breaks (the receiving worker died) the
link reconnects and sends again, in the original order, everything not yet answered.
Commands are made safe to repeat by their receivers: an ingress invocation carries an
idempotency key or a workflow key (its id is derived from it), an outbox entry its
sequence number (deduplicated by the target partition), attaches and admin operations
are idempotent. So a hand-over is at least once on the wire and exactly once in effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence

from restate_server.partition.commands import Command, Invoke, as_repeat
from restate_server.partition.waiters import Waiters
from restate_server.storage.records import IngressSink
from restate_server.workers.channel import Channel
from restate_server.workers.messages import Answer, Call, Done, Message, Result, Submit

log = logging.getLogger(__name__)

RECONNECT_INITIAL_S = 0.01
RECONNECT_MAX_S = 0.5

OnDone = Callable[[], None] | None


def request_id_of(command: Command) -> int | None:
    """The waiter a command's answer goes to (set by the ingress or the admin API)."""
    if isinstance(command, Invoke):
        request = command.request
        if isinstance(request.sink, IngressSink):
            return request.sink.request_id
        return request.send_ack_request_id
    return getattr(command, "request_id", None)


class PeerLink:
    """The sending side of the fabric towards one peer (``address``: a Unix socket)."""

    def __init__(
        self,
        name: str,
        address: str,
        waiters: Waiters,
        on_connect: Callable[[PeerLink], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.address = address
        self._waiters = waiters
        self._on_connect = on_connect
        self._channel: Channel | None = None
        # submits not answered yet, by sequence (insertion order = send order)
        self._unanswered: dict[int, tuple[Submit, OnDone]] = {}
        self._by_request: dict[int, int] = {}
        self._calls: dict[int, asyncio.Future[bytes]] = {}
        self._sequence = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        # set once a new connection has been set up and everything unanswered resent:
        # until then new submits wait in ``_unanswered`` too, so the order holds
        self._ready = False
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._ready and self._channel is not None and self._channel.open

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._keep_connected(), name=f"fabric-link-{self.name}"
        )

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._channel is not None:
            self._channel.close()
        self._fail_calls(ConnectionError(f"link to {self.name} closed"))

    async def wait_connected(self) -> None:
        await self._connected.wait()

    # ---- sending

    def submit(self, partition_id: int, command: Command, on_done: OnDone = None) -> None:
        sequence = next(self._sequence)
        request_id = request_id_of(command)
        # settled by the answer when there is a waiter; by Done otherwise
        done = sequence if on_done is not None or request_id is None else None
        message = Submit(partition_id, command, request_id, done)
        self._unanswered[sequence] = (message, on_done)
        if request_id is not None:
            self._by_request[request_id] = sequence
        if self._ready:
            channel = self._channel
            if channel is not None and channel.open:
                channel.send(message)

    def take_unanswered(self, partition_id: int) -> list[tuple[Command, OnDone]]:
        """Remove and return, in order, the submits for ``partition_id`` not answered
        yet: its leader moved, and they go to the new one instead (cluster mode)."""
        taken: list[tuple[Command, OnDone]] = []
        for sequence, (message, on_done) in list(self._unanswered.items()):
            if message.partition_id != partition_id:
                continue
            del self._unanswered[sequence]
            if message.request_id is not None:
                self._by_request.pop(message.request_id, None)
            as_repeat(message.command)  # it may have reached the old leader
            taken.append((message.command, on_done))
        return taken

    def call(self, method: str, payload: bytes = b"") -> asyncio.Future[bytes]:
        """Ask the peer process itself; fails at once when it is not connected."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        channel = self._channel
        if channel is None or not channel.open:
            future.set_exception(ConnectionError(f"{self.name} is not connected"))
            return future
        token = next(self._sequence)
        self._calls[token] = future
        channel.send(Call(token, method, payload))
        return future

    # ---- receiving (ChannelHandler)

    def received(self, channel: Channel, message: Message) -> None:
        if isinstance(message, Answer):
            answer = message.answer
            sequence = self._by_request.pop(answer.request_id, None)
            if sequence is not None:
                self._settle(sequence, run_done=False)
            self._waiters.perform(answer)
        elif isinstance(message, Done):
            self._settle(message.token, run_done=True)
        elif isinstance(message, Result):
            future = self._calls.pop(message.token, None)
            if future is None or future.done():
                return
            if message.error is not None:
                future.set_exception(RemoteError(message.error))
            else:
                future.set_result(message.payload)
        else:
            log.warning("fabric: %s got an unexpected %s", self.name, type(message).__name__)

    def _settle(self, sequence: int, run_done: bool) -> None:
        entry = self._unanswered.pop(sequence, None)
        if entry is None:
            return
        message, on_done = entry
        if message.request_id is not None:
            self._by_request.pop(message.request_id, None)
        if on_done is not None:
            on_done()

    def closed(self, channel: Channel) -> None:
        if self._channel is channel:
            self._channel = None
            self._ready = False
            self._connected.clear()
            self._lost.set()
        self._fail_calls(ConnectionError(f"{self.name} went away"))

    def _fail_calls(self, error: Exception) -> None:
        calls, self._calls = self._calls, {}
        for future in calls.values():
            if not future.done():
                future.set_exception(error)

    # ---- connection upkeep

    async def _keep_connected(self) -> None:
        loop = asyncio.get_running_loop()
        delay = RECONNECT_INITIAL_S
        while not self._closing:
            if self._channel is not None:
                await self._lost.wait()
                continue
            try:
                if is_tcp_address(self.address):
                    host, port = self.address.rsplit(":", 1)
                    _, channel = await asyncio.wait_for(
                        loop.create_connection(lambda: Channel(self), host, int(port)),
                        RECONNECT_MAX_S * 4,
                    )
                else:
                    _, channel = await loop.create_unix_connection(
                        lambda: Channel(self), sock=connect_unix(self.address)
                    )
            except (OSError, TimeoutError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            delay = RECONNECT_INITIAL_S
            self._lost.clear()
            self._channel = channel
            if self._on_connect is not None:
                try:
                    await self._on_connect(self)
                except Exception as exc:
                    log.warning("fabric: setting up %s failed: %s", self.name, exc)
                    channel.close()
                    continue
            if not channel.open:
                continue
            self._resend(channel)
            self._ready = True
            self._connected.set()

    def _resend(self, channel: Channel) -> None:
        for message, _ in list(self._unanswered.values()):
            as_repeat(message.command)
            channel.send(message)


def is_tcp_address(address: str) -> bool:
    """``host:port`` (nodes of a cluster) rather than a Unix socket (worker processes:
    a path, or a name in Linux's abstract namespace starting with NUL)."""
    return not address.startswith(("\0", "/", ".")) and ":" in address


def connect_unix(address: str) -> socket.socket:
    """A connected Unix socket. Connected here rather than by the loop: uvloop refuses
    addresses in Linux's abstract namespace (a leading NUL); a local connect is
    immediate, or refused at once when nobody listens."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def call_connected(
    links: Sequence[PeerLink], method: str, timeout_s: float, payload: bytes = b""
) -> list[tuple[PeerLink, bytes | BaseException]]:
    """``method`` on every connected link at once: each link's answer, or why it has
    none (a worker that is restarting is not asked)."""
    asked = [link for link in links if link.connected]
    answers = await asyncio.gather(
        *(asyncio.wait_for(link.call(method, payload), timeout_s) for link in asked),
        return_exceptions=True,
    )
    return list(zip(asked, answers, strict=True))


class RemoteError(Exception):
    """A call the peer could not serve (its message)."""


class RemotePartition:
    """A partition of another worker, as the routers see it: ``submit`` goes over the link."""

    __slots__ = ("_link", "partition_id")

    def __init__(self, link: PeerLink, partition_id: int) -> None:
        self._link = link
        self.partition_id = partition_id

    def submit(self, command: Command, on_durable: OnDone = None) -> None:
        self._link.submit(self.partition_id, command, on_durable)
