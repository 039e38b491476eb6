"""Callers waiting in this process for what a partition committed.

Each waiting HTTP request gets a random 63-bit id that travels inside the
command (and may be stored as a response sink); the partition's reply action
calls back (or resolves the future of) whoever registered that id. Ids are random so that sinks
left in storage by an earlier process never match a new request.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from restate_server.partition.actions import Action, CommandReply, IngressReply, IngressSendAck

log = logging.getLogger(__name__)

Answer = IngressReply | IngressSendAck | CommandReply


class Waiters:
    def __init__(self) -> None:
        # callers waiting in this process
        self._callbacks: dict[int, Callable[[Answer], None]] = {}
        # callers of other processes, whose commands came over the fabric
        self._forwards: dict[int, Callable[[Answer], None]] = {}
        self._random = random.Random()

    def register_callback(self, callback: Callable[[Answer], None]) -> int:
        """The answer goes straight to ``callback``, in the turn that performs it."""
        request_id = self._random.getrandbits(63)
        while request_id in self._callbacks or request_id in self._forwards:
            request_id = self._random.getrandbits(63)
        self._callbacks[request_id] = callback
        return request_id

    def register_forward(self, request_id: int, callback: Callable[[Answer], None]) -> None:
        """A waiter of another process (its id came with a command over the fabric):
        the answer goes to ``callback``, which sends it back. A later forward of the same
        id (resent over a new connection) replaces it. A command can also come back to
        the process its caller waits in (routed on while its partition moved between
        nodes): that caller still gets the answer itself, not a forward."""
        self._forwards[request_id] = callback

    def register(self) -> tuple[int, asyncio.Future[Answer]]:
        """The answer as a future, for callers that await it."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        request_id = self.register_callback(
            lambda answer: future.done() or future.set_result(answer)
        )
        return request_id, future

    def forget(self, request_id: int) -> None:
        self._callbacks.pop(request_id, None)
        self._forwards.pop(request_id, None)

    def perform(self, action: Action) -> None:
        assert isinstance(action, (IngressReply, IngressSendAck, CommandReply))
        forward = self._forwards.pop(action.request_id, None)
        callback = self._callbacks.pop(action.request_id, forward)
        if callback is None:
            return
        try:
            callback(action)
        except Exception:  # one bad answer must not stop the other actions
            log.exception("answering request %s failed", action.request_id)

    def __len__(self) -> int:
        return len(self._callbacks) + len(self._forwards)
