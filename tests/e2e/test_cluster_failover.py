"""Cluster mode (``[py.cluster]``) end to end: partition logs and leases in a
three-server JetStream on loopback, our server as the node, real SDK endpoints.

Every node serves ingress and admin and leads a share of the partitions; the others
are reached over the node's links. A node that dies, stops or is paused loses its
leases, and the live nodes take its partitions over, rebuilding them from the engine's
log on disks of their own; a node that joins is handed its share.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.http import get, query_rows
from tests.support.jetstream import JetStreamCluster, running_cluster
from tests.support.node import NodeTools
from tests.support.real_cli import RealCli
from tests.support.server import RestateServerProcess
from tests.support.waiting import wait_for

Endpoint = TsEndpoint | PyEndpoint
LEASE = "3s"
ENGINE_FAILOVER_LEASE = "20s"
KEYS = [f"k{n}" for n in range(8)]
_clusters = itertools.count(1)
_wait_for = partial(wait_for, timeout=30.0)


def _ok(resp: Any) -> Any:
    assert resp.status in (200, 202), f"{resp.status} {resp.text()}"
    return resp.json()


@pytest.fixture(scope="module")
def jetstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JetStreamCluster]:
    with running_cluster(Path(tmp_path_factory.mktemp("jetstream"))) as cluster:
        yield cluster


@pytest.fixture
def node(
    server: Callable[..., RestateServerProcess], jetstream: JetStreamCluster
) -> Callable[[str], RestateServerProcess]:
    """Our server as a node of a cluster of its own (a fresh name in the shared engine);
    each node has its own base dir: nothing is shared but the engine."""
    cluster_name = f"c{os.getpid()}-{next(_clusters)}"

    def start(
        name: str, *, wait: bool = True, lease: str = LEASE, **extra: str
    ) -> RestateServerProcess:
        env = {
            **extra,
            "RESTATE_CLUSTER_NAME": cluster_name,
            "RESTATE_NODE_NAME": name,
            "RESTATE_PY__CLUSTER__ENGINE_ADDRESS": ",".join(jetstream.urls),
            "RESTATE_PY__CLUSTER__LEASE_DURATION": lease,
            "RESTATE_PY__CLUSTER__FABRIC_BIND_ADDRESS": "127.0.0.1:0",
            "RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "300ms",
        }
        return server(env=env, name=name, start=wait)

    return start


def test_a_standby_takes_over_everything_from_a_killed_leader(
    node: Callable[..., RestateServerProcess], endpoint: Endpoint
) -> None:
    a = node("node-a")
    assert a.register(endpoint.url).status == 201
    for key in KEYS:
        assert _ok(a.call(f"/Counter/{key}/add", 1)) == 1
    # in flight when the leader dies: a sleep, a delayed send, a workflow on its promise
    sleeping = _ok(a.call("/Sleeper/sleepOnce/send", {"tag": "failover", "ms": 2500}))
    assert a.call("/Counter/delayed/add/send?delay=2s", 3).status == 202
    assert a.call("/Payment/order1/run/send", {"amount": 42}).status == 202
    _wait_for(lambda: _ok(a.call("/Payment/order1/status")) == "waiting")
    time.sleep(0.5)  # the sleep is journaled and its timer stored

    a.kill9()
    b = node("node-b")  # waits for a's leases to run out, then rebuilds from the log
    # the registry came from the engine: b serves without a registration of its own
    deployments = _ok(get(b.admin_url + "/deployments"))
    assert [d["uri"].rstrip("/") for d in deployments["deployments"]] == [endpoint.url]
    for key in KEYS:
        assert _ok(b.call(f"/Counter/{key}/add", 1)) == 2
    woke = b.call(
        f"/restate/invocation/{sleeping['invocationId']}/attach", method="GET", timeout=30
    )
    assert _ok(woke) == "woke"
    _wait_for(lambda: _ok(b.call("/Counter/delayed/get")) == 3)
    assert _ok(b.call("/Payment/order1/approve")) == "approved"
    attach = b.call("/restate/workflow/Payment/order1/attach", method="GET", timeout=30)
    assert attach.status == 200, attach.text()
    # the sleep ran to its end once, on b
    woken = [x.split()[1] for x in endpoint.side_effects() if x.startswith("woke ")]
    assert woken == ["failover"]
    # the workflow's ctx.run before the kill is not run again: its result was in the log
    effects = [x for x in endpoint.side_effects() if x.endswith("order1") or " order1 " in x]
    assert effects == ["reserve order1 42", "charge order1"]


def test_a_stopped_node_hands_its_partitions_over(
    node: Callable[..., RestateServerProcess], ts_endpoint: Callable[..., TsEndpoint]
) -> None:
    endpoint = ts_endpoint()
    a = node("node-a")
    assert a.register(endpoint.url).status == 201
    assert _ok(a.call("/Counter/handover/add", 5)) == 5
    a.stop()  # SIGTERM: everything is in the log, the leases are given up
    b = node("node-b")
    assert _ok(b.call("/Counter/handover/add", 1)) == 6
    # and back to a, whose own store is behind the log now
    b.stop()
    a.start()
    assert _ok(a.call("/Counter/handover/add", 1)) == 7


def test_a_paused_leader_stops_once_another_node_took_over(
    node: Callable[..., RestateServerProcess], ts_endpoint: Callable[..., TsEndpoint]
) -> None:
    endpoint = ts_endpoint()
    a = node("node-a")
    assert a.register(endpoint.url).status == 201
    assert _ok(a.call("/Counter/fenced/add", 1)) == 1
    pid = a.process.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        b = node("node-b")  # a's leases run out while it is stopped
        assert _ok(b.call("/Counter/fenced/add", 1)) == 2
    finally:
        os.kill(pid, signal.SIGCONT)
    # a wakes up, finds its leases gone, and stops without writing anything more
    _wait_for(lambda: not a.is_running())
    assert a.process.returncode not in (0, None)
    assert "lease lost" in a.log_tail(200) or "another node" in a.log_tail(200)
    assert _ok(b.call("/Counter/fenced/add", 1)) == 3


def _leading(srv: RestateServerProcess) -> int:
    """How many partitions the node leads now (its log names each one it takes and
    each one it hands over)."""
    text = srv.log_tail(5000)
    return text.count("leading partition") - text.count("handed partition")


def test_three_live_nodes_share_the_partitions_and_take_over_from_a_killed_one(
    node: Callable[..., RestateServerProcess], endpoint: Endpoint
) -> None:
    nodes = [node(name, wait=False) for name in ("node-a", "node-b", "node-c")]
    with ThreadPoolExecutor(3) as pool:  # together: each takes its share
        list(pool.map(lambda srv: srv.start(), nodes))
    a, b, c = nodes
    _wait_for(lambda: [_leading(srv) for srv in nodes] == [8, 8, 8])
    assert a.register(endpoint.url).status == 201
    # the registration reaches the other nodes through the engine
    for srv in (b, c):
        _wait_for(lambda srv=srv: srv.call("/Counter/probe/get").status == 200)
    # every key through every node: the node that reads a request forwards it to the
    # partition's leader
    for round_ in (1, 2, 3):
        for i, key in enumerate(KEYS):
            assert _ok(nodes[(i + round_) % 3].call(f"/Counter/{key}/add", 1)) == round_
    # a workflow started on c, approved through b, attached through a
    assert c.call("/Payment/order1/run/send", {"amount": 7}).status == 202
    _wait_for(lambda: _ok(b.call("/Payment/order1/status")) == "waiting")
    assert _ok(b.call("/Payment/order1/approve")) == "approved"
    assert a.call("/restate/workflow/Payment/order1/attach", method="GET", timeout=30).status == 200

    # b dies with work in flight; a and c take its partitions over
    sleeping = _ok(b.call("/Sleeper/sleepOnce/send", {"tag": "three", "ms": 2000}))
    assert b.call("/Counter/delayed/add/send?delay=1500ms", 3).status == 202
    time.sleep(0.5)
    b.kill9()
    for i, key in enumerate(KEYS):
        assert _ok((a, c)[i % 2].call(f"/Counter/{key}/add", 1, timeout=30)) == 4
    woke = c.call(
        f"/restate/invocation/{sleeping['invocationId']}/attach", method="GET", timeout=30
    )
    assert _ok(woke) == "woke"
    _wait_for(lambda: _ok(a.call("/Counter/delayed/get")) == 3)
    _wait_for(lambda: _leading(a) + _leading(c) == 24)  # every partition of b taken over
    woken = [x.split()[1] for x in endpoint.side_effects() if x.startswith("woke ")]
    assert woken == ["three"]


def test_a_node_that_joins_gets_its_share(
    node: Callable[..., RestateServerProcess], ts_endpoint: Callable[..., TsEndpoint]
) -> None:
    endpoint = ts_endpoint()
    a = node("node-a")
    assert _leading(a) == 24
    assert a.register(endpoint.url).status == 201
    for key in KEYS:
        assert _ok(a.call(f"/Counter/{key}/add", 1)) == 1
    b = node("node-b")
    # a hands partitions over until each leads half; requests keep being answered
    deadline = time.monotonic() + 30
    round_ = 1
    while [_leading(a), _leading(b)] != [12, 12]:
        assert time.monotonic() < deadline, [_leading(a), _leading(b)]
        round_ += 1
        for i, key in enumerate(KEYS):
            assert _ok((a, b)[i % 2].call(f"/Counter/{key}/add", 1)) == round_
    for i, key in enumerate(KEYS):
        assert _ok((b, a)[i % 2].call(f"/Counter/{key}/add", 1)) == round_ + 1


def _three_nodes(
    node: Callable[..., RestateServerProcess], lease: str = LEASE
) -> list[RestateServerProcess]:
    nodes = [node(name, wait=False, lease=lease) for name in ("node-a", "node-b", "node-c")]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda srv: srv.start(), nodes))
    _wait_for(lambda: sum(_leading(srv) for srv in nodes) == 24)
    return nodes


def test_flows_through_any_node_and_the_loss_of_one_engine_server(
    node: Callable[..., RestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
    jetstream: JetStreamCluster,
) -> None:
    endpoint = ts_endpoint()
    # leases outlast the engine's leader elections (4-9 s in nats-server 2.9)
    a, b, c = _three_nodes(node, lease=ENGINE_FAILOVER_LEASE)
    assert b.register(endpoint.url).status == 201
    # visible on every node once the admin API has answered
    assert all(srv.call("/Counter/probe/get").status == 200 for srv in (a, c))
    # idempotency: one key through all three nodes runs once
    headers = {"idempotency-key": "idem-1"}
    answers = [srv.call("/Counter/idem/add", 1, headers) for srv in (a, b, c)]
    assert {_ok(r) for r in answers} == {1}
    assert len({r.headers["x-restate-id"] for r in answers}) == 1
    assert _ok(c.call("/Counter/idem/get")) == 1
    # an awakeable created through c, resolved through a, its invocation attached via b
    invocation = _ok(c.call("/Awaker/wait/send", "aw"))["invocationId"]
    line = _wait_for(lambda: [x for x in endpoint.side_effects() if x.startswith("awk aw ")])
    awakeable = line[0].split()[-1]
    assert a.call(f"/restate/awakeables/{awakeable}/resolve", "from a").status == 202
    answer = b.call(f"/restate/invocation/{invocation}/attach", method="GET", timeout=30)
    assert _ok(answer) == "got from a"
    # a service calling 30 greeters: calls between partitions led by different nodes
    assert len(_ok(a.call("/FanOut/greetMany", 30, timeout=60))) == 30

    # one of the engine's three servers dies (the log's leader): the cluster goes on
    info_leader = _stream_leader(jetstream)
    info_leader.process.kill9()
    try:
        for round_ in (1, 2):
            for i, key in enumerate(KEYS):
                srv = (a, b, c)[(i + round_) % 3]
                assert _ok(srv.call(f"/Counter/e-{key}/add", 1, timeout=60)) == round_
    finally:
        info_leader.process.start()
        jetstream.wait_healthy([info_leader])


def _stream_leader(jetstream: JetStreamCluster) -> Any:
    """The engine server that leads the most JetStream streams of this test run."""
    counts: dict[str, int] = {}
    for server in jetstream.servers:
        if not server.process.is_running():
            continue
        details = server.jsz_streams()
        for stream in details:
            leader = (stream.get("cluster") or {}).get("leader")
            if leader:
                counts[leader] = counts.get(leader, 0) + 1
    name = max(counts, key=lambda k: counts[k]) if counts else jetstream.servers[0].name
    return jetstream.server(name)


def test_query_on_any_node_sees_every_partition(
    node: Callable[..., RestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
    tools: NodeTools,
    tmp_path: Path,
) -> None:
    endpoint = ts_endpoint()
    nodes = _three_nodes(node)
    a, b = nodes[0], nodes[1]
    assert all(_leading(srv) < 24 for srv in nodes)  # each store holds only its share
    assert a.register(endpoint.url).status == 201
    values = {f"q{n}": 1000 * n + 7 for n in range(24)}  # over partitions of all three
    for i, (key, value) in enumerate(values.items()):
        assert _ok(nodes[i % 3].call(f"/Counter/{key}/add", value)) == value
    for srv in nodes:
        rows = query_rows(
            srv.admin_url, "SELECT service_key FROM state WHERE service_name = 'Counter'"
        )
        assert sorted(r["service_key"] for r in rows) == sorted(values)
        counted = query_rows(
            srv.admin_url,
            "SELECT count(*) AS n FROM sys_invocation WHERE target_service_name = 'Counter'",
        )
        assert counted == [{"n": len(values)}]
    # the real CLI through one node reads the state of every key, wherever it is led
    cli = RealCli(tools, b, tmp_path)
    for key, value in values.items():
        assert str(value) in cli("state", "get", "Counter", key), key


def test_a_new_leader_starts_from_the_latest_snapshot_and_the_log_after_it(
    node: Callable[..., RestateServerProcess], ts_endpoint: Callable[..., TsEndpoint]
) -> None:
    endpoint = ts_endpoint()
    every = {"RESTATE_PY__CLUSTER__SNAPSHOT_INTERVAL_NUM_RECORDS": "10"}
    a = node("node-a", **every)
    assert a.register(endpoint.url).status == 201
    for n in range(1, 41):
        assert _ok(a.call("/Counter/snap/add", 1)) == n
    _wait_for(lambda: "snapshot at record" in a.log_tail(2000))
    # in flight across the take-over: a sleep whose timer is in the snapshot or after it
    sleeping = _ok(a.call("/Sleeper/sleepOnce/send", {"tag": "snap", "ms": 2000}))
    time.sleep(0.5)
    a.kill9()
    b = node("node-b", **every)  # an empty store: the snapshot, then the log after it
    assert _ok(b.call("/Counter/snap/add", 1, timeout=30)) == 41
    _wait_for(lambda: _leading(b) == 24)
    assert "restored the snapshot at record" in b.log_tail(2000)
    # the first invocations' records were purged from the log: they come from the snapshot
    counted = query_rows(
        b.admin_url, "SELECT count(*) AS n FROM sys_invocation WHERE target_service_key = 'snap'"
    )
    assert counted == [{"n": 41}]
    woke = b.call(
        f"/restate/invocation/{sleeping['invocationId']}/attach", method="GET", timeout=30
    )
    assert _ok(woke) == "woke"
    woken = [x.split()[1] for x in endpoint.side_effects() if x.startswith("woke ")]
    assert woken == ["snap"]
