"""Side-by-side benchmark: this server against the real restate-server, same machine, now.

    .venv/bin/python -m benchmarks.run               # full run (several minutes)
    .venv/bin/python -m benchmarks.run --smoke       # a few seconds: checks that it runs

Both servers run in turn on loopback with the same TypeScript SDK endpoint and the same
bounded workloads, alternating A/B rounds so machine drift cancels out; the table shows
the median over rounds. Results also go to ``benchmarks/results/latest.json`` and a PNG
chart next to it.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.loadgen import RunResult, build_request, run_closed_loop
from benchmarks.proctree import tree_cpu_s, tree_rss_mb
from benchmarks.results_file import RESULTS_DIR
from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.node import ensure_node_tools
from tests.support.server import RealRestateServerProcess, RestateServerProcess

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVICES_APP = HERE / "services" / "app.mjs"
PYTHON_APP = HERE / "services" / "python_app.py"  # BENCH_SDK picks the SDK
# readiness is polled this often when timing startup (the tests' 50 ms would blur it)
STARTUP_POLL_S = 0.005

JSON_HEADERS = {"content-type": "application/json"}
DEFAULT_SERVERS = "ours,real"
# server kinds besides "ours" and "real": ours with some settings, for A/B runs of a feature
# `[py.worker] processes`: partitions in that many worker processes (1 = one process)
WORKERS_ENV = "RESTATE_PY__WORKER__PROCESSES"
SERVER_VARIANTS: dict[str, dict[str, str]] = {
    "ours-nometrics": {"RESTATE_DISABLE_PROMETHEUS": "true"},
    # side by side with "ours" in one run: --servers ours-w2,ours (the ratio is w2/w1)
    "ours-w1": {WORKERS_ENV: "1"},
    "ours-w2": {WORKERS_ENV: "2"},
}


def server_env(kind: str, env: dict[str, str], workers: int | None) -> dict[str, str]:
    """The environment for one server kind: a variant's settings, and for ours (and its
    variants) the worker count when one is given (unset: the server's own default)."""
    env = {**env, **SERVER_VARIANTS.get(kind, {})}
    if workers is not None and kind != "real":
        env[WORKERS_ENV] = str(workers)
    return env


@dataclass
class Workload:
    name: str
    concurrency: int
    total: int
    make: Callable[[int], bytes]
    # "throughput" (higher is better) or "latency" (p50/p99, lower is better)
    kind: str = "throughput"


def _post(path: str, body: str) -> bytes:
    return build_request("POST", path, body.encode(), JSON_HEADERS)


def workloads(scale: float, run_id: str) -> list[Workload]:
    def n(count: int) -> int:
        return max(8, int(count * scale))

    greet = _post("/Greeter/greet", '"bench"')
    return [
        Workload("greet c1", 1, n(600), lambda _i: greet, kind="latency"),
        Workload("greet c32", 32, n(6000), lambda _i: greet),
        Workload("greet c128", 128, n(8000), lambda _i: greet),
        Workload(
            "counter 1000 keys c32",
            32,
            n(5000),
            lambda i: _post(f"/Counter/{run_id}-k{i % 1000}/add", "1"),
        ),
        Workload(
            "counter hot key c32", 32, n(2000), lambda _i: _post(f"/Counter/{run_id}-hot/add", "1")
        ),
        Workload(
            "workflow 3 steps c32",
            32,
            n(3000),
            lambda i: _post(f"/ThreeSteps/{run_id}-w{i}/run", '"x"'),
        ),
        Workload("sleep 100ms c256", 256, n(3000), lambda _i: _post("/Sleeper/sleep", "100")),
    ]


async def _sends(host: str, port: int, scale: float, run_id: str) -> dict[str, float]:
    """10,000 one-way sends: acceptance rate, then the time until all have completed."""
    total = max(64, int(10_000 * scale))
    keys = 64
    accepted = await run_closed_loop(
        host,
        port,
        lambda i: _post(f"/Counter/{run_id}-s{i % keys}/add/send", "1"),
        concurrency=32,
        total=total,
        deadline_s=120,
        ok_statuses=(202,),
    )
    started = time.perf_counter() - accepted.elapsed_s
    deadline = time.monotonic() + 300
    done = 0
    while time.monotonic() < deadline:
        gets = await run_closed_loop(
            host,
            port,
            # no body, no content-type: the Python SDKs declare get() without input
            lambda i: build_request("POST", f"/Counter/{run_id}-s{i}/get"),
            concurrency=8,
            total=keys,
            deadline_s=30,
            collect_bodies=True,
        )
        if gets.errors and not gets.bodies:
            raise RuntimeError(f"every Counter/get failed ({gets.errors}): check the endpoint")
        done = sum(int(v) for v in gets.bodies)
        if done >= accepted.requests:
            break
        await asyncio.sleep(0.25)
    return {
        "accepted_per_s": accepted.throughput,
        "accept_errors": accepted.errors,
        "all_completed_s": time.perf_counter() - started,
        "completed": done,
    }


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, name))
    return total


