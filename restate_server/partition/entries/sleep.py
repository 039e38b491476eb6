"""SleepCommand: journal it and arm a durable timer for its absolute wake-up time."""

from __future__ import annotations

from restate_server.partition.actions import RegisterTimer
from restate_server.partition.commands import JournalCommand
from restate_server.partition.context import ApplyContext
from restate_server.storage import keys
from restate_server.storage.records import InvocationStatus, SleepTimer, encode


def apply(ctx: ApplyContext, status: InvocationStatus, command: JournalCommand) -> None:
    message = command.message
    ctx.append_entry(command.invocation_id, status, command.type_id, command.body)
    timer = SleepTimer(command.invocation_id, message.result_completion_id)
    due = message.wake_up_time
    timer_key = keys.timer(ctx.partition_id, due, ctx.next_sequence("timer"))
    ctx.txn.put(timer_key, encode(timer))
    ctx.emit(RegisterTimer(timer_key, due, timer))
