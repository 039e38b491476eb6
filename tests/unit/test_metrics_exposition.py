"""Snapshots, merging and the Prometheus text format (parsed back with prometheus_client),
the components' counters, and the node endpoint's routes; no sockets."""

from __future__ import annotations

import asyncio
import json

from prometheus_client.parser import text_string_to_metric_families

from restate_server.http_server import Request, _HttpProtocol
from restate_server.metrics import names
from restate_server.metrics.commit import CommitMetrics
from restate_server.metrics.exposition import CONTENT_TYPE, render
from restate_server.metrics.families import Family, family, merge, summary
from restate_server.metrics.histogram import LogHistogram
from restate_server.metrics.ingress import COMPLETED, IngressMetrics
from restate_server.metrics.invoker import InvokerMetrics, invocation_gauges
from restate_server.metrics.node import NodeMetrics
from restate_server.metrics.partition import PartitionMetrics, command_name
from restate_server.node_endpoint import NodeEndpoint, NodeInfo, friendly_duration
from restate_server.partition import commands as c
from restate_server.partition.commands import InvocationRequest, Invoke
from restate_server.partition.processor import PartitionProcessor
from restate_server.partition.state_machine import StateMachine
from restate_server.partition.table import PartitionTable
from restate_server.storage.committer import Committer
from restate_server.storage.db import Store
from tests.unit.partition_harness import GREETER

LABELS = {"cluster_name": "localcluster", "node_name": "n1"}


def _parse(families: list[Family]) -> dict[str, object]:
    text = render(lambda: families, LABELS).decode()
    return {fam.name: fam for fam in text_string_to_metric_families(text)}


def _samples(parsed: dict[str, object], name: str) -> list[tuple[str, dict[str, str], float]]:
    fam = parsed[name]
    return [(s.name, s.labels, s.value) for s in fam.samples]  # type: ignore[attr-defined]


def test_counters_gauges_and_summaries_in_the_text_format() -> None:
    histogram = LogHistogram()
    for ms in (1, 2, 3, 4, 100):
        histogram.record(ms * 1_000_000)
    families = [
        family(names.INGRESS_REQUESTS, [((("status", "admitted"),), 3)]),
        family(names.NUM_PARTITIONS, [((), 24)]),
        summary(
            names.INGRESS_REQUEST_DURATION,
            [((("rpc_service", "Greeter"), ("rpc_type", "call")), histogram.snapshot(0.0))],
        ),
        # a summary with nothing recorded yet has no samples
        summary(names.INVOKER_TASK_DURATION, [((), LogHistogram().snapshot(0.0))]),
    ]
    text = render(lambda: families, LABELS).decode()
    assert "# TYPE restate_ingress_requests_total counter" in text
    assert "# TYPE restate_ingress_request_duration_seconds summary" in text
    parsed = _parse(families)

    requests = _samples(parsed, "restate_ingress_requests")
    assert requests == [("restate_ingress_requests_total", {**LABELS, "status": "admitted"}, 3.0)]
    assert _samples(parsed, "restate_num_partitions") == [("restate_num_partitions", LABELS, 24.0)]

    duration = _samples(parsed, "restate_ingress_request_duration_seconds")
    by_quantile = {labels.get("quantile"): (name, value) for name, labels, value in duration}
    assert set(by_quantile) == {"0.5", "0.9", "0.99", "1", None}
    assert abs(by_quantile["0.5"][1] - 0.003) / 0.003 < 0.04
    assert by_quantile["1"][1] == 0.1
    sums = {name: value for name, labels, value in duration if "quantile" not in labels}
    assert sums["restate_ingress_request_duration_seconds_count"] == 5
    assert abs(sums["restate_ingress_request_duration_seconds_sum"] - 0.11) < 1e-9
    for _, labels, _ in duration:
        assert labels["rpc_service"] == "Greeter" and labels["cluster_name"] == "localcluster"
    assert _samples(parsed, "restate_invoker_task_duration_seconds") == []