async def _bench_server(
    kind: str,
    endpoint: TsEndpoint | PyEndpoint,
    work_dir: Path,
    scale: float,
    env: dict[str, str],
    only: list[str],
    workers: int | None = None,
) -> dict[str, Any]:
    base_dir = work_dir / f"{kind}-{time.monotonic_ns()}"
    cls = RealRestateServerProcess if kind == "real" else RestateServerProcess
    env = server_env(kind, env, workers)
    server = cls(base_dir, work_dir, env=env, name=f"bench-{kind}")
    started = time.perf_counter()
    server.start(poll_interval=STARTUP_POLL_S)
    startup_s = time.perf_counter() - started
    try:
        reg = server.register(endpoint.url)
        if reg.status not in (200, 201):
            raise RuntimeError(f"registration failed: {reg.status} {reg.text()}")
        pid = server.process.pid
        assert pid is not None
        out: dict[str, Any] = {
            "startup_s": startup_s,
            # the whole process tree: a supervisor and its workers
            "idle_rss_mb": tree_rss_mb(pid),
            "workers": None if kind == "real" else workers,
        }
        run_id = f"r{time.monotonic_ns()}"
        completed = 0
        endpoint_pid = endpoint.process.pid
        assert endpoint_pid is not None
        for workload in workloads(scale, run_id):
            if only and not any(o in workload.name for o in only):
                continue
            cpu_before = tree_cpu_s(pid)
            endpoint_cpu_before = tree_cpu_s(endpoint_pid)
            result: RunResult = await run_closed_loop(
                "127.0.0.1",
                server.ingress_port,
                workload.make,
                concurrency=workload.concurrency,
                total=workload.total,
                deadline_s=300,
            )
            cpu = tree_cpu_s(pid) - cpu_before
            endpoint_cpu = tree_cpu_s(endpoint_pid) - endpoint_cpu_before
            completed += result.requests
            out[workload.name] = {
                "throughput": result.throughput,
                "p50_ms": result.percentile(50),
                "p99_ms": result.percentile(99),
                "errors": result.errors,
                "requests": result.requests,
                "cpu_ms_per_request": cpu * 1000 / max(1, result.requests),
                "endpoint_cpu_ms_per_request": endpoint_cpu * 1000 / max(1, result.requests),
            }
        if not only or any("send" in o for o in only):
            out["sends"] = await _sends("127.0.0.1", server.ingress_port, scale, run_id)
            completed += int(out["sends"]["completed"])
        out["loaded_rss_mb"] = tree_rss_mb(pid)
        out["completed_invocations"] = completed
        out["disk_bytes_per_invocation"] = _dir_bytes(base_dir) / max(1, completed)
        return out
    finally:
        server.stop()
        shutil.rmtree(base_dir, ignore_errors=True)


