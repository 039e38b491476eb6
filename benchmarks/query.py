"""``POST /query`` under a realistic load: 100,000 retained invocations, the real CLI.

    .venv/bin/python -m benchmarks.query                     # 100,000 greets first
    .venv/bin/python -m benchmarks.query --invocations 20000
    .venv/bin/python -m benchmarks.query --smoke             # seconds: checks that it runs
    .venv/bin/python -m benchmarks.run --query ...           # the same, after the A/B table

Measures, on our server and on the real restate-server 1.7.12 (``--server``), with the
benchmark's TypeScript endpoint:

* the real CLI's ``invocations describe ID`` and ``invocations list`` (wall time of the
  command, and the "Query took" it reports), and each of their statements alone;
* how long the event loop stalls while a query runs: ``GET /health`` on the admin port
  (served on the same loop) is probed every 2 ms during the first query (DataFusion and
  pyarrow get imported) and during a big aggregation over every row;
* greet c32 throughput alone and with ``restate invocations list`` once a second beside;
* the server's RSS before the first query and after the queries.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.loadgen import build_request, run_closed_loop
from tests.support.endpoints import TsEndpoint
from tests.support.node import NodeTools, ensure_node_tools
from tests.support.procfs import rss_mb
from tests.support.real_cli import RealCli
from tests.support.server import RealRestateServerProcess, RestateServerProcess

HERE = Path(__file__).resolve().parent
SERVICES_APP = HERE / "services" / "app.mjs"
RESULTS_DIR = HERE / "results"
GREET = build_request("POST", "/Greeter/greet", b'"bench"', {"content-type": "application/json"})
# the statements the real CLI 1.7.12 sends (shared/docs/ground-truth/cli-requests.md)
LIST_IDS = """SELECT
            id
        FROM sys_invocation inv
        WHERE status != 'completed'
        ORDER BY inv.created_at DESC, inv.id
        LIMIT 100"""
LIST_COUNT = """SELECT COUNT(1) FROM (SELECT
            *
        FROM sys_invocation inv
        LIMIT 50000
        )
        WHERE status != 'completed'"""
DESCRIBE_ID = """SELECT
            id
        FROM sys_invocation inv
        WHERE inv.id = '{id}'
        LIMIT 1"""
DESCRIBE_JOURNAL = """SELECT
            sj.index, sj.entry_type, sj.completed, sj.invoked_id, sj.invoked_target,
            sj.sleep_wakeup_at, sj.name, sj.promise_name, sj.version, sj.entry_json,
            sj.appended_at
        FROM sys_journal sj
        WHERE
            sj.id = '{id}'
        ORDER BY index DESC
        LIMIT 100"""
DETAILS = """SELECT
            inv.id, inv.target, inv.target_service_ty, inv.idempotency_key, inv.status,
            inv.created_at, inv.modified_at as state_modified_at, inv.pinned_deployment_id,
            inv.retry_count as num_retries, inv.last_failure as last_failure_message,
            inv.last_failure_related_entry_index as last_failure_entry_index,
            inv.last_failure_related_entry_name as last_failure_entry_name,
            inv.last_failure_related_entry_type as last_failure_entry_ty,
            inv.last_attempt_deployment_id, inv.last_attempt_server, inv.next_retry_at,
            inv.last_start_at, inv.invoked_by_id, inv.invoked_by_target, inv.trace_id,
            inv.completion_result, inv.completion_failure,
            dp.id IS NOT NULL as pinned_deployment_exists
        FROM sys_invocation inv
        LEFT JOIN sys_deployment dp ON dp.id = inv.pinned_deployment_id
        WHERE inv.id = '{id}' AND inv.id in ('{id}')"""
LIST_ALL = """SELECT
            id
        FROM sys_invocation inv
        ORDER BY inv.created_at DESC, inv.id
        LIMIT 100"""
STATUS_BY_HANDLER = """SELECT target_service_name, target_handler_name, status,
            COUNT(1) as num_invocations, MIN(created_at) as oldest_at,
            FIRST_VALUE(id ORDER BY created_at ASC) as oldest_invocation
        FROM sys_invocation
        GROUP BY target_service_name, target_handler_name, status"""


def query(admin_port: int, sql: str, accept: str = "application/json") -> tuple[float, bytes]:
    """(milliseconds, body) of one POST /query."""
    connection = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=120)
    started = time.perf_counter()
    connection.request(
        "POST",
        "/v4/query",
        body=json.dumps({"query": sql}),
        headers={"content-type": "application/json", "accept": accept},
    )
    response = connection.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"query failed: {response.status} {body[:300]!r}")
    return elapsed, body


def median_ms(fn: Callable[[], float], runs: int) -> dict[str, float]:
    values = [fn() for _ in range(runs)]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


class LoopProbe:
    """GET /health every ``interval_s`` on one kept-alive connection: how long the
    server's event loop takes to answer while something else runs."""

    def __init__(self, admin_port: int, interval_s: float = 0.002) -> None:
        self._port = admin_port
        self._interval = interval_s
        self._stop = threading.Event()
        self.latencies_ms: list[float] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LoopProbe:
        self._thread.start()
        time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=30)
        while not self._stop.is_set():
            started = time.perf_counter()
            connection.request("GET", "/health")
            connection.getresponse().read()
            self.latencies_ms.append((time.perf_counter() - started) * 1000)
            time.sleep(self._interval)
        connection.close()

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.latencies_ms) or [float("nan")]
        return {
            "samples": len(self.latencies_ms),
            "p50_ms": ordered[len(ordered) // 2],
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "max_ms": ordered[-1],
        }


Server = RestateServerProcess | RealRestateServerProcess


class TimedCli:
    """The real CLI (``tests.support.real_cli.RealCli``), timed."""

    def __init__(self, tools: NodeTools, server: Server, home: Path) -> None:
        self._cli = RealCli(tools, server, home)

    def run(self, *args: str) -> tuple[float, float | None, str]:
        """(wall ms, the CLI's own "Query took" ms or None, output)."""
        started = time.perf_counter()
        done = self._cli.run(*args, timeout=120)
        wall = (time.perf_counter() - started) * 1000
        if done.returncode != 0:
            raise RuntimeError(f"restate {' '.join(args)} failed: {done.stdout}{done.stderr}")
        took = re.search(r"Query took ([0-9.]+)(ms|s|µs)", done.stdout + done.stderr)
        reported = None
        if took:
            scale = {"ms": 1.0, "s": 1000.0, "µs": 0.001}[took.group(2)]
            reported = float(took.group(1)) * scale
        return wall, reported, done.stdout


async def _greets(port: int, total: int, concurrency: int = 32) -> float:
    result = await run_closed_loop(
        "127.0.0.1", port, lambda _i: GREET, concurrency=concurrency, total=total, deadline_s=900
    )
    if result.errors:
        print(f"  ({result.errors} greet errors)", file=sys.stderr)
    return result.throughput


def _with_cli_every_second(cli: TimedCli, stop: threading.Event, took: list[float]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        wall, _, _ = cli.run("invocations", "list")
        took.append(wall)
        stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))