def test_merge_adds_up_sources_by_labels() -> None:
    pid = (("partition_id", "0"),)
    h1, h2 = LogHistogram(), LogHistogram()
    h1.record(10)
    h2.record(20)
    h2.record(30)
    source_a = [
        family(names.INVOKER_ENQUEUE, [(pid, 2)]),
        summary(names.INVOKER_TASK_DURATION, [((), h1.snapshot(0.0))]),
    ]
    source_b = [
        family(names.INVOKER_ENQUEUE, [(pid, 3), ((("partition_id", "1"),), 1)]),
        summary(names.INVOKER_TASK_DURATION, [((), h2.snapshot(0.0))]),
    ]
    merged = {fam.name: fam for fam in merge([source_a, source_b])}
    assert dict(merged["restate_invoker_enqueue"].values) == {
        pid: 5,
        (("partition_id", "1"),): 1,
    }
    ((labels, data),) = merged["restate_invoker_task_duration_seconds"].histograms
    assert labels == () and data.total_count == 3 and data.window_max == 30


def test_ingress_counts_by_status_service_and_type() -> None:
    metrics = IngressMetrics()
    metrics.admitted = 4
    call = metrics.target("Greeter", False)
    assert metrics.target("Greeter", False) is call
    for _ in range(2):  # what the ingress does when a call is answered
        call.durations.values.append(1_000)
        call.statuses[COMPLETED] += 1
    metrics.target("Greeter", True).rejected(415, 0)
    metrics.connection_made()
    metrics.connection_dropped("success")
    parsed = _parse(metrics.families(0.0))
    requests = {
        (labels["status"], labels.get("rpc_service"), labels.get("rpc_type")): value
        for _, labels, value in _samples(parsed, "restate_ingress_requests")
    }
    assert requests == {
        ("admitted", None, None): 4,
        ("completed", "Greeter", "call"): 2,
        ("request_error", "Greeter", "send"): 1,
    }
    counts = {
        labels["rpc_type"]: value
        for name, labels, value in _samples(parsed, "restate_ingress_request_duration_seconds")
        if name.endswith("_count")
    }
    assert counts == {"call": 2, "send": 1}
    created = _samples(parsed, "restate_ingress_http_connection_created")
    assert created[0][2] == 1
    dropped = _samples(parsed, "restate_ingress_http_connection_dropped")
    assert dropped == [
        ("restate_ingress_http_connection_dropped_total", {**LABELS, "status": "success"}, 1)
    ]


def test_invoker_tasks_by_status_with_transient_on_failures() -> None:
    metrics = InvokerMetrics(7)
    metrics.started, metrics.completed, metrics.suspended = 3, 1, 1
    metrics.failed_transient += 1
    metrics.enqueued = 2
    metrics.task_duration.values.extend([5_000, 6_000, 7_000])
    parsed = _parse(metrics.families(0.0))
    tasks = {
        (labels["status"], labels.get("transient")): value
        for _, labels, value in _samples(parsed, "restate_invoker_invocation_tasks")
        if labels["partition_id"] == "7"
    }
    assert tasks == {
        ("started", None): 3,
        ("completed", None): 1,
        ("suspended", None): 1,
        ("failed", "true"): 1,
    }
    assert "restate_invoker_task_duration_seconds" not in parsed  # node-wide, see below


def test_node_wide_summaries_are_shared_by_the_partitions_and_reported_once() -> None:
    node = NodeMetrics()
    node.add_partitions(3)
    assert len({id(invoker.task_duration) for invoker in node.invokers}) == 1
    node.invokers[0].task_duration.values.extend([5_000, 6_000])
    node.invokers[2].task_duration.values.append(7_000)
    assert node.partitions[0].durations_by_class is node.partitions[2].durations_by_class
    node.partitions[1].durations_for(c.Recover()).append(1_000)
    parsed = _parse(node.families())
    durations = _samples(parsed, "restate_invoker_task_duration_seconds")
    assert {"partition_id"} & set(durations[0][1]) == set()  # no labels, as in the real server
    assert [v for n, _, v in durations if n.endswith("_count")] == [3]
    applied = _samples(parsed, "restate_partition_apply_command_duration_seconds")
    assert [v for n, _, v in applied if n.endswith("_count")] == [1]


class _Task:
    def __init__(self, partition_id: int, next_retry_at: int | None) -> None:
        self.partition_id = partition_id
        self.next_retry_at = next_retry_at


