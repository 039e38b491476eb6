"""RestartAsNewInvocation: run a completed invocation again, as a new invocation.

The real server checks in its RPC handler, then in its state machine; here both happen
in this one command, in the same order, so each failure gets the same answer:

1. the original must be completed (else ``not_found``, ``not_started``, ``still_running``);
2. its input must still be stored (``input_unavailable``: journal purged or not kept);
3. workflows cannot be restarted, nor, from a prefix, invocations pinned to a protocol
   older than V6, whose ``ctx.rand`` would not replay (``unsupported``);
4. the deployment to pin ("keep", "latest" or an id) must exist and speak the pinned
   protocol version (``deployment_not_found``, ``incompatible_deployment``);
5. every command in entries 1..=from needs its completions somewhere in the journal
   (``journal_copy_range_invalid``);
6. ``from`` must lie inside the journal (``journal_index_out_of_range``).

The new invocation keeps the partition key, target, input, headers, retention and random
seed; it has no idempotency key and nobody waits for it (attach to it by id). Its journal
is entries 0..=from plus the later completions of the commands among them; the SDK
replays that prefix, so commands in it run no second time. It is admitted like any new
invocation: behind the invocation holding its key, if any.
"""

from __future__ import annotations

from typing import Any

from restate_server.partition.actions import CommandReply
from restate_server.partition.commands import RestartAsNewInvocation
from restate_server.partition.context import ApplyContext
from restate_server.partition.journal_messages import outcome_failure_from_pm
from restate_server.partition.lifecycle.invoke import admit
from restate_server.protocol import messages as pm
from restate_server.storage import keys
from restate_server.storage.records import (
    COMPLETED,
    INBOXED,
    SCHEDULED,
    InvocationStatus,
    JournalEntry,
    Outcome,
    decode_journal_entry,
)

# the first protocol whose journals may be restarted from a prefix (ctx.rand changed in V6)
_PREFIX_MIN_PROTOCOL = 6
_U32_MASK = 0xFFFF_FFFF

_RESULT_COMPLETION_COMMANDS = frozenset(
    cls.TYPE
    for cls in (
        pm.GetLazyStateCommandMessage,
        pm.GetLazyStateKeysCommandMessage,
        pm.GetPromiseCommandMessage,
        pm.PeekPromiseCommandMessage,
        pm.CompletePromiseCommandMessage,
        pm.SleepCommandMessage,
        pm.RunCommandMessage,
        pm.AttachInvocationCommandMessage,
        pm.GetInvocationOutputCommandMessage,
    )
)