async def bench(args: argparse.Namespace, which: str) -> dict[str, Any]:
    tools = ensure_node_tools()
    work = Path(tempfile.mkdtemp(prefix="restate-bench-query-"))
    endpoint = TsEndpoint(SERVICES_APP, None, None, work_dir=work, tools=tools, name="bench-ts")
    endpoint.start()
    env = {"RESTATE_LOG_FILTER": "warn"}
    server: Server = (
        RestateServerProcess(work / "ours", work, env=env)
        if which == "ours"
        else RealRestateServerProcess(work / "real", work, env=env, tools=tools)
    )
    server.start()
    out: dict[str, Any] = {"server": which, "invocations": args.invocations}
    try:
        server.register(endpoint.url)
        pid = server.process.pid
        assert pid is not None
        admin = server.admin_port
        print(f"loading {args.invocations} greets (retained a day each)", file=sys.stderr)
        started = time.perf_counter()
        await _greets(server.ingress_port, args.invocations)
        out["load_s"] = time.perf_counter() - started
        out["rss_before_first_query_mb"] = rss_mb(pid)

        with LoopProbe(admin) as probe:
            elapsed, _ = query(admin, "SELECT 1")
        out["first_query"] = {"ms": elapsed, "health_probe": probe.summary()}
        with LoopProbe(admin) as probe:
            time.sleep(0.5)
        out["idle_health_probe"] = probe.summary()

        _, body = query(admin, "SELECT id FROM sys_invocation LIMIT 1")
        invocation_id = json.loads(body)["rows"][0]["id"]
        runs = args.runs
        statements = {
            "list: ids (status != completed)": LIST_IDS,
            "list: count of first 50000": LIST_COUNT,
            "describe: id": DESCRIBE_ID.format(id=invocation_id),
            "describe: all columns + join": DETAILS.format(id=invocation_id),
            "describe: journal": DESCRIBE_JOURNAL.format(id=invocation_id),
            "list --all: 100 newest ids": LIST_ALL,
            "services status: per handler": STATUS_BY_HANDLER,
        }
        out["statements_ms"] = {
            name: median_ms(lambda sql=sql: query(admin, sql)[0], runs)
            for name, sql in statements.items()
        }
        home = work / "cli-home"
        home.mkdir()
        cli = TimedCli(tools, server, home)
        commands = {
            "restate invocations describe ID": ("invocations", "describe", invocation_id),
            "restate invocations list": ("invocations", "list"),
            "restate invocations list --all --limit 100": (
                "invocations",
                "list",
                "--all",
                "--limit",
                "100",
            ),
        }
        out["cli"] = {}
        for name, command in commands.items():
            walls, reported = [], []
            for _ in range(runs):
                wall, took, _ = cli.run(*command)
                walls.append(wall)
                if took is not None:
                    reported.append(took)
            out["cli"][name] = {
                "wall_ms": statistics.median(walls),
                "query_took_ms": statistics.median(reported) if reported else None,
            }
        with LoopProbe(admin) as probe:
            elapsed, _ = query(admin, STATUS_BY_HANDLER)
        out["big_query"] = {"ms": elapsed, "health_probe": probe.summary()}
        out["rss_after_queries_mb"] = rss_mb(pid)

        greets = args.greets
        out["greet_c32"] = {"alone": [], "with_cli_list_every_s": []}
        for round_index in range(args.rounds):
            modes = ["alone", "with_cli_list_every_s"]
            for mode in modes if round_index % 2 == 0 else reversed(modes):
                if mode == "alone":
                    out["greet_c32"][mode].append(await _greets(server.ingress_port, greets))
                    continue
                stop = threading.Event()
                took: list[float] = []
                side = threading.Thread(target=_with_cli_every_second, args=(cli, stop, took))
                side.start()
                try:
                    out["greet_c32"][mode].append(await _greets(server.ingress_port, greets))
                finally:
                    stop.set()
                    side.join()
                out["greet_c32"].setdefault("cli_list_wall_ms_under_load", []).extend(took)
        return out
    finally:
        server.stop()
        endpoint.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(out: dict[str, Any]) -> str:
    name = "our server" if out["server"] == "ours" else "the real restate-server 1.7.12"
    lines = [f"/query with {out['invocations']:,} retained invocations ({name})"]
    lines.append(f"  load: {out['load_s']:.0f} s of greets c32")
    first = out["first_query"]
    lines.append(
        f"  first query (ours: imports DataFusion): {first['ms']:.0f} ms; loop stall max "
        f"{first['health_probe']['max_ms']:.1f} ms"
    )
    for name, figures in out["statements_ms"].items():
        lines.append(f"  {name:34} {figures['median']:8.1f} ms (min {figures['min']:.1f})")
    for name, figures in out["cli"].items():
        took = figures["query_took_ms"]
        took_text = f", 'Query took' {took:.0f} ms" if took is not None else ""
        lines.append(f"  {name:44} {figures['wall_ms']:6.0f} ms wall{took_text}")
    idle, big = out["idle_health_probe"], out["big_query"]
    lines.append(
        f"  loop stall (GET /health): idle p99 {idle['p99_ms']:.1f} / max {idle['max_ms']:.1f} ms;"
        f" during a {big['ms']:.0f} ms aggregation over every row p50 "
        f"{big['health_probe']['p50_ms']:.1f} / p99 {big['health_probe']['p99_ms']:.1f} / max "
        f"{big['health_probe']['max_ms']:.1f} ms"
    )
    greet = out["greet_c32"]
    alone = statistics.median(greet["alone"])
    beside = statistics.median(greet["with_cli_list_every_s"])
    lines.append(
        f"  greet c32: {alone:,.0f} req/s alone, {beside:,.0f} req/s with `restate invocations "
        f"list` every second ({beside / alone:.2f})"
    )
    under = greet.get("cli_list_wall_ms_under_load") or []
    if under:
        lines.append(
            f"  invocations list under that load: median {statistics.median(under):.0f} ms"
        )
    lines.append(
        f"  RSS: {out['rss_before_first_query_mb']:.0f} MB before the first query, "
        f"{out['rss_after_queries_mb']:.0f} MB after"
    )
    text = "\n".join(lines)
    print(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--invocations", type=int, default=100_000, help="greets loaded first")
    parser.add_argument("--greets", type=int, default=6000, help="greets per throughput round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating throughput rounds")
    parser.add_argument("--runs", type=int, default=7, help="repetitions per latency figure")
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks that it works")
    parser.add_argument(
        "--server", choices=["ours", "real", "both"], default="both", help="which server(s)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.invocations, args.greets, args.rounds, args.runs = 200, 200, 1, 1
    results: dict[str, Any] = {}
    for which in ("ours", "real") if args.server == "both" else (args.server,):
        out = asyncio.run(bench(args, which))
        out["report"] = report(out)
        results[which] = out
    RESULTS_DIR.mkdir(exist_ok=True)
    stem = "query-smoke" if args.smoke else "query"
    (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