def test_invocation_gauges_from_the_invokers_tasks() -> None:
    tasks = [_Task(0, None), _Task(0, None), _Task(0, 123), _Task(3, None)]
    parsed = _parse([invocation_gauges(tasks)])
    values = {
        (labels["status"], labels["partition_id"]): value
        for _, labels, value in _samples(parsed, "restate_py_invocations")
    }
    assert values == {("running", "0"): 2, ("backing_off", "0"): 1, ("running", "3"): 1}


def test_command_names_are_the_real_servers() -> None:
    request = InvocationRequest(invocation_id=bytes(24), target=GREETER, argument=b"")
    assert command_name(Invoke(request)) == "Invoke"
    assert command_name(c.AttemptEnded(bytes(24), 1)) == "InvokerEffect"
    assert command_name(c.TimerFired(b"k", None)) == "Timer"  # type: ignore[arg-type]
    assert command_name(c.Recover()) == "AnnounceLeader"
    assert command_name(c.KillInvocation(bytes(24))) == "TerminateInvocation"
    completion = c.AppendNotification(bytes(24), 0x8000, b"", completion_id=1)
    signal = c.AppendNotification(bytes(24), 0xFBFF, b"", signal_id=17)
    assert command_name(completion) == "InvocationResponse"
    assert command_name(signal) == "NotifySignal"
    assert command_name(c.Deliver(1, 5, Invoke(request))) == "Invoke"
    assert command_name(c.Deliver(1, 6, signal)) == "NotifySignal"

    metrics = PartitionMetrics(2)
    ended = c.AttemptEnded(bytes(24), 1)
    for command, elapsed_ns in [
        (c.Recover(), 1_000),
        (completion, 2_000),
        (signal, 3_000),
        (ended, 4_000),
        (ended, 5_000),
    ]:  # what the processor does after applying each command
        durations = metrics.durations_by_class.get(type(command))
        if durations is None:
            durations = metrics.durations_for(command)
        durations.append(elapsed_ns)
    # content-dependent names are not cached by class
    assert set(metrics.durations_by_class) == {c.Recover, c.AttemptEnded}
    parsed = _parse(
        metrics.durations.families(0.0) + metrics.families(0.0, queued_commands=3, timers_armed=1)
    )
    counts = {
        labels["command"]: value
        for name, labels, value in _samples(
            parsed, "restate_partition_apply_command_duration_seconds"
        )
        if name.endswith("_count")
    }
    assert counts == {
        "AnnounceLeader": 1,
        "InvocationResponse": 1,
        "NotifySignal": 1,
        "InvokerEffect": 2,
    }
    sums = {
        labels["command"]: value
        for name, labels, value in _samples(
            parsed, "restate_partition_apply_command_duration_seconds"
        )
        if name.endswith("_sum")
    }
    assert abs(sums["InvokerEffect"] - 9e-6) < 1e-15
    queued = _samples(parsed, "restate_py_partition_queued_commands")
    assert queued == [("restate_py_partition_queued_commands", {**LABELS, "partition_id": "2"}, 3)]


def test_store_memtables_grow_with_writes_and_read_zero_once_closed(tmp_path) -> None:
    store = Store(str(tmp_path / "db"))
    node = NodeMetrics()
    node.watch_store(store)

    def memtables() -> dict[str, float]:
        parsed = _parse(node.families())
        return {
            name: value
            for family_name in (
                "restate_rocksdb_memory_approx_memtable_bytes",
                "restate_rocksdb_memory_approx_memtable_unflushed_bytes",
            )
            for name, labels, value in _samples(parsed, family_name)
            if labels.get("db") == "db"
        }

    empty = memtables()
    store.write({b"k%05d" % i: b"v" * 300 for i in range(2000)})
    written = memtables()
    assert set(written) == set(empty) and len(written) == 2
    assert all(written[name] >= empty[name] + 2000 * 300 for name in written)
    store.close()
    assert all(value == 0 for value in memtables().values())


def test_commit_metrics() -> None:
    metrics = CommitMetrics()
    metrics.committed(2_000_000, 3)
    metrics.committed(1_000_000, 1)
    parsed = _parse(metrics.families(0.0))
    writes = {
        labels.get("quantile", name): value
        for name, labels, value in _samples(parsed, "restate_py_storage_commit_batch_writes")
    }
    assert writes["1"] == 3
    assert writes["restate_py_storage_commit_batch_writes_sum"] == 4
    duration = _samples(parsed, "restate_py_storage_commit_duration_seconds")
    assert max(v for _, labels, v in duration if labels.get("quantile") == "1") == 0.002


