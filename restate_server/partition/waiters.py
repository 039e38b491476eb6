"""Callers waiting in this process for what a partition committed.

Each waiting HTTP request gets a random 63-bit id that travels inside the
command (and may be stored as a response sink); the partition's reply action
resolves the future registered under that id. Ids are random so that sinks
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
        self._futures: dict[int, asyncio.Future[Answer] | Callable[[Answer], None]] = {}
        self._random = random.Random()

    def _new_id(self) -> int:
        request_id = self._random.getrandbits(63)
        while request_id in self._futures:
            request_id = self._random.getrandbits(63)
        return request_id

    def register(self) -> tuple[int, asyncio.Future[Answer]]:
        request_id = self._new_id()
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._futures[request_id] = future
        return request_id, future

    def register_callback(self, callback: Callable[[Answer], None]) -> int:
        """The answer goes straight to ``callback``, in the turn that performs it."""
        request_id = self._new_id()
        self._futures[request_id] = callback
        return request_id

    def forget(self, request_id: int) -> None:
        self._futures.pop(request_id, None)

    def perform(self, action: Action) -> None:
        assert isinstance(action, (IngressReply, IngressSendAck, CommandReply))
        waiter = self._futures.pop(action.request_id, None)
        if waiter is None:
            return
        if isinstance(waiter, asyncio.Future):
            if not waiter.done():
                waiter.set_result(action)
        else:
            try:
                waiter(action)
            except Exception:  # one bad answer must not stop the other actions
                log.exception("answering request %s failed", action.request_id)

    def __len__(self) -> int:
        return len(self._futures)
