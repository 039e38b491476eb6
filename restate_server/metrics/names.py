"""Every metric this server exposes: name, type, help text and unit scale.

Names, help texts and label names of the ``restate_*`` families are the real
restate-server's (1.7.12), so that dashboards built for it work; ``restate_py_*`` are
ours. Counter names are given without the ``_total`` suffix, which the exposition adds.
The list with its labels and meaning is in ``docs/metrics.md``.
"""

from __future__ import annotations

from typing import NamedTuple

NANOS = 1e-9


class Spec(NamedTuple):
    name: str
    kind: str  # "counter", "gauge" or "summary"
    help: str
    scale: float = 1.0  # rendered value = recorded value * scale


# ---- the real server's families

INGRESS_REQUESTS = Spec(
    "restate_ingress_requests",
    "counter",
    "Number of ingress requests in different states, see label state to classify",
)
INGRESS_REQUEST_DURATION = Spec(
    "restate_ingress_request_duration_seconds",
    "summary",
    "Total latency of Ingress request processing in seconds",
    NANOS,
)
INGRESS_CONNECTION_CREATED = Spec(
    "restate_ingress_http_connection_created",
    "counter",
    "Number of ingress incoming connections created",
)
INGRESS_CONNECTION_DROPPED = Spec(
    "restate_ingress_http_connection_dropped",
    "counter",
    "Number of ingress incoming connections dropped",
)
INVOKER_ENQUEUE = Spec(
    "restate_invoker_enqueue", "counter", "Number of invocations that were added to the queue"
)
INVOKER_INVOCATION_TASKS = Spec(
    "restate_invoker_invocation_tasks", "counter", "Invocation task operation"
)
INVOKER_TASK_DURATION = Spec(
    "restate_invoker_task_duration_seconds",
    "summary",
    "Time taken to complete an invoker task",
    NANOS,
)
PARTITION_APPLY_COMMAND = Spec(
    "restate_partition_apply_command_duration_seconds",
    "summary",
    "Time spent applying partition processor command",
    NANOS,
)
PARTITION_START = Spec(
    "restate_partition_start", "counter", "Number of partition processor starts on this node"
)
NUM_PARTITIONS = Spec(
    "restate_num_partitions", "gauge", "Total number of partitions in the partition table"
)
NUM_ACTIVE_PARTITIONS = Spec(
    "restate_num_active_partitions",
    "gauge",
    "Number of partitions started by partition processor manager on this node",
)
NUM_ACTIVE_PARTITION_LEADERS = Spec(
    "restate_num_active_partition_leaders",
    "gauge",
    "Number of active partition leaders started by partition processor manager on this node",
)
POOL_CONNECTION_OPENED = Spec(
    "restate_connection_pool_connection_opened", "counter", "Number of opened h2 connection"
)
POOL_STREAM_OPENED = Spec(
    "restate_connection_pool_stream_opened", "counter", "Number of opened h2 streams"
)
# the real server gives these two no help text (docs/metrics.md says what they hold)
ROCKSDB_MEMTABLE_BYTES = Spec("restate_rocksdb_memory_approx_memtable_bytes", "gauge", "")
ROCKSDB_MEMTABLE_UNFLUSHED_BYTES = Spec(
    "restate_rocksdb_memory_approx_memtable_unflushed_bytes", "gauge", ""
)

# ---- ours

COMMIT_DURATION = Spec(
    "restate_py_storage_commit_duration_seconds",
    "summary",
    "Time to write and sync one group commit (one RocksDB write batch) in seconds",
    NANOS,
)
COMMIT_BATCH_WRITES = Spec(
    "restate_py_storage_commit_batch_writes",
    "summary",
    "Number of partition write groups carried by one group commit",
)
PARTITION_QUEUED_COMMANDS = Spec(
    "restate_py_partition_queued_commands",
    "gauge",
    "Commands waiting in a partition's queue to be applied",
)
TIMERS_ARMED = Spec(
    "restate_py_timers_armed",
    "gauge",
    "Timers in a partition's in-memory schedule, waiting to fire",
)
TIMERS_FIRED = Spec("restate_py_timers_fired", "counter", "Timers that fired")
INVOCATIONS = Spec(
    "restate_py_invocations",
    "gauge",
    "Invocations the invoker holds in memory, by status (running: an attempt is in flight; "
    "backing_off: waiting to retry)",
)
INVOKER_RETRIES = Spec(
    "restate_py_invoker_retries", "counter", "Attempts started again after a backoff delay"
)
INVOKER_REFUSED_RESENDS = Spec(
    "restate_py_invoker_refused_resends",
    "counter",
    "Attempts sent again at once because the deployment refused the stream before running it",
)
H2_CONNECTIONS = Spec(
    "restate_py_invoker_h2_connections",
    "gauge",
    "Open HTTP/2 connections to deployments (and discovery), by origin",
)
