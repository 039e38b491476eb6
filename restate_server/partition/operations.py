"""Invocation and state operations for the admin API, each one a command for the owning partition.

The answer comes back after the partition committed the change; the result
strings of ``CommandReply`` are the values of the admin API's outcome enum.
"""

from __future__ import annotations

from restate_server.admin.invocations import InvocationOutcome, RestartAsNewResult
from restate_server.partition.actions import CommandReply
from restate_server.partition.commands import (
    CancelInvocation,
    KillInvocation,
    PatchState,
    PauseInvocation,
    PurgeInvocation,
    PurgeJournal,
    RestartAsNewInvocation,
    ResumeInvocation,
)
from restate_server.partition.processor import PartitionProcessor
from restate_server.partition.router import Partitions
from restate_server.partition.waiters import Waiters
from restate_server.protocol.ids import (
    InvocationId,
    invocation_id_str,
    new_invocation_id,
    partition_key_for_key,
)

Operation = (
    CancelInvocation
    | KillInvocation
    | PurgeInvocation
    | PurgeJournal
    | PauseInvocation
    | ResumeInvocation
    | RestartAsNewInvocation
)


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

    async def purge_journal(self, invocation_id: str) -> InvocationOutcome:
        return await self._run(PurgeJournal(_raw(invocation_id)))

    async def pause(self, invocation_id: str) -> InvocationOutcome:
        return await self._run(PauseInvocation(_raw(invocation_id)))

    async def resume(self, invocation_id: str, deployment: str | None = None) -> InvocationOutcome:
        return await self._run(ResumeInvocation(_raw(invocation_id)))

    async def restart_as_new(
        self, invocation_id: str, copy_prefix_up_to: int = 0, deployment: str = "latest"
    ) -> RestartAsNewResult:
        """``deployment``: "keep", "latest" or a deployment id (checked by the caller)."""
        old = InvocationId.from_str(invocation_id)
        # the new id shares the partition key (and so the partition) of the original
        new = new_invocation_id(old.partition_key).to_bytes()
        command = RestartAsNewInvocation(old.to_bytes(), new, copy_prefix_up_to, deployment)
        reply = await self._ask(self._partitions.for_invocation(command.invocation_id), command)
        created = None if reply.invocation_id is None else invocation_id_str(reply.invocation_id)
        return RestartAsNewResult(InvocationOutcome(reply.result), created, reply.details)

    async def modify_state(
        self, service: str, key: str, new_state: dict[str, bytes], version: str | None
    ) -> None:
        """Replace the state of ``service``/``key``; returns once the partition committed it."""
        partition_key = partition_key_for_key(service, key)
        entries = sorted((name.encode(), value) for name, value in new_state.items())
        command = PatchState(partition_key, service, key, entries, version)
        await self._ask(self._partitions.for_partition_key(partition_key), command)

    async def _run(self, command: Operation) -> InvocationOutcome:
        reply = await self._ask(self._partitions.for_invocation(command.invocation_id), command)
        return InvocationOutcome(reply.result)

    async def _ask(
        self, partition: PartitionProcessor, command: Operation | PatchState
    ) -> CommandReply:
        request_id, future = self._waiters.register()
        command.request_id = request_id
        partition.submit(command)
        try:
            answer = await future
        except BaseException:
            self._waiters.forget(request_id)
            raise
        assert isinstance(answer, CommandReply)
        return answer


def _raw(invocation_id: str) -> bytes:
    return InvocationId.from_str(invocation_id).to_bytes()
