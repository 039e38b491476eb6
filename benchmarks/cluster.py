"""Cluster rows: greet, counter and workflow on a three-node loopback cluster, beside one
node with the engine and the single-node server.

    .venv/bin/python -m benchmarks.cluster            # 3 rounds (a few minutes)
    .venv/bin/python -m benchmarks.cluster --quick    # seconds: checks that it runs

Three set-ups, each with the same TypeScript SDK endpoint and workloads, in alternating
rounds (medians shown):

- ``single``: our server alone, embedded RocksDB with a synced WAL (the default);
- ``cluster-1``: one node in cluster mode with a three-server JetStream (R=3): every
  commit group is a quorum-acknowledged append instead of an fsync, nothing forwarded;
- ``cluster-3``: three nodes and the same engine; the load is spread over the three
  ingresses, so two thirds of the requests are forwarded to the partition's leader.

Besides throughput and latency it reports the log records appended per request (the
engine's stream sequence over the requests: one per commit group that had writes) and
the CPU per request of the whole set-up (nodes plus engine servers), which together
explain what the write path costs. Everything runs on loopback; every process started
is stopped by its PID, also on error. Results: ``benchmarks/results/cluster.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.loadgen import RunResult, build_request, run_closed_loop
from benchmarks.proctree import tree_cpu_s
from benchmarks.results_file import results_path
from benchmarks.run import SERVICES_APP, compile_bytecode
from tests.support.endpoints import TsEndpoint
from tests.support.jetstream import JetStreamCluster, nats_server_path, running_cluster
from tests.support.node import ensure_node_tools
from tests.support.server import RestateServerProcess

JSON_HEADERS = {"content-type": "application/json"}
SETUPS = ("single", "cluster-1", "cluster-3")


def _post(path: str, body: str) -> bytes:
    return build_request("POST", path, body.encode(), JSON_HEADERS)


def workloads(scale: float, run_id: str) -> list[tuple[str, int, int, Callable[[int], bytes]]]:
    """(name, concurrency, total requests, request of index i)."""

    def n(count: int) -> int:
        return max(12, int(count * scale))

    greet = _post("/Greeter/greet", '"bench"')

    def add(i: int) -> bytes:
        return _post(f"/Counter/{run_id}-k{i % 1000}/add", "1")

    def workflow(i: int) -> bytes:
        return _post(f"/ThreeSteps/{run_id}-w{i}/run", '"x"')

    return [
        ("greet c1", 1, n(400), lambda _i: greet),
        ("greet c32", 32, n(4000), lambda _i: greet),
        ("counter 1000 keys c32", 32, n(3000), add),
        ("workflow 3 steps c32", 32, n(1500), workflow),
    ]


class Setup:
    """The server processes of one set-up, started for one round."""

    def __init__(self, kind: str, work_dir: Path, engine: JetStreamCluster | None) -> None:
        self.kind = kind
        self.engine = engine
        count = 3 if kind == "cluster-3" else 1
        cluster_name = f"bench{time.monotonic_ns()}"
        self.nodes: list[RestateServerProcess] = []
        for index in range(count):
            env = {"RESTATE_LOG_FILTER": "warn"}
            if engine is not None:
                env |= {
                    "RESTATE_CLUSTER_NAME": cluster_name,
                    "RESTATE_NODE_NAME": f"node-{index + 1}",
                    "RESTATE_PY__CLUSTER__ENGINE_ADDRESS": ",".join(engine.urls),
                    "RESTATE_PY__CLUSTER__FABRIC_BIND_ADDRESS": "127.0.0.1:0",
                    # records counted from the stream's sequence: no purges needed here
                    "RESTATE_PY__CLUSTER__SNAPSHOT_INTERVAL_NUM_RECORDS": "0",
                }
            base_dir = work_dir / f"{kind}-{index}-{time.monotonic_ns()}"
            self.nodes.append(
                RestateServerProcess(base_dir, work_dir, env=env, name=f"{kind}-{index + 1}")
            )

    def start(self) -> None:
        with ThreadPoolExecutor(len(self.nodes)) as pool:  # together: each takes its share
            list(pool.map(lambda node: node.start(), self.nodes))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
            shutil.rmtree(node.base_dir, ignore_errors=True)

    def pids(self) -> list[int]:
        return self.node_pids() + self.engine_pids()

    def node_pids(self) -> list[int]:
        return [pid for pid in (node.process.pid for node in self.nodes) if pid is not None]

    def engine_pids(self) -> list[int]:
        if self.engine is None:
            return []
        pids = (server.process.pid for server in self.engine.servers)
        return [pid for pid in pids if pid is not None]

    def log_records(self) -> int:
        """Records appended to the engine's log streams so far (their last sequences)."""
        if self.engine is None:
            return 0
        server = self.engine.servers[0]
        return sum(
            (stream.get("state") or {}).get("last_seq", 0)
            for stream in server.jsz_streams()
            if stream.get("name", "").endswith("_log")
        )