async def test_a_partition_and_the_committer_record_what_they_do(tmp_path) -> None:
    store = Store(str(tmp_path / "db"), sync_writes=False)
    node = NodeMetrics()
    node.add_partitions(1)
    committer = Committer(store, asyncio.get_running_loop(), node.commit)
    processor = PartitionProcessor(
        0,
        (0, 1 << 64),
        store,
        committer,
        StateMachine(0, PartitionTable(1)),
        lambda actions: None,
        metrics=node.partitions[0],
    )
    node.watch_partitions([processor], 1)
    try:
        await processor.start()
        for n in range(1, 4):
            request = InvocationRequest(
                invocation_id=n.to_bytes(8, "big") + bytes(16), target=GREETER, argument=b""
            )
            await processor.submit_and_wait(Invoke(request))
        parsed = _parse(node.families())
    finally:
        await processor.stop()
        committer.close()
        store.close()
    counts = {
        labels["command"]: value
        for name, labels, value in _samples(
            parsed, "restate_partition_apply_command_duration_seconds"
        )
        if name.endswith("_count")
    }
    assert counts == {"AnnounceLeader": 1, "Invoke": 3}
    commits = _samples(parsed, "restate_py_storage_commit_duration_seconds")
    assert next(v for n, _, v in commits if n.endswith("_count")) >= 3
    assert _samples(parsed, "restate_num_partitions")[0][2] == 1
    starts = _samples(parsed, "restate_partition_start")
    assert starts == [("restate_partition_start_total", {**LABELS, "partition": "0"}, 1)]


def _request(method: str, path: str) -> Request:
    return Request(method, path, [], b"")


def test_node_endpoint_routes() -> None:
    node = NodeMetrics()
    endpoint = NodeEndpoint(NodeInfo("localcluster", "n1", schema_version=lambda: 3), node)
    response = endpoint.handle(_request("GET", "/metrics"))
    assert response.status == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    assert "restate_ingress_requests" in _parse_text(response.body)

    health = endpoint.handle(_request("GET", "/health"))
    body = json.loads(health.body)
    assert health.status == 200 and body["status"] == "Alive"
    assert body["cluster_name"] == "localcluster" and body["schema_version"] == 3

    assert endpoint.handle(_request("GET", "/nope")).status == 404
    not_allowed = endpoint.handle(_request("POST", "/metrics"))
    assert not_allowed.status == 405 and not_allowed.headers["allow"] == "GET,HEAD"


def test_disabled_metrics_answer_without_the_servers_families() -> None:
    endpoint = NodeEndpoint(NodeInfo("localcluster", "n1"), None)
    response = endpoint.handle(_request("GET", "/metrics"))
    assert response.status == 200 and response.body == b""


def _parse_text(body: bytes) -> set[str]:
    return {fam.name for fam in text_string_to_metric_families(body.decode())}


def test_friendly_duration() -> None:
    assert friendly_duration(5.928651198) == "5s 928ms 651µs 198ns"
    assert friendly_duration(86_400 + 12 * 3600 + 4 * 60 + 2) == "1d 12h 4m 2s"
    assert friendly_duration(0) == "0s"


class _Transport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def test_http_server_reports_connections() -> None:
    metrics = IngressMetrics()
    good = _HttpProtocol(lambda request: None, metrics)  # type: ignore[arg-type, return-value]
    good.connection_made(_Transport())  # type: ignore[arg-type]
    good.connection_lost(None)
    bad = _HttpProtocol(lambda request: None, metrics)  # type: ignore[arg-type, return-value]
    bad.connection_made(_Transport())  # type: ignore[arg-type]
    bad.data_received(b"NOT HTTP AT ALL\r\n\r\n")
    bad.connection_lost(None)
    broken = _HttpProtocol(lambda request: None, metrics)  # type: ignore[arg-type, return-value]
    broken.connection_made(_Transport())  # type: ignore[arg-type]
    broken.connection_lost(ConnectionResetError())
    assert metrics.connections_created == 3
    assert metrics.connections_dropped == {"success": 1, "parse": 1, "io": 1}
