"""Partitions over worker processes (``[py.worker] processes``), end to end.

Our server with a supervisor and worker processes, and real SDK endpoints (the
TypeScript SDK, the official Python SDK and ours): calls between keys led by
different workers, sends with a delay, sleeps, workflows and awakeables; a worker
killed under way; and restarts with another worker count on the same data.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from restate_server.partition.table import PartitionTable
from restate_server.protocol.ids import partition_key_for_key
from restate_server.storage.stores import worker_of
from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.http import query_rows
from tests.support.metrics import scrape_samples
from tests.support.node import NodeTools
from tests.support.real_cli import RealCli
from tests.support.server import RestateServerProcess
from tests.support.waiting import wait_for

Endpoint = TsEndpoint | PyEndpoint
WORKERS_ENV = "RESTATE_PY__WORKER__PROCESSES"
# enough keys that both workers lead some of them (24 partitions, p % N)
KEYS = [f"k{n}" for n in range(16)]


def _ok(resp: Any) -> Any:
    assert resp.status in (200, 202), f"{resp.status} {resp.text()}"
    return resp.json()


_wait_for = partial(wait_for, timeout=20.0)


def _workers(srv: RestateServerProcess) -> list[int]:
    """The supervisor's child processes (its workers), by PID."""
    pid = srv.process.pid
    assert pid is not None
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def _stores(srv: RestateServerProcess) -> list[str]:
    return sorted(name for name in os.listdir(srv.base_dir) if name.startswith("db"))


