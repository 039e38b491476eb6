"""Invocation operations for the admin API, each one a command for the owning partition.

The answer comes back after the partition committed the change; the result
strings of ``CommandReply`` are the values of the admin API's outcome enum.
"""

from __future__ import annotations

from restate_server.admin.invocations import InvocationOutcome
from restate_server.partition.actions import CommandReply
from restate_server.partition.commands import (
    CancelInvocation,
    KillInvocation,
    PauseInvocation,
    PurgeInvocation,
    ResumeInvocation,
)
from restate_server.partition.router import Partitions
from restate_server.partition.waiters import Waiters
from restate_server.protocol.ids import InvocationId

Operation = CancelInvocation | KillInvocation | PurgeInvocation | PauseInvocation | ResumeInvocation


class InvocationOperations:
    def __init__(self, partitions: Partitions, waiters: Waiters) -> None:
        self._partitions = partitions
        self._waiters = waiters

    async def cancel(self, invocation_id: str) -> InvocationOutcome:
        return await self._run(CancelInvocation(_raw(invocation_id)))

    async def kill(self, invocation_id: str) -> InvocationOutcome:
        return await self._run(KillInvocation(_raw(invocation_id)))

    async def purge(self, invocation_id: str) -> InvocationOutcome:
        return await self._run(PurgeInvocation(_raw(invocation_id)))

    async def pause(self, invocation_id: str) -> InvocationOutcome:
        return await self._run(PauseInvocation(_raw(invocation_id)))

    async def resume(self, invocation_id: str, deployment: str | None = None) -> InvocationOutcome:
        return await self._run(ResumeInvocation(_raw(invocation_id)))

    async def _run(self, command: Operation) -> InvocationOutcome:
        request_id, future = self._waiters.register()
        command.request_id = request_id
        self._partitions.for_invocation(command.invocation_id).submit(command)
        try:
            answer = await future
        except BaseException:
            self._waiters.forget(request_id)
            raise
        assert isinstance(answer, CommandReply)
        return InvocationOutcome(answer.result)


def _raw(invocation_id: str) -> bytes:
    return InvocationId.from_str(invocation_id).to_bytes()
