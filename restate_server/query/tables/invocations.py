"""``sys_invocation_status`` (the stored status) and ``sys_invocation`` (the stored status
joined with the invoker's in-memory state, with the derived status vocabulary).

The real server defines ``sys_invocation`` as a view: ``sys_invocation_status`` right-
joined with ``sys_invocation_state``, the status a CASE over both. Here it is one table
computed in a single pass (the join is a dictionary lookup), which lets predicates on
the derived status narrow the scan of the stored one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from typing import Any

import pyarrow as pa

from restate_server.partition.table import PartitionTable
from restate_server.protocol.messages import is_command
from restate_server.query.columns import BatchBuilder, Makers, id_texts, partition_keys
from restate_server.query.hints import ScanHints
from restate_server.query.in_flight import InvokerState
from restate_server.query.partition_scan import ScanRequest, partition_range
from restate_server.query.read_view import ReadView
from restate_server.query.schemas import SCHEMAS
from restate_server.query.tables.status_records import (
    StatusFilter,
    decode_many,
    field_count,
    raw_status_set,
    raw_statuses,
    status_chunks,
    status_ranges,
)
from restate_server.storage import keys
from restate_server.storage.records import (
    COMPLETED,
    INBOXED,
    INVOKED,
    PAUSED,
    SCHEDULED,
    SUSPENDED,
    decode_journal_entry,
)

STATUS_SCHEMA = SCHEMAS["sys_invocation_status"]
INVOCATION_SCHEMA = SCHEMAS["sys_invocation"]
_KEY_OFFSET = 1  # status keys are the table tag + the 24 id bytes

# the derived statuses each stored status can show as
DERIVED_OF_RAW = {
    INBOXED: ("pending",),
    SCHEDULED: ("scheduled",),
    INVOKED: ("running", "backing-off", "ready"),
    SUSPENDED: ("suspended",),
    PAUSED: ("paused",),
    COMPLETED: ("completed",),
}
# statuses that the invoker's state does not change
_FIXED = {
    INBOXED: "pending",
    SCHEDULED: SCHEDULED,
    COMPLETED: COMPLETED,
    SUSPENDED: SUSPENDED,
    PAUSED: PAUSED,
}

# the record fields each column reads
_FIELDS: dict[str, set[str]] = {
    "status": {"status"},
    "completion_result": {"status", "output"},
    "completion_failure": {"status", "output"},
    "target": {"target"},
    "target_service_name": {"target"},
    "target_service_key": {"target"},
    "target_handler_name": {"target"},
    "target_service_ty": {"target"},
    "idempotency_key": {"idempotency_key"},
    "invoked_by": {"invoked_by"},
    "invoked_by_service_name": {"invoked_by_target"},
    "invoked_by_id": {"invoked_by_id"},
    "invoked_by_target": {"invoked_by_target"},
    "restarted_from": {"restarted_from"},
    "pinned_deployment_id": {"deployment_id"},
    "pinned_service_protocol_version": {"protocol_version"},
    "trace_id": {"status", "trace_id", "trace_context"},
    "journal_size": {"status", "journal_length"},
    "created_at": {"created_at"},
    "modified_at": {"modified_at"},
    "inboxed_at": {"inboxed_at"},
    "scheduled_at": {"scheduled_at"},
    "scheduled_start_at": {"execution_time"},
    "running_at": {"running_at"},
    "completed_at": {"completed_at"},
    "completion_retention": {"completion_retention_ms"},
    "journal_retention": {"journal_retention_ms"},
    "suspended_waiting_for_completions": {"status", "waiting_completions"},
    "suspended_waiting_for_signals": {"status", "waiting_signals"},
    "suspended_waiting_future_json": {
        "status",
        "waiting_completions",
        "waiting_signals",
        "waiting_named_signals",
    },
    "journal_commands_size": {"status", "journal_length"},
}
# columns that need no key (the invocation id) to be computed
_KEYLESS = (frozenset(_FIELDS) - {"journal_commands_size"}) | {"created_using_restate_version"}
# columns filled from the invoker's state (sys_invocation only)
_INVOKER_COLUMNS = (
    "retry_count",
    "last_start_at",
    "next_retry_at",
    "last_attempt_deployment_id",
    "last_attempt_server",
    "last_failure",
    "last_failure_error_code",
    "last_failure_related_command_index",
    "last_failure_related_command_name",
    "last_failure_related_command_type",
)
# statuses whose journal metadata (size, trace id) the real server shows
_WITH_JOURNAL = frozenset({INVOKED, PAUSED, SUSPENDED, COMPLETED})


def derived_status(raw: str, state: InvokerState | None) -> str:
    """The CASE of the real server's sys_invocation view."""
    fixed = _FIXED.get(raw)
    if fixed is not None:
        return fixed
    if state is not None and state.in_flight:
        return "running"
    if raw == INVOKED and state is not None and state.retry_count > 0:
        return "backing-off"
    return "ready"


