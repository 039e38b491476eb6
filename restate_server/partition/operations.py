"""Invocation operations for the admin API (cancel, kill, purge), through the partition."""

from __future__ import annotations

from restate_server.partition.actions import CommandReply
from restate_server.partition.commands import CancelInvocation, KillInvocation, PurgeInvocation
from restate_server.partition.router import Partitions
from restate_server.partition.waiters import Waiters


class InvocationOperations:
    """Each operation is a command for the owning partition; the answer comes after commit.

    Results: ``"accepted"`` / ``"done"`` on success, ``"not_found"``, ``"completed"``
    (cancel/kill of a finished invocation), ``"not_completed"`` (purge of a running one).
    """

    def __init__(self, partitions: Partitions, waiters: Waiters) -> None:
        self._partitions = partitions
        self._waiters = waiters

    async def cancel(self, invocation_id: bytes) -> str:
        return await self._run(invocation_id, CancelInvocation(invocation_id))

    async def kill(self, invocation_id: bytes) -> str:
        return await self._run(invocation_id, KillInvocation(invocation_id))

    async def purge(self, invocation_id: bytes) -> str:
        return await self._run(invocation_id, PurgeInvocation(invocation_id))

    async def _run(
        self, invocation_id: bytes, command: CancelInvocation | KillInvocation | PurgeInvocation
    ) -> str:
        request_id, future = self._waiters.register()
        command.request_id = request_id
        self._partitions.for_invocation(invocation_id).submit(command)
        try:
            answer = await future
        except BaseException:
            self._waiters.forget(request_id)
            raise
        assert isinstance(answer, CommandReply)
        return answer.result
