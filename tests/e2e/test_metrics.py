"""Prometheus metrics on the node address (``GET /metrics``), against a TypeScript endpoint.

- our counters move with a workload of calls, sends, a failing call, retried and
  exhausted invocations, a timer, and request errors, with the real server's labels;
- ``disable-prometheus`` leaves ``/metrics`` without the server's metrics, as on the
  real server (which then serves only its RocksDB statistics);
- the families we share with the real restate-server 1.7.12 carry the same names, types
  and label names as its own after the same workload.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.endpoints import TsEndpoint
from tests.support.http import get, request
from tests.support.ports import LOOPBACK
from tests.support.server import RealRestateServerProcess, RestateServerProcess

PARTITIONS = 4
ENV = {
    "RESTATE_DEFAULT_NUM_PARTITIONS": str(PARTITIONS),
    # the sleep below suspends the invocation, and the timer resumes it
    "RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "300ms",
}

# the real server's families this server exposes too (docs/metrics.md)
SHARED_FAMILIES = [
    "restate_ingress_requests",
    "restate_ingress_request_duration_seconds",
    "restate_ingress_http_connection_created",
    "restate_ingress_http_connection_dropped",
    "restate_invoker_enqueue",
    "restate_invoker_invocation_tasks",
    "restate_invoker_task_duration_seconds",
    "restate_partition_apply_command_duration_seconds",
    "restate_partition_start",
    "restate_num_partitions",
    "restate_num_active_partitions",
    "restate_num_active_partition_leaders",
    "restate_connection_pool_connection_opened",
    "restate_connection_pool_stream_opened",
    "restate_rocksdb_memory_approx_memtable_bytes",
    "restate_rocksdb_memory_approx_memtable_unflushed_bytes",
]

Server = RestateServerProcess | RealRestateServerProcess
Families = dict[str, Any]


def _scrape(srv: Server) -> Families:
    resp = get(srv.node_url + "/metrics")
    assert resp.status == 200, resp.text()
    return {fam.name: fam for fam in text_string_to_metric_families(resp.text())}


def _values(families: Families, name: str, sample: str | None = None) -> list[tuple[dict, float]]:
    fam = families.get(name)
    if fam is None:
        return []
    wanted = sample or (f"{name}_total" if fam.type == "counter" else name)
    return [(s.labels, s.value) for s in fam.samples if s.name == wanted]


def _sum(families: Families, name: str, **labels: str) -> float:
    return sum(
        value
        for sample_labels, value in _values(families, name)
        if all(sample_labels.get(k) == v for k, v in labels.items())
    )


def _run_workload(srv: Server, tag: str) -> None:
    """Calls, sends, a failing call, request errors, retries, a timer."""
    for name in ("a", "b", "c"):
        assert srv.call("/Greeter/greet", name).status == 200
    for name in ("d", "e"):
        assert srv.call("/Greeter/greet/send", name).status == 202
    assert srv.call("/Greeter/fail", "no").status == 418  # the invocation failed
    assert srv.call("/Greeter/nope", "x").status == 404  # unknown handler
    plain = request(
        "POST",
        srv.ingress_url + "/Greeter/greet",
        body=b"x",
        headers={"content-type": "text/plain"},
    )
    assert plain.status == 400  # a content type the handler does not accept
    assert srv.call("/NoSuchService/greet", "x").status == 404  # only admitted
    assert srv.call("/Flaky/failOnce", tag).status == 200  # one transient failure
    assert srv.call("/RetryKill/always", tag).status == 500  # three attempts, then killed
    assert srv.call("/Sleeper/sleep", 700).status == 200  # suspends, a timer resumes it


def _wait_for_tasks(srv: Server, completed: int, timeout: float = 20.0) -> Families:
    """Scrape until the invoker has completed ``completed`` tasks (sends run after 202)."""
    deadline = time.monotonic() + timeout
    while True:
        families = _scrape(srv)
        done = _sum(families, "restate_invoker_invocation_tasks", status="completed")
        if done >= completed or time.monotonic() > deadline:
            return families
        time.sleep(0.2)


# 3 calls + 2 sends + the failing call + Flaky + the sleeper (after its resumption)
COMPLETED_TASKS = 8


def test_counters_follow_the_workload(
    server: Callable[..., RestateServerProcess], ts_endpoint: Callable[..., TsEndpoint]
) -> None:
    ep = ts_endpoint()
    srv = server(env=ENV)
    srv.register(ep.url)
    _run_workload(srv, "ours")
    families = _wait_for_tasks(srv, COMPLETED_TASKS)

    resp = get(srv.node_url + "/metrics")
    assert resp.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    for fam in families.values():
        for sample in fam.samples:
            assert sample.labels["cluster_name"] == "localcluster", sample
            assert sample.labels["node_name"], sample

    requests = {
        (labels["status"], labels.get("rpc_service"), labels.get("rpc_type")): value
        for labels, value in _values(families, "restate_ingress_requests")
    }
    assert requests.pop(("admitted", None, None)) >= 12  # every request of the workload
    assert requests == {
        ("completed", "Greeter", "call"): 3,
        ("completed", "Greeter", "send"): 2,
        ("invocation_error", "Greeter", "call"): 1,
        ("request_error", "Greeter", "call"): 2,
        ("completed", "Flaky", "call"): 1,
        ("invocation_error", "RetryKill", "call"): 1,
        ("completed", "Sleeper", "call"): 1,
    }
    durations = _values(
        families,
        "restate_ingress_request_duration_seconds",
        "restate_ingress_request_duration_seconds_count",
    )
    assert {(lb["rpc_service"], lb["rpc_type"]): v for lb, v in durations}[("Greeter", "call")] == 6

    tasks = _values(families, "restate_invoker_invocation_tasks")
    assert {labels["partition_id"] for labels, _ in tasks} <= {str(p) for p in range(PARTITIONS)}
    assert _sum(families, "restate_invoker_invocation_tasks", status="completed") == COMPLETED_TASKS
    assert _sum(families, "restate_invoker_invocation_tasks", status="suspended") == 1
    # Flaky once, RetryKill twice; then RetryKill gives up
    assert (
        _sum(families, "restate_invoker_invocation_tasks", status="failed", transient="true") == 3
    )
    assert (
        _sum(families, "restate_invoker_invocation_tasks", status="failed", transient="false") == 1
    )
    # every attempt started: 8 completed + 1 suspended + 4 failed
    assert _sum(families, "restate_invoker_invocation_tasks", status="started") == 13
    # the sleeper is enqueued twice (start, resumption after the timer)
    assert _sum(families, "restate_invoker_enqueue") == 10

    for summary in (
        "restate_ingress_request_duration_seconds",
        "restate_invoker_task_duration_seconds",
        "restate_partition_apply_command_duration_seconds",
        "restate_py_storage_commit_duration_seconds",
    ):
        quantiles = {labels["quantile"] for labels, _ in _values(families, summary)}
        assert quantiles == {"0.5", "0.9", "0.99", "1"}, summary
        assert _values(families, summary, f"{summary}_sum"), summary
    commands = {
        labels["command"]
        for labels, _ in _values(families, "restate_partition_apply_command_duration_seconds")
    }
    assert {"AnnounceLeader", "Invoke", "InvokerEffect", "Timer"} <= commands

    assert _sum(families, "restate_num_partitions") == PARTITIONS
    assert _sum(families, "restate_num_active_partitions") == PARTITIONS
    assert _sum(families, "restate_py_timers_fired") == 1
    assert _sum(families, "restate_py_invoker_retries") == 3
    assert _sum(families, "restate_py_invoker_h2_connections") >= 1
    assert _sum(families, "restate_ingress_http_connection_created") >= 12

    health = get(srv.node_url + "/health")
    assert health.status == 200 and health.json()["status"] == "Alive"


def test_disable_prometheus_drops_the_servers_metrics(
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
) -> None:
    env = {"RESTATE_DISABLE_PROMETHEUS": "true"}
    for srv in (server(env=env), real_server(env=env)):
        assert srv.call("/restate/health", method="GET").status == 200
        families = _scrape(srv)  # still 200, as on the real server
        assert "restate_ingress_requests" not in families, srv.name
        assert not [
            name for name in families if name.startswith("restate_") and "rocksdb" not in name
        ]
        assert get(srv.node_url + "/health").status == 200


def test_a_busy_node_port_stops_the_start(server: Callable[..., RestateServerProcess]) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        srv = server(start=False, node_port=taken.getsockname()[1])
        srv.process.start()
        deadline = time.monotonic() + 15
        while srv.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert srv.process.returncode == 1
    assert "cannot start" in srv.log_tail() and "address already in use" in srv.log_tail()


def _shape(families: Families, name: str) -> tuple[str, set[tuple[str, frozenset[str]]]]:
    """A family's type and the label names of each of its sample kinds."""
    fam = families[name]
    return fam.type, {(s.name, frozenset(s.labels)) for s in fam.samples}