def _raw_statuses_for_derived(hints: ScanHints) -> frozenset[str] | None:
    allowed = hints.values("status")
    excluded = hints.excluded.get("status", frozenset())
    if allowed is None and not excluded:
        return None
    raws = set()
    for raw, shown in DERIVED_OF_RAW.items():
        if allowed is not None and not any(s in allowed for s in shown):
            continue
        if all(s in excluded for s in shown):
            continue
        raws.add(raw)
    return frozenset(raws)


def _raw_statuses_for_raw(hints: ScanHints) -> frozenset[str] | None:
    return raw_status_set(hints.values("status"), hints.excluded.get("status"))


def status_table_ranges(
    hints: ScanHints, partitions: PartitionTable, partition_id: int
) -> list[tuple[bytes, bytes]]:
    """The ranges a ``sys_invocation_status`` scan reads."""
    return _with_index(hints, partitions, partition_id, _raw_statuses_for_raw(hints))


def invocation_table_ranges(
    hints: ScanHints, partitions: PartitionTable, partition_id: int
) -> list[tuple[bytes, bytes]]:
    """The ranges a ``sys_invocation`` scan reads."""
    return _with_index(hints, partitions, partition_id, _raw_statuses_for_derived(hints))


def _with_index(
    hints: ScanHints, partitions: PartitionTable, partition_id: int, statuses: Any
) -> list[tuple[bytes, bytes]]:
    ranges = status_ranges(hints, partitions, partition_id, statuses)
    if _whole_partition(hints, statuses):
        # a status-only projection reads the index too (see _status_column_scan)
        ranges.append(partition_range(keys.ACTIVE_INVOCATION, partitions, partition_id))
    return ranges


def _whole_partition(hints: ScanHints, statuses: frozenset[str] | None) -> bool:
    """Every stored status of the partition can match."""
    return statuses is None and all(
        hints.values(column) is None
        for column in ("id", "target_service_name", "target_service_key", "partition_key")
    )


def scan_status(
    partition_id: int, request: ScanRequest, view: ReadView
) -> Iterator[pa.RecordBatch]:
    statuses = _raw_statuses_for_raw(request.hints)
    yield from _scan(partition_id, request, view, STATUS_SCHEMA, statuses, derived=False)


def scan_invocation(
    partition_id: int, request: ScanRequest, view: ReadView
) -> Iterator[pa.RecordBatch]:
    statuses = _raw_statuses_for_derived(request.hints)
    yield from _scan(partition_id, request, view, INVOCATION_SCHEMA, statuses, derived=True)


def _scan(
    partition_id: int,
    request: ScanRequest,
    view: ReadView,
    schema: pa.Schema,
    statuses: frozenset[str] | None,
    *,
    derived: bool,
) -> Iterator[pa.RecordBatch]:
    builder = BatchBuilder(schema, request.columns)
    hints = request.hints
    if set(request.columns) <= {"status"} and _whole_partition(hints, statuses):
        yield from _status_column_scan(partition_id, request, view, builder, derived)
        return
    keep = StatusFilter(statuses, hints.values("target_service_name"))
    needed: set[str] = set()
    for column in request.columns:
        needed |= _FIELDS.get(column, set())
    # only the status: read off the bytes, no decoding
    status_only = needed <= {"status"}
    count = 0 if status_only else field_count(needed)
    with_keys = not _KEYLESS.issuperset(request.columns) or (derived and bool(view.invoker))
    for ids, values in status_chunks(
        hints, view, partition_id, statuses, keep, request.batch_rows, with_keys
    ):
        yield builder.build(len(values), _makers(ids, values, count, view, derived))


