"""OutputCommand: remember the result; End makes it the invocation's outcome."""

from __future__ import annotations

from restate_server.partition.commands import JournalCommand
from restate_server.partition.context import ApplyContext
from restate_server.partition.journal_messages import outcome_failure_from_pm
from restate_server.storage.records import InvocationStatus, Outcome


def apply(ctx: ApplyContext, status: InvocationStatus, command: JournalCommand) -> None:
    message = command.message
    ctx.append_entry(command.invocation_id, status, command.type_id, command.body)
    failure = outcome_failure_from_pm(message.failure)
    if failure is not None:
        status.output = Outcome(failure=failure)
    else:
        status.output = Outcome(value=message.value if message.value is not None else b"")