async def _spread(setup: Setup, make: Callable[[int], bytes], concurrency: int, total: int):
    """One closed loop per node ingress, the concurrency and requests split evenly."""
    nodes = setup.nodes
    shares = [max(1, concurrency // len(nodes))] * len(nodes)
    totals = [total // len(nodes) + (1 if i < total % len(nodes) else 0) for i in range(len(nodes))]
    offsets = [sum(totals[:i]) for i in range(len(nodes))]
    results: list[RunResult] = await asyncio.gather(
        *(
            run_closed_loop(
                "127.0.0.1",
                node.ingress_port,
                lambda i, o=offset: make(o + i),
                concurrency=share,
                total=count,
                deadline_s=300,
            )
            for node, share, count, offset in zip(nodes, shares, totals, offsets, strict=True)
        )
    )
    return results


async def bench_setup(setup: Setup, endpoint: TsEndpoint, scale: float) -> dict[str, Any]:
    setup.start()
    try:
        registered = setup.nodes[0].register(endpoint.url)
        if registered.status not in (200, 201):
            raise RuntimeError(f"registration failed: {registered.status} {registered.text()}")
        out: dict[str, Any] = {}
        run_id = f"r{time.monotonic_ns()}"
        for name, concurrency, total, make in workloads(scale, run_id):
            pids, engine_pids = setup.pids(), setup.engine_pids()
            cpu_before = sum(tree_cpu_s(pid) for pid in pids)
            engine_cpu_before = sum(tree_cpu_s(pid) for pid in engine_pids)
            records_before = setup.log_records()
            started = time.perf_counter()
            if concurrency == 1:  # latency: one client, through the first node
                results = [
                    await run_closed_loop(
                        "127.0.0.1",
                        setup.nodes[0].ingress_port,
                        make,
                        concurrency=1,
                        total=total,
                        deadline_s=300,
                    )
                ]
            else:
                results = await _spread(setup, make, concurrency, total)
            elapsed = time.perf_counter() - started
            requests = sum(r.requests for r in results)
            latencies = sorted(x for r in results for x in r.latencies_ms)
            cpu = sum(tree_cpu_s(pid) for pid in pids) - cpu_before
            engine_cpu = sum(tree_cpu_s(pid) for pid in engine_pids) - engine_cpu_before
            out[name] = {
                "throughput": requests / elapsed if elapsed > 0 else 0.0,
                "p50_ms": _percentile(latencies, 50),
                "p99_ms": _percentile(latencies, 99),
                "errors": sum(r.errors for r in results),
                "requests": requests,
                "cpu_ms_per_request": cpu * 1000 / max(1, requests),
                "engine_cpu_ms_per_request": engine_cpu * 1000 / max(1, requests),
                "log_records_per_request": (setup.log_records() - records_before)
                / max(1, requests),
            }
        return out
    finally:
        setup.stop()


def _percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def summarize(rounds: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for name, _, _, _ in workloads(1.0, "x"):
        row: dict[str, Any] = {"workload": name}
        for kind, runs in rounds.items():
            values = [run[name] for run in runs if name in run]
            if not values:
                continue
            row[kind] = {
                key: statistics.median(v[key] for v in values)
                for key in values[0]
                if isinstance(values[0][key], (int, float))
            }
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]], kinds: list[str]) -> str:
    columns = (
        ("req/s", "throughput", 0),
        ("p50 ms", "p50_ms", 1),
        ("CPU ms", "cpu_ms_per_request", 2),
        ("engine", "engine_cpu_ms_per_request", 2),
        ("records", "log_records_per_request", 2),
    )
    width = 8 * len(columns) + 2
    lines = [
        f"{'':24}" + "".join(f"{kind:>{width}}" for kind in kinds),
        f"{'workload':24}" + "".join("  " + "".join(f"{c[0]:>8}" for c in columns) for _ in kinds),
    ]
    for row in rows:
        cells = []
        for kind in kinds:
            m = row.get(kind)
            values = [f"{m[key]:>8.{digits}f}" if m else f"{'-':>8}" for _, key, digits in columns]
            cells.append("  " + "".join(values))
        lines.append(f"{row['workload']:24}" + "".join(cells))
    lines.append(
        "(per request: CPU ms of the nodes and engine servers, of which the engine's; "
        "records appended to the engine's log)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--setups", default=",".join(SETUPS), help=f"of {', '.join(SETUPS)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="request counts times this")
    parser.add_argument("--quick", action="store_true", help="one small round: checks it runs")
    parser.add_argument("--out", default=None, help="JSON file (default cluster.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.scale = 1, 0.03
    kinds = [k.strip() for k in args.setups.split(",") if k.strip()]
    if not kinds or any(k not in SETUPS for k in kinds):
        parser.error(f"--setups: some of {', '.join(SETUPS)}")
    if any(k != "single" for k in kinds) and nats_server_path() is None:
        print("nats-server not found: apt-get install -y nats-server", file=sys.stderr)
        return 2
    compile_bytecode()
    tools = ensure_node_tools()
    work_dir = Path(tempfile.mkdtemp(prefix="restate-bench-cluster-"))
    rounds: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    endpoint = TsEndpoint(SERVICES_APP, None, None, work_dir=work_dir, tools=tools, name="ts")
    endpoint.start()
    began = time.perf_counter()
    try:
        with running_cluster(work_dir / "engine") as engine:
            for index in range(args.rounds):
                order = kinds if index % 2 == 0 else kinds[::-1]
                for kind in order:
                    print(f"round {index + 1}/{args.rounds}: {kind}", file=sys.stderr)
                    setup = Setup(kind, work_dir, None if kind == "single" else engine)
                    rounds[kind].append(asyncio.run(bench_setup(setup, endpoint, args.scale)))
    finally:
        endpoint.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    rows = summarize(rounds)
    table = format_table(rows, kinds)
    print(table)
    wall = round(time.perf_counter() - began, 1)
    print(f"\n{args.rounds} round(s), scale {args.scale:g}, {os.cpu_count()} CPUs, {wall} s")
    path = results_path(args.out, "cluster", args.quick)
    payload = {"rounds": rounds, "rows": rows, "table": table, "scale": args.scale}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"written {path}", file=sys.stderr)
    errors = sum(m["errors"] for runs in rounds.values() for run in runs for m in run.values())
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