def _status_column_scan(
    partition_id: int, request: ScanRequest, view: ReadView, builder: BatchBuilder, derived: bool
) -> Iterator[pa.RecordBatch]:
    """Every row of the partition with nothing but its status (``COUNT(*)``, the CLI's
    count of the first 50,000 rows): the invocations of the active index first, with
    the status it holds, then the completed ones, which all look alike here, so the
    stored records are only counted (every one, less as many as were active)."""
    size = request.batch_rows
    snapshot = view.snapshot
    invoker = view.invoker
    partitions = view.partitions
    index_range = partition_range(keys.ACTIVE_INVOCATION, partitions, partition_id)
    active = list(snapshot.items(*index_range))
    for offset in range(0, len(active), size):
        part = active[offset : offset + size]
        raws = [status.decode() for _, status in part]
        if derived:
            states = [invoker.get(key[1:]) for key, _ in part]
            shown = [derived_status(raw, state) for raw, state in zip(raws, states, strict=True)]
        else:
            shown = raws
        yield builder.build(len(part), {"status": lambda shown=shown: shown})
    skip = len(active)
    stored = snapshot.values(*partition_range(keys.INVOCATION_STATUS, partitions, partition_id))
    # records only counted: bigger batches (8,192 rows hold the GIL ~2.5 ms)
    while rows := len(list(islice(stored, size * 8))):
        skipped = min(skip, rows)
        skip -= skipped
        rows -= skipped
        if rows:
            yield builder.build(rows, {"status": lambda rows=rows: [COMPLETED] * rows})


def _makers(
    ids: list[bytes], values: list[bytes], count: int, view: ReadView, derived: bool
) -> Makers:
    rows: list[Any] = decode_many(values, count) if count else []
    statuses = _decoded_statuses(rows) if count else _raw_statuses(values)
    makers: Makers = {
        "partition_key": lambda: partition_keys(ids, _KEY_OFFSET),
        "id": lambda: id_texts(ids, _KEY_OFFSET),
        "target": lambda: [r.target.display() for r in rows],
        "target_service_name": lambda: [r.target.service for r in rows],
        "target_service_key": lambda: [r.target.key for r in rows],
        "target_handler_name": lambda: [r.target.handler for r in rows],
        "target_service_ty": lambda: [r.target.service_ty for r in rows],
        "idempotency_key": lambda: [r.idempotency_key for r in rows],
        "invoked_by": lambda: [r.invoked_by for r in rows],
        "invoked_by_service_name": lambda: [_service_of(r.invoked_by_target) for r in rows],
        "invoked_by_id": lambda: [_id_or_none(r.invoked_by_id) for r in rows],
        "invoked_by_target": lambda: [r.invoked_by_target for r in rows],
        "restarted_from": lambda: [_id_or_none(getattr(r, "restarted_from", None)) for r in rows],
        "pinned_deployment_id": lambda: [r.deployment_id for r in rows],
        "pinned_service_protocol_version": lambda: [r.protocol_version for r in rows],
        "trace_id": lambda: [_trace_id(r) for r in rows],
        "journal_size": lambda: [
            r.journal_length if r.status in _WITH_JOURNAL else None for r in rows
        ],
        "created_at": lambda: [r.created_at for r in rows],
        "created_using_restate_version": lambda: [view.server_version] * len(values),
        "modified_at": lambda: [r.modified_at for r in rows],
        "inboxed_at": lambda: [r.inboxed_at for r in rows],
        "scheduled_at": lambda: [r.scheduled_at for r in rows],
        "scheduled_start_at": lambda: [r.execution_time for r in rows],
        "running_at": lambda: [r.running_at for r in rows],
        "completed_at": lambda: [r.completed_at for r in rows],
        "completion_retention": lambda: [r.completion_retention_ms for r in rows],
        "journal_retention": lambda: [r.journal_retention_ms for r in rows],
        "suspended_waiting_for_completions": lambda: [
            r.waiting_completions if r.status == SUSPENDED else None for r in rows
        ],
        "suspended_waiting_for_signals": lambda: [
            r.waiting_signals if r.status == SUSPENDED else None for r in rows
        ],
        "suspended_waiting_future_json": lambda: [_waiting_future(r) for r in rows],
        "journal_commands_size": lambda: [
            _commands_in_journal(key, r.journal_length, view) if r.status in _WITH_JOURNAL else None
            for key, r in zip(ids, rows, strict=True)
        ],
        "completion_result": lambda: [_completion_result(r) for r in rows],
        "completion_failure": lambda: [_completion_failure(r) for r in rows],
    }
    if not derived:
        makers["status"] = statuses
        return makers
    states = _invoker_states(ids, values, view)
    if view.invoker:
        makers["status"] = lambda: [
            derived_status(raw, state) for raw, state in zip(statuses(), states, strict=True)
        ]
    else:  # nothing in flight: a lookup per row
        makers["status"] = lambda: [_FIXED.get(raw, "ready") for raw in statuses()]
    for column in _INVOKER_COLUMNS:
        makers[column] = _invoker_column(states, column)
    return makers