@pytest.fixture
def two_workers(
    server: Callable[..., RestateServerProcess], endpoint: Endpoint
) -> RestateServerProcess:
    srv = server(env={WORKERS_ENV: "2", "RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "300ms"})
    reg = srv.register(endpoint.url)
    assert reg.status == 201, reg.text()
    return srv


def test_the_building_blocks_work_across_workers(
    two_workers: RestateServerProcess, endpoint: Endpoint
) -> None:
    srv = two_workers
    assert len(_workers(srv)) == 2
    assert _stores(srv) == ["db", "db-1"]
    for round_ in (1, 2):
        for key in KEYS:
            assert _ok(srv.call(f"/Counter/{key}/add", 1)) == round_
    # a service calling 30 greeters (random partitions, both workers) and gathering
    assert len(_ok(srv.call("/FanOut/greetMany", 30, timeout=60))) == 30
    # one-way sends with a delay: timers of either worker
    for key in KEYS[:4]:
        assert srv.call(f"/Counter/later-{key}/add/send?delay=500ms", 5).status == 202
    for key in KEYS[:4]:
        _wait_for(lambda key=key: _ok(srv.call(f"/Counter/later-{key}/get")) == 5)
    # a workflow waiting on its promise, resolved by a call to its shared handler
    assert srv.call("/Payment/order1/run/send", {"amount": 42}).status == 202
    _wait_for(lambda: _ok(srv.call("/Payment/order1/status")) == "waiting")
    assert _ok(srv.call("/Payment/order1/approve")) == "approved"
    attach = srv.call("/restate/workflow/Payment/order1/attach", method="GET", timeout=30)
    assert attach.status == 200, attach.text()
    # an awakeable resolved through the ingress (whichever worker takes the request)
    invocation = _ok(srv.call("/Awaker/wait/send", "aw"))["invocationId"]
    line = _wait_for(lambda: [x for x in endpoint.side_effects() if x.startswith("awk aw ")])
    awakeable = line[0].split()[-1]
    resolved = srv.call(f"/restate/awakeables/{awakeable}/resolve", "from outside")
    assert resolved.status == 202, resolved.text()
    answer = srv.call(f"/restate/invocation/{invocation}/attach", method="GET", timeout=30)
    assert _ok(answer) == "got from outside"


def test_query_metrics_and_the_cli_see_every_worker(
    two_workers: RestateServerProcess, tools: NodeTools, tmp_path: Path
) -> None:
    srv = two_workers
    for n, key in enumerate(KEYS):
        assert _ok(srv.call(f"/Counter/{key}/add", n + 1)) == n + 1
    rows = query_rows(
        srv.admin_url,
        "SELECT service_key, value_utf8, partition_key FROM state "
        "WHERE service_name = 'Counter' AND key = 'count'",
    )
    assert {row["service_key"]: json.loads(row["value_utf8"]) for row in rows} == {
        key: n + 1 for n, key in enumerate(KEYS)
    }
    # the rows came from both workers (partition p is led by worker p % 2)
    table = PartitionTable(24)
    assert {worker_of(table.partition_of(row["partition_key"]), 2) for row in rows} == {0, 1}
    # aggregated over both workers' partitions, as in one process
    counted = query_rows(
        srv.admin_url,
        "SELECT COUNT(*) AS n, SUM(CAST(value_utf8 AS INT)) AS total FROM state "
        "WHERE service_name = 'Counter' AND key = 'count'",
    )
    assert counted == [{"n": len(KEYS), "total": sum(range(1, len(KEYS) + 1))}]
    registry = query_rows(srv.admin_url, "SELECT COUNT(*) AS n FROM sys_service")
    assert registry[0]["n"] > 0

    samples = scrape_samples(srv.node_url)
    assert next(s.value for s in samples if s.name == "restate_num_partitions") == 24
    assert next(s.value for s in samples if s.name == "restate_num_active_partitions") == 24
    completed = sum(
        s.value
        for s in samples
        if s.name == "restate_ingress_requests_total"
        and s.labels.get("rpc_service") == "Counter"
        and s.labels.get("status") == "completed"
    )
    assert completed == len(KEYS)

    cli = RealCli(tools, srv, tmp_path)
    for n, key in ((0, KEYS[0]), (5, KEYS[5]), (11, KEYS[11])):
        shown = cli("state", "get", "Counter", key)
        assert "count" in shown and str(n + 1) in shown, shown


def test_a_killed_worker_is_restarted_and_loses_nothing(
    two_workers: RestateServerProcess,
) -> None:
    srv = two_workers
    for key in KEYS:
        assert _ok(srv.call(f"/Counter/{key}/add", 1)) == 1
    victim = _workers(srv)[1]
    os.kill(victim, signal.SIGKILL)
    # the other worker takes the new connections; calls for the dead worker's keys wait
    # in its link until the supervisor has started it again
    for key in KEYS:
        assert _ok(srv.call(f"/Counter/{key}/add", 1, timeout=30)) == 2
    workers = _workers(srv)
    assert len(workers) == 2 and victim not in workers
    for key in KEYS:
        assert _ok(srv.call(f"/Counter/{key}/get")) == 2


def _leader(key: str, workers: int = 2) -> int:
    """The worker that leads a virtual-object or workflow key (24 partitions)."""
    return worker_of(PartitionTable(24).partition_of(partition_key_for_key("", key)), workers)


def _answered(srv: RestateServerProcess, path: str, body: Any, key: str | None) -> Any:
    """Call with an idempotency key (a workflow's own key is one), again after a
    connection the killed worker held broke: an invocation accepted before is
    answered, not run again."""
    deadline = time.monotonic() + 90
    headers = {"idempotency-key": key} if key is not None else {}
    while True:
        try:
            resp = srv.call(path, body, headers=headers, timeout=60)
        except (OSError, http.client.HTTPException):
            assert time.monotonic() < deadline, f"{path} never answered"
            time.sleep(0.05)
            continue
        return _ok(resp)


def test_a_worker_killed_under_mixed_load_loses_nothing(
    two_workers: RestateServerProcess,
) -> None:
    srv = two_workers
    supervisor, victim = srv.process.pid, _workers(srv)[1]
    assert supervisor is not None
    adds = [(f"add-{n}", KEYS[n % len(KEYS)]) for n in range(64)]
    with ThreadPoolExecutor(8) as pool:
        load: list[Future[Any]] = [
            pool.submit(_answered, srv, f"/Counter/{key}/add", 1, ident) for ident, key in adds
        ]
        # calls from a service to keys of either worker, delayed sends between them,
        # sleeps and workflows
        load += [
            pool.submit(_answered, srv, "/FanOut/addMany", {"key": f"fan-{n}", "n": 4}, f"f{n}")
            for n in range(4)
        ]
        load += [
            pool.submit(
                _answered, srv, "/FanOut/sendLater", {"key": f"later-{n}", "ms": 800}, f"l{n}"
            )
            for n in range(4)
        ]
        sleeps = [
            pool.submit(
                _answered, srv, "/Sleeper/sleepOnce/send", {"tag": f"s{n}", "ms": 1200}, f"s{n}"
            )
            for n in range(4)
        ]
        flows = [
            pool.submit(_answered, srv, f"/Payment/pay-{n}/run/send", {"amount": n}, None)
            for n in range(4)
        ]
        _wait_for(lambda: sum(f.done() for f in load) >= 16)
        # the supervisor held still: worker 1 stays dead until it may restart it
        os.kill(supervisor, signal.SIGSTOP)
        try:
            os.kill(victim, signal.SIGKILL)
            alive = next(k for k in (f"probe-{n}" for n in range(64)) if _leader(k) == 0)
            waiting = next(k for k in (f"probe-{n}" for n in range(64)) if _leader(k) == 1)
            blocked = pool.submit(_answered, srv, f"/Counter/{waiting}/add", 1, "blocked")
            # the other worker answers for its keys meanwhile
            assert _answered(srv, f"/Counter/{alive}/add", 1, "alive") == 1
            time.sleep(0.5)
            assert not blocked.done()
        finally:
            os.kill(supervisor, signal.SIGCONT)
        assert blocked.result(timeout=60) == 1
        for future in [*load, *sleeps, *flows]:
            future.result(timeout=90)
    workers = _workers(srv)
    assert len(workers) == 2 and victim not in workers
    # every accepted invocation ran exactly once: no add lost, none applied twice
    for key in KEYS:
        expected = sum(1 for _, k in adds if k == key)
        assert _ok(srv.call(f"/Counter/{key}/get")) == expected, key
    for n in range(4):
        assert _ok(srv.call(f"/Counter/fan-{n}/get")) == 4
        _wait_for(lambda n=n: _ok(srv.call(f"/Counter/later-{n}/get")) == 1)
    for future in sleeps:
        invocation = future.result()["invocationId"]
        woke = srv.call(f"/restate/invocation/{invocation}/attach", method="GET", timeout=30)
        assert _ok(woke) == "woke"
    for n in range(4):
        _wait_for(lambda n=n: _ok(srv.call(f"/Payment/pay-{n}/status")) == "waiting")
        assert _ok(srv.call(f"/Payment/pay-{n}/approve")) == "approved"
        done = srv.call(f"/restate/workflow/Payment/pay-{n}/attach", method="GET", timeout=30)
        assert _ok(done) == "completed"


def test_restarts_with_another_worker_count_keep_everything(
    two_workers: RestateServerProcess, endpoint: Endpoint
) -> None:
    srv = two_workers
    for key in KEYS:
        assert _ok(srv.call(f"/Counter/{key}/add", 1)) == 1
    expected = 1
    for workers, stores in (("1", ["db"]), ("3", ["db", "db-1", "db-2"]), ("2", ["db", "db-1"])):
        # a sleep and a delayed send in flight across the restart
        tag = f"w{workers}"
        sleeping = _ok(srv.call("/Sleeper/sleepOnce/send", {"tag": tag, "ms": 1500}))
        assert srv.call(f"/Counter/delayed-{tag}/add/send?delay=1s", 3).status == 202
        time.sleep(0.5)  # the sleep is journaled and its timer stored
        srv.stop()
        srv.env[WORKERS_ENV] = workers
        srv.start()
        assert _stores(srv) == stores
        expected += 1
        for key in KEYS:
            assert _ok(srv.call(f"/Counter/{key}/add", 1)) == expected
        woke = srv.call(
            f"/restate/invocation/{sleeping['invocationId']}/attach", method="GET", timeout=30
        )
        assert _ok(woke) == "woke"
        _wait_for(lambda tag=tag: _ok(srv.call(f"/Counter/delayed-{tag}/get")) == 3)
    assert [line.split()[1] for line in endpoint.side_effects() if line.startswith("woke ")] == [
        "w1",
        "w3",
        "w2",
    ]
