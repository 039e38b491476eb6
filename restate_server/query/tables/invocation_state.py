"""``sys_invocation_state``: the invoker's in-memory state of the invocations it runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

from restate_server.protocol.errors import InvalidIdError
from restate_server.protocol.ids import InvocationId
from restate_server.query.columns import BatchBuilder, Makers, id_texts
from restate_server.query.in_flight import InvokerState
from restate_server.query.partition_scan import ScanRequest, in_partition
from restate_server.query.read_view import ReadView
from restate_server.query.schemas import SCHEMAS

SCHEMA = SCHEMAS["sys_invocation_state"]
_COPIED = (
    "in_flight",
    "retry_count",
    "last_start_at",
    "last_attempt_deployment_id",
    "last_attempt_server",
    "next_retry_at",
    "last_failure",
    "last_failure_error_code",
    "last_failure_related_command_index",
    "last_failure_related_command_name",
    "last_failure_related_command_type",
)


def _wanted_ids(request: ScanRequest) -> set[bytes] | None:
    texts = request.hints.values("id")
    if texts is None:
        return None
    wanted = set()
    for text in texts:
        try:
            wanted.add(InvocationId.from_str(text).to_bytes())
        except (InvalidIdError, AttributeError):
            continue
    return wanted


def scan(partition_id: int, request: ScanRequest, view: ReadView) -> Iterator[pa.RecordBatch]:
    wanted = _wanted_ids(request)
    rows = sorted(
        (raw, state)
        for raw, state in view.invoker.items()
        if in_partition(int.from_bytes(raw[:8], "big"), view.partitions, partition_id)
        and (wanted is None or raw in wanted)
    )
    builder = BatchBuilder(SCHEMA, request.columns)
    for start in range(0, len(rows), request.batch_rows):
        chunk = rows[start : start + request.batch_rows]
        yield builder.build(len(chunk), _makers(chunk))


def _makers(chunk: list[tuple[bytes, InvokerState]]) -> Makers:
    ids = [raw for raw, _ in chunk]
    states = [state for _, state in chunk]
    makers: Makers = {
        "partition_key": lambda: [int.from_bytes(raw[:8], "big") for raw in ids],
        "id": lambda: id_texts(ids, 0),
    }
    for column in _COPIED:
        makers[column] = _copied(states, column)
    return makers


def _copied(states: list[InvokerState], column: str) -> Callable[[], list[object]]:
    return lambda: [getattr(state, column) for state in states]