def _decoded_statuses(rows: list[Any]) -> Any:
    return lambda: [r.status for r in rows]


def _raw_statuses(values: list[bytes]) -> Any:
    return lambda: raw_statuses(values)


def _invoker_states(
    ids: list[bytes], values: list[bytes], view: ReadView
) -> list[InvokerState | None]:
    invoker = view.invoker
    if not invoker:
        return [None] * len(values)
    return [invoker.get(key[_KEY_OFFSET:]) for key in ids]


def _invoker_column(states: list[InvokerState | None], column: str) -> Any:
    return lambda: [None if state is None else getattr(state, column) for state in states]


def _service_of(target: str | None) -> str | None:
    return None if target is None else target.split("/", 1)[0]


def _id_or_none(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return id_texts([raw], 0)[0]


def _trace_id(row: Any) -> str | None:
    if row.status not in _WITH_JOURNAL:
        return None
    context = getattr(row, "trace_context", None)
    if context is not None:
        return context.trace_id.hex()  # type: ignore[no-any-return]
    return row.trace_id  # type: ignore[no-any-return]


def _waiting_future(row: Any) -> str | None:
    """What a suspended invocation waits for, as the real server shows a suspension
    without a future tree: an ``Unknown`` combinator of single notifications."""
    if row.status != SUSPENDED:
        return None
    singles = [{"Single": {"CompletionId": c}} for c in row.waiting_completions]
    singles += [{"Single": {"SignalIndex": s}} for s in row.waiting_signals]
    singles += [{"Single": {"SignalName": n}} for n in row.waiting_named_signals]
    return json.dumps({"Unknown": singles}, separators=(",", ":"), ensure_ascii=False)


def _commands_in_journal(status_key: bytes, length: int, view: ReadView) -> int:
    """Commands (not notifications) in the journal: read off the entries' type ids (point
    reads, which see the query's snapshot)."""
    invocation_id = status_key[_KEY_OFFSET:]
    count = 0
    for index in range(length):
        value = view.snapshot.get(keys.journal_entry(invocation_id, index))
        if value is not None and is_command(decode_journal_entry(value).type_id):
            count += 1
    return count


def _completion_result(row: Any) -> str | None:
    if row.status != COMPLETED or row.output is None:
        return None
    return "failure" if row.output.failure is not None else "success"


def _completion_failure(row: Any) -> str | None:
    if row.status != COMPLETED or row.output is None or row.output.failure is None:
        return None
    failure = row.output.failure
    return f"[{failure.code}] {failure.message}"