def test_shared_families_match_the_real_server(
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> None:
    ep = ts_endpoint()
    scraped: dict[str, Families] = {}
    for kind, start in (("ours", server), ("real", real_server)):
        srv = start(env=ENV)
        srv.register(ep.url)
        _run_workload(srv, kind)
        scraped[kind] = _wait_for_tasks(srv, COMPLETED_TASKS)
        srv.stop()
    ours, real = scraped["ours"], scraped["real"]

    for name in SHARED_FAMILIES:
        assert name in real, name
        assert name in ours, name
        assert _shape(ours, name) == _shape(real, name), name
        assert ours[name].documentation == real[name].documentation, name

    def request_labels(families: Families) -> set[tuple[str, str, str]]:
        return {
            (labels["status"], labels["rpc_service"], labels["rpc_type"])
            for labels, _ in _values(families, "restate_ingress_requests")
            if labels["status"] != "admitted"
        }

    assert request_labels(ours) == request_labels(real)

    def task_statuses(families: Families) -> set[tuple[str, str | None]]:
        return {
            (labels["status"], labels.get("transient"))
            for labels, _ in _values(families, "restate_invoker_invocation_tasks")
        }

    assert task_statuses(ours) == task_statuses(real)
    for name in ("restate_num_partitions", "restate_num_active_partitions"):
        assert _sum(ours, name) == _sum(real, name) == PARTITIONS, name
    ours_commands = {
        labels["command"]
        for labels, _ in _values(ours, "restate_partition_apply_command_duration_seconds")
    }
    real_commands = {
        labels["command"]
        for labels, _ in _values(real, "restate_partition_apply_command_duration_seconds")
    }
    assert ours_commands <= real_commands