def _median(values: list[float]) -> float:
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def summarize(
    rounds: dict[str, list[dict[str, Any]]],
    scale: float,
    left: str = "ours",
    right: str = "real",
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    names = [w.name for w in workloads(scale, "x")]

    def metric(kind: str, getter: Callable[[dict[str, Any]], float]) -> float:
        values = []
        for result in rounds.get(kind, []):
            try:
                values.append(getter(result))
            except KeyError:
                continue
        return _median(values)

    def row(label: str, getter: Callable[[dict[str, Any]], float], higher_better: bool) -> None:
        a = metric(left, getter)
        b = metric(right, getter)
        if a == a and b == b and a and b:
            ratio = a / b if higher_better else b / a
        else:
            ratio = float("nan")
        if a == a or b == b:  # NaN: no round measured it
            rows.append({"metric": label, left: a, right: b, "ratio": ratio})

    for name in names:
        if name.endswith("c1"):
            row(f"{name} p50 ms", lambda r, n=name: r[n]["p50_ms"], False)
            row(f"{name} p99 ms", lambda r, n=name: r[n]["p99_ms"], False)
        row(f"{name} req/s", lambda r, n=name: r[n]["throughput"], True)
    row("sends accepted/s", lambda r: r["sends"]["accepted_per_s"], True)
    row("sends all completed s", lambda r: r["sends"]["all_completed_s"], False)
    row("server CPU ms/greet c128", lambda r: r["greet c128"]["cpu_ms_per_request"], False)
    row(
        "endpoint CPU ms/greet c32",
        lambda r: r["greet c32"]["endpoint_cpu_ms_per_request"],
        False,
    )
    row("RSS idle MB", lambda r: r["idle_rss_mb"], False)
    row("RSS after load MB", lambda r: r["loaded_rss_mb"], False)
    row("disk bytes/invocation", lambda r: r["disk_bytes_per_invocation"], False)
    row("startup s", lambda r: r["startup_s"], False)
    return rows


def print_table(
    rows: list[dict[str, Any]],
    left: str = "ours",
    right: str = "real",
    workers: int | None = None,
) -> str:
    shown = "the server's default" if workers is None else f"{workers} ({WORKERS_ENV})"
    lines = [f"worker processes of our server: {shown}"]
    lines.append(f"{'workload':34} {left:>12} {right:>12} {'ratio':>8}")
    lines.append("-" * len(lines[-1]))
    for r in rows:
        lines.append(
            f"{r['metric']:34} {_fmt(r[left]):>12} {_fmt(r[right]):>12} {_fmt(r['ratio']):>8}"
        )
    lines.append(
        f"ratio: {left}/{right} for rates, {right}/{left} for times and sizes (higher is better)"
    )
    text = "\n".join(lines)
    print(text)
    return text


def _fmt(value: float) -> str:
    if value != value:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def write_chart(rows: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    shown = [r for r in rows if r["ratio"] == r["ratio"]]
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(shown) + 1.5))
    ax.barh([r["metric"] for r in shown], [r["ratio"] for r in shown], color="#4c72b0")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xlabel("ours vs real (higher is better, 1.0 = equal)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def compile_bytecode() -> None:
    """Compile our packages as an installed copy would have them.

    ``pip install .`` writes bytecode at install time, but an editable install leaves
    it to the first import, and with PYTHONDONTWRITEBYTECODE set (as on some machines)
    every start would compile every module again. Startup is measured as a deployed
    server would start.
    """
    for package in ("restate_server", "restate_sdk"):
        compileall.compile_dir(ROOT / package, quiet=1)


async def main_async(args: argparse.Namespace) -> int:
    compile_bytecode()
    tools = ensure_node_tools()
    scale = 0.01 if args.smoke else args.scale
    rounds_count = 1 if args.smoke else args.rounds
    only = [o.strip() for o in args.only.split(",") if o.strip()] if args.only else []
    servers = args.servers.split(",")
    if "real" in servers and not tools.restate_server.exists():
        print("real restate-server not installed; measuring ours only", file=sys.stderr)
        servers = [s for s in servers if s != "real"]
    env = {"RESTATE_LOG_FILTER": "warn"}
    if args.no_sync:
        env["RESTATE_LOG_SERVER__ROCKSDB_DISABLE_WAL_FSYNC"] = "true"
    work_dir = Path(tempfile.mkdtemp(prefix="restate-bench-"))
    endpoint = TsEndpoint(SERVICES_APP, None, None, work_dir=work_dir, tools=tools, name="bench-ts")
    endpoint.start()
    rounds: dict[str, list[dict[str, Any]]] = {s: [] for s in servers}
    try:
        for index in range(rounds_count):
            order = servers if index % 2 == 0 else list(reversed(servers))
            for kind in order:
                print(f"round {index + 1}/{rounds_count}: {kind}", file=sys.stderr)
                rounds[kind].append(
                    await _bench_server(kind, endpoint, work_dir, scale, env, only, args.workers)
                )
    finally:
        endpoint.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    # the table compares the first two servers given (ours and real by default)
    left, right = (servers[0], servers[1]) if len(servers) >= 2 else ("ours", "real")
    rows = summarize(rounds, scale, left, right)
    table = print_table(rows, left, right, args.workers)
    sdk_rows: list[dict[str, Any]] = []
    sdk_table = ""
    sdk_rounds: dict[str, list[dict[str, Any]]] = {}
    if args.sdk_table:
        sdk_scale = 0.01 if args.smoke else args.sdk_scale
        sdk_rounds = await _sdk_rounds(rounds_count, sdk_scale, env, only, args.workers)
        print("\nSDKs, both against our server (the same Python handler code):")
        sdk_rows = summarize(sdk_rounds, sdk_scale, "restate_sdk", "official")
        sdk_table = print_table(sdk_rows, "restate_sdk", "official", args.workers)
    RESULTS_DIR.mkdir(exist_ok=True)
    stem = "smoke" if args.smoke else "latest"
    if args.servers != DEFAULT_SERVERS:
        stem = f"{stem}-{'-vs-'.join(servers)}"  # an A/B of variants keeps latest.json
    if args.workers is not None:
        stem = f"{stem}-w{args.workers}"  # a worker count keeps latest.json too
    payload = {
        "workers": args.workers,  # None: the server's default
        "rows": rows,
        "rounds": rounds,
        "table": table,
        "sdk_rows": sdk_rows,
        "sdk_rounds": sdk_rounds,
        "sdk_table": sdk_table,
    }
    (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(payload, indent=2, default=str))
    if not args.smoke:
        write_chart(rows, RESULTS_DIR / f"{stem}.png")
    return 0


async def _sdk_rounds(
    rounds_count: int,
    scale: float,
    env: dict[str, str],
    only: list[str],
    workers: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Our SDK and the official Python SDK serving the same handlers, on our server."""
    rounds: dict[str, list[dict[str, Any]]] = {"restate_sdk": [], "official": []}
    sdks = {"restate_sdk": "restate_sdk", "official": "restate"}
    work_dir = Path(tempfile.mkdtemp(prefix="restate-bench-sdk-"))
    try:
        for index in range(rounds_count):
            order = list(sdks) if index % 2 == 0 else list(reversed(sdks))
            for label in order:
                print(f"sdk round {index + 1}/{rounds_count}: {label}", file=sys.stderr)
                endpoint = PyEndpoint(
                    PYTHON_APP, None, {"BENCH_SDK": sdks[label]}, work_dir=work_dir, name=label
                )
                endpoint.start()
                try:
                    rounds[label].append(
                        await _bench_server("ours", endpoint, work_dir, scale, env, only, workers)
                    )
                finally:
                    endpoint.stop()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks that it works")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds per server")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    parser.add_argument(
        "--servers",
        default=DEFAULT_SERVERS,
        help="comma list of ours, real and variants of ours: " + ", ".join(SERVER_VARIANTS),
    )
    parser.add_argument(
        "--sdk-table",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also compare restate_sdk with the official Python SDK on our server",
    )
    parser.add_argument("--sdk-scale", type=float, default=0.2, help="request counts, SDK table")
    parser.add_argument("--only", default="", help="comma list of workload name parts")
    parser.add_argument("--no-sync", action="store_true", help="turn fsync off (not headline)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"worker processes of our server ({WORKERS_ENV}); default: the server's own",
    )
    parser.add_argument(
        "--query",
        action="store_true",
        help="then the /query benchmark (benchmarks/query.py, 100,000 retained invocations)",
    )
    args = parser.parse_args()
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be 1 or more")
    code = asyncio.run(main_async(args))
    if args.query and code == 0:
        from benchmarks import query

        code = query.main(["--smoke"] if args.smoke else [])
    sys.exit(code)


if __name__ == "__main__":
    main()
