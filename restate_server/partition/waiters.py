"""Callers waiting in this process for what a partition committed.

Each waiting HTTP request gets a random 63-bit id that travels inside the
command (and may be stored as a response sink); the partition's reply action
resolves the future registered under that id. Ids are random so that sinks
left in storage by an earlier process never match a new request.
"""

from __future__ import annotations

import asyncio
import random

from restate_server.partition.actions import Action, CommandReply, IngressReply, IngressSendAck

Answer = IngressReply | IngressSendAck | CommandReply


class Waiters:
    def __init__(self) -> None:
        self._futures: dict[int, asyncio.Future[Answer]] = {}
        self._random = random.Random()

    def register(self) -> tuple[int, asyncio.Future[Answer]]:
        request_id = self._random.getrandbits(63)
        while request_id in self._futures:
            request_id = self._random.getrandbits(63)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._futures[request_id] = future
        return request_id, future

    def forget(self, request_id: int) -> None:
        self._futures.pop(request_id, None)

    def perform(self, action: Action) -> None:
        assert isinstance(action, (IngressReply, IngressSendAck, CommandReply))
        future = self._futures.pop(action.request_id, None)
        if future is not None and not future.done():
            future.set_result(action)

    def __len__(self) -> int:
        return len(self._futures)