class _Refused(Exception):
    def __init__(self, result: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(result)
        self.result = result
        self.details = details


def restart_as_new(ctx: ApplyContext, command: RestartAsNewInvocation) -> None:
    try:
        _restart(ctx, command)
    except _Refused as refused:
        if command.request_id is not None:
            ctx.emit(CommandReply(command.request_id, refused.result, details=refused.details))
        return
    if command.request_id is not None:
        ctx.emit(CommandReply(command.request_id, "done", invocation_id=command.new_invocation_id))


def _restart(ctx: ApplyContext, command: RestartAsNewInvocation) -> None:
    old_id = command.invocation_id
    old = ctx.get_status(old_id)
    if old is None:
        raise _Refused("not_found")
    if old.status in (SCHEDULED, INBOXED):
        raise _Refused("not_started")
    if old.status != COMPLETED:
        raise _Refused("still_running")
    journal = _read_journal(ctx, old_id)
    if 0 not in journal:
        raise _Refused("input_unavailable")
    prefix_end = command.copy_prefix_up_to
    if old.target.service_ty == "workflow":
        raise _Refused("unsupported")
    if prefix_end > 0 and (old.protocol_version or 0) < _PREFIX_MIN_PROTOCOL:
        raise _Refused("unsupported")
    deployment_id = _deployment_to_pin(ctx, command.deployment, old)
    _check_copy_range(journal, prefix_end)
    if prefix_end >= old.journal_length:
        raise _Refused("journal_index_out_of_range")

    new_id = command.new_invocation_id
    status = InvocationStatus(
        status=SCHEDULED,
        target=old.target,
        created_at=ctx.now,
        modified_at=ctx.now,
        random_seed=old.random_seed,
        invoked_by="restart_as_new",
        restarted_from=old_id,
        completion_retention_ms=old.completion_retention_ms,
        journal_retention_ms=old.journal_retention_ms,
    )
    if old.deployment_id is not None:
        status.deployment_id = deployment_id or old.deployment_id
        status.protocol_version = old.protocol_version
    copied = _copy_prefix(ctx, new_id, status, journal, prefix_end, old.journal_length)
    admit(ctx, new_id, status, copied)


def _read_journal(ctx: ApplyContext, invocation_id: bytes) -> dict[int, JournalEntry]:
    return {
        keys.journal_index_of(key): decode_journal_entry(raw)
        for key, raw in ctx.txn.scan_prefix(keys.journal_prefix(invocation_id))
    }


def _deployment_to_pin(ctx: ApplyContext, choice: str, old: InvocationStatus) -> str | None:
    """The deployment id replacing the pinned one; None keeps the pin as it is."""
    schema = ctx.schema
    if choice == "keep" or schema is None:
        return None
    if choice == "latest":
        deployment = schema.latest_deployment_for(old.target.service)
    else:
        deployment = schema.get_deployment(choice)
    if deployment is None:
        raise _Refused("deployment_not_found")
    version = old.protocol_version
    low, high = deployment.min_protocol_version, deployment.max_protocol_version
    if version is not None and not low <= version <= high:
        raise _Refused(
            "incompatible_deployment",
            {
                "pinned_protocol_version": version,
                "deployment_id": deployment.id,
                "min_protocol_version": low,
                "max_protocol_version": high,
            },
        )
    return str(deployment.id)


def _check_copy_range(journal: dict[int, JournalEntry], prefix_end: int) -> None:
    """Every command in 1..=prefix_end must have its completions in the journal."""
    present = {
        completion_id
        for entry in journal.values()
        if (completion_id := _notification_ids(entry)[0]) is not None
    }
    # u32 arithmetic as in the real server: from = u32::MAX wraps this range to nothing
    for index in range(1, (prefix_end + 1) & _U32_MASK):
        entry = journal.get(index)
        if entry is None or not present.issuperset(_related_completions(entry)):
            raise _Refused("journal_copy_range_invalid")


def _copy_prefix(
    ctx: ApplyContext,
    new_id: bytes,
    status: InvocationStatus,
    journal: dict[int, JournalEntry],
    prefix_end: int,
    length: int,
) -> list[JournalEntry]:
    copied: list[JournalEntry] = []
    missing: set[int] = set()

    def copy(entry: JournalEntry) -> None:
        ctx.append_entry(new_id, status, entry.type_id, entry.body)
        copied.append(JournalEntry(entry.type_id, entry.body, ctx.now))
        if entry.type_id == pm.OutputCommandMessage.TYPE:
            # a copied Output is the result at End, as if this invocation had written it
            status.output = _outcome_of(pm.decode_message(entry.type_id, entry.body))
        completion_id, signal_id, signal_name = _notification_ids(entry)
        if completion_id is not None:
            status.completion_ids.append(completion_id)
            missing.discard(completion_id)
        if signal_id is not None:
            status.signal_ids.append(signal_id)
        if signal_name is not None:
            status.signal_names.append(signal_name)

    for index in range(prefix_end + 1):
        entry = journal.get(index)
        if entry is None:
            break
        missing.update(_related_completions(entry))
        copy(entry)
    for index in range(prefix_end + 1, length):
        if not missing:
            break
        entry = journal.get(index)
        if entry is not None and _notification_ids(entry)[0] in missing:
            copy(entry)
    return copied


def _outcome_of(output: pm.OutputCommandMessage) -> Outcome:
    failure = outcome_failure_from_pm(output.failure)
    if failure is not None:
        return Outcome(failure=failure)
    return Outcome(value=output.value if output.value is not None else b"")


def _related_completions(entry: JournalEntry) -> list[int]:
    """The completion ids a command waits for (the real server's ``related_completion_ids``)."""
    type_id = entry.type_id
    if type_id == pm.CallCommandMessage.TYPE:
        call = pm.decode_message(type_id, entry.body)
        return [call.invocation_id_notification_idx, call.result_completion_id]
    if type_id == pm.OneWayCallCommandMessage.TYPE:
        return [pm.decode_message(type_id, entry.body).invocation_id_notification_idx]
    if type_id in _RESULT_COMPLETION_COMMANDS:
        return [pm.decode_message(type_id, entry.body).result_completion_id]
    return []


def _notification_ids(entry: JournalEntry) -> tuple[int | None, int | None, str | None]:
    """(completion id, signal id, signal name) of a notification; all None otherwise."""
    if not pm.is_notification(entry.type_id):
        return None, None, None
    message = pm.decode_message(entry.type_id, entry.body)
    return message.completion_id, message.signal_id, message.signal_name
