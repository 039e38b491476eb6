"""Server-bound load: delayed one-way sends under wrk, ours (N worker processes) and real.

    .venv/bin/python -m benchmarks.sends_wrk                       # ours w1,w2 and real, 10 s
    .venv/bin/python -m benchmarks.sends_wrk --servers ours,real --workers 1,2,4,8 \\
        --duration 10 --connections 64 --keys 1000
    .venv/bin/python -m benchmarks.sends_wrk --quick               # 2 s each: checks it runs
    .venv/bin/python -m benchmarks.sends_wrk --independent 2       # + 2 separate servers

Every request is ``POST /Counter/<key>/add/send?delay=1h`` over 1,000 keys
(``wrk/send_delay.lua``). Accepting one is the server's own work: ingress, the partition
command, a synced commit, the answer. The invocation is due in an hour, so the SDK
endpoint is never called during the run and does not limit it (its CPU is reported as a
check). Load comes from Debian's ``wrk`` (``apt-get install -y wrk``), ``-t1 -c64``.

Per server: sends/s and latency p50/p99 (wrk), server CPU per send (user + system of the
server's whole process tree from /proc, so a supervisor with worker children counts in
full), wrk's own CPU, resident memory of each process in the tree, and base-dir bytes per
accepted send. Ours runs once per worker count (``RESTATE_PY__WORKER__PROCESSES``, which a
server without worker processes ignores); the real restate-server 1.7.12 runs once.
``--independent N`` adds N single-process servers of ours side by side, each with its
own data and one wrk with 1/N of the connections: nothing is forwarded between them, so
their sum is what N workers could reach on this machine if forwarding cost nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.proctree import tree_cpu_s, tree_rss
from benchmarks.results_file import results_path
from benchmarks.run import (
    SERVICES_APP,
    WORKERS_ENV,
    _dir_bytes,
    compile_bytecode,
    server_env,
)
from tests.support.endpoints import TsEndpoint
from tests.support.node import ensure_node_tools
from tests.support.ports import LOOPBACK
from tests.support.server import RealRestateServerProcess, RestateServerProcess

HERE = Path(__file__).resolve().parent
LUA_SCRIPT = HERE / "wrk" / "send_delay.lua"
SEND_TAIL = "add/send?delay=1h"  # Counter/add: a virtual-object handler of services/app.mjs
WARMUP_S = 1
# wrk ends at its -d; this much more and it is killed (by its PID)
WRK_GRACE_S = 30


@dataclass(frozen=True)
class Config:
    kind: str  # "ours" (or a variant of it) or "real"
    workers: int | None  # None for real
    # independent servers side by side, each with its own data and a share of the
    # connections: no request crosses between them, so N single processes bound what N
    # workers could reach on this machine if forwarding cost nothing
    copies: int = 1

    @property
    def label(self) -> str:
        one = self.kind if self.workers is None else f"{self.kind} w{self.workers}"
        return one if self.copies == 1 else f"{self.copies} x {one}"


# ---- wrk ---------------------------------------------------------------------------------


class WrkRun:
    """One bounded wrk process under way; ``finish`` waits for it and reads its summary."""

    def __init__(
        self, port: int, duration_s: int, connections: int, threads: int, keys: int, prefix: str
    ) -> None:
        argv = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration_s}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA_SCRIPT),
            f"http://{LOOPBACK}:{port}",
            "--",
            str(keys),
            prefix,
            str(threads),
            SEND_TAIL,
            "1",
        ]
        self._out = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by finish()
        self._proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT)
        self._deadline = time.monotonic() + duration_s + WRK_GRACE_S

    def finish(self) -> dict[str, Any]:
        """wrk's summary (from the Lua ``done``) plus wrk's own CPU."""
        proc, out = self._proc, self._out
        try:
            usage = None
            while usage is None:
                pid, status, usage_now = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    usage = usage_now
                    proc.returncode = os.waitstatus_to_exitcode(status)
                elif time.monotonic() > self._deadline:
                    proc.kill()
                    proc.wait()
                    raise RuntimeError(f"wrk still running {WRK_GRACE_S} s after -d; killed")
                else:
                    time.sleep(0.05)
            out.seek(0)
            text = out.read()
        finally:
            out.close()
        if proc.returncode != 0:
            raise RuntimeError(f"wrk exited with {proc.returncode}:\n{text}")
        line = next((ln for ln in text.splitlines() if ln.startswith("WRK_JSON ")), None)
        if line is None:
            raise RuntimeError(f"no WRK_JSON line in wrk's output:\n{text}")
        result: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
        result["wrk_cpu_s"] = usage.ru_utime + usage.ru_stime
        # wrk counts answers with status >= 400 as errors; the others are 202 Accepted
        result["accepted"] = result["requests"] - result["errors"]["status"]
        return result


def run_wrk(
    ports: list[int], duration_s: int, connections: int, threads: int, keys: int, prefix: str
) -> dict[str, Any]:
    """One wrk per port at once, the connections shared out; their summaries added up
    (latency percentiles: the highest of them)."""
    share = max(threads, connections // len(ports))
    runs = [
        WrkRun(port, duration_s, share, threads, keys, f"{prefix}p{i}")
        for i, port in enumerate(ports)
    ]
    results = [run.finish() for run in runs]
    if len(results) == 1:
        return results[0]
    total: dict[str, Any] = {
        "requests": sum(r["requests"] for r in results),
        "duration_us": max(r["duration_us"] for r in results),
        "bytes": sum(r["bytes"] for r in results),
        "errors": {k: sum(r["errors"][k] for r in results) for k in results[0]["errors"]},
        "latency_us": {
            k: max(r["latency_us"][k] for r in results) for k in results[0]["latency_us"]
        },
        "wrk_cpu_s": sum(r["wrk_cpu_s"] for r in results),
        "accepted": sum(r["accepted"] for r in results),
        "copies": results,
    }
    return total


# ---- one server --------------------------------------------------------------------------


def bench_one(
    config: Config,
    endpoint: TsEndpoint,
    work_dir: Path,
    args: argparse.Namespace,
    env: dict[str, str],
) -> dict[str, Any]:
    slug = config.label.replace(" ", "-")
    stamp = time.monotonic_ns()
    base_dirs = [work_dir / f"{slug}-{stamp}-{i}" for i in range(config.copies)]
    cls = RealRestateServerProcess if config.kind == "real" else RestateServerProcess
    servers = [
        cls(
            base_dir,
            work_dir,
            env=server_env(config.kind, env, config.workers),
            name=f"wrk-{slug}-{i}",
        )
        for i, base_dir in enumerate(base_dirs)
    ]
    try:
        for server in servers:
            server.start()
        endpoint_pid = endpoint.process.pid
        pids = [server.process.pid for server in servers]
        assert endpoint_pid is not None and all(pid is not None for pid in pids)
        run_id = f"r{stamp}"
        for server in servers:
            reg = server.register(endpoint.url)
            if reg.status not in (200, 201):
                raise RuntimeError(f"registration failed: {reg.status} {reg.text()}")
            probe = server.call(f"/Counter/{run_id}-probe/{SEND_TAIL}", 1)
            if probe.status != 202:
                raise RuntimeError(f"a delayed send was answered {probe.status}: {probe.text()}")
        idle_rss = [p for pid in pids for p in tree_rss(pid)]
        idle_disk = sum(_dir_bytes(base_dir) for base_dir in base_dirs)
        ports = [server.ingress_port for server in servers]
        warmup = run_wrk(ports, WARMUP_S, args.connections, args.threads, args.keys, run_id + "w")
        cpu_before = sum(tree_cpu_s(pid) for pid in pids)
        endpoint_before = tree_cpu_s(endpoint_pid)
        result = run_wrk(ports, args.duration, args.connections, args.threads, args.keys, run_id)
        cpu_s = sum(tree_cpu_s(pid) for pid in pids) - cpu_before
        endpoint_cpu_s = tree_cpu_s(endpoint_pid) - endpoint_before
        time.sleep(0.5)  # let the sends wrk left in flight at its deadline be committed
        loaded_rss = [p for pid in pids for p in tree_rss(pid)]
        # every send accepted: probes, warm-up and run (in-flight ones at wrk's deadline
        # are not counted, at most one per connection)
        accepted = len(servers) + warmup["accepted"] + result["accepted"]
        disk = sum(_dir_bytes(base_dir) for base_dir in base_dirs)
    finally:
        for server in servers:
            server.stop()
    disk_stopped = sum(_dir_bytes(base_dir) for base_dir in base_dirs)
    for base_dir in base_dirs:
        shutil.rmtree(base_dir, ignore_errors=True)
    seconds = result["duration_us"] / 1e6
    lat = result["latency_us"]
    return {
        "server": config.kind,
        "workers": config.workers,
        "copies": config.copies,
        "sends_per_s": result["accepted"] / seconds,
        "p50_ms": lat["p50"] / 1000,
        "p90_ms": lat["p90"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "max_ms": lat["max"] / 1000,
        "accepted": result["accepted"],
        "errors": result["errors"],
        "server_cpu_s": cpu_s,
        "server_cpu_ms_per_send": cpu_s * 1000 / max(1, result["accepted"]),
        "server_cores": cpu_s / seconds,
        "wrk_cpu_s": result["wrk_cpu_s"],
        "wrk_cores": result["wrk_cpu_s"] / seconds,
        "endpoint_cpu_s": endpoint_cpu_s,  # ~0: nothing is due within the run
        "idle_rss": idle_rss,
        "loaded_rss": loaded_rss,
        "processes": len(loaded_rss),
        "disk_bytes_idle": idle_disk,
        "disk_bytes": disk,
        "disk_bytes_stopped": disk_stopped,
        "sends_total": accepted,
        "disk_bytes_per_send": disk / max(1, accepted),
        "disk_bytes_per_send_stopped": disk_stopped / max(1, accepted),
        "wrk": result,
        "warmup": warmup,
    }


# ---- table -------------------------------------------------------------------------------

COLUMNS = [  # (heading, key, format)
    ("sends/s", "sends_per_s", "{:,.0f}"),
    ("p50 ms", "p50_ms", "{:.2f}"),
    ("p99 ms", "p99_ms", "{:.2f}"),
    ("errors", "error_count", "{:.0f}"),
    ("CPU ms/send", "server_cpu_ms_per_send", "{:.3f}"),
    ("server cores", "server_cores", "{:.2f}"),
    ("wrk cores", "wrk_cores", "{:.2f}"),
    ("disk B/send", "disk_bytes_per_send", "{:,.0f}"),
]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per configuration: medians over its rounds."""
    rows = []
    for label, runs in results.items():
        for run in runs:
            run["error_count"] = sum(run["errors"].values())
        row: dict[str, Any] = {"config": label, "rounds": len(runs)}
        for _, key, _ in COLUMNS:
            row[key] = _median([run[key] for run in runs])
        # resident memory per process of the last round (tree order: the server first)
        row["rss_mb"] = [round(p["rss_mb"], 1) for p in runs[-1]["loaded_rss"]]
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    head = (
        f"POST /Counter/<key>/{SEND_TAIL}, {args.keys} keys, wrk -t{args.threads} "
        f"-c{args.connections} -d{args.duration}s, median of {args.rounds} round(s)"
    )
    widths = [max(len(h), 9) for h, _, _ in COLUMNS]
    lines = [
        head,
        f"{'server':16} "
        + " ".join(f"{h:>{w}}" for (h, _, _), w in zip(COLUMNS, widths, strict=True))
        + "  RSS MB per process",
    ]
    lines.append("-" * len(lines[1]))
    for row in rows:
        cells = []
        for (_, key, fmt), width in zip(COLUMNS, widths, strict=True):
            value = row[key]
            cells.append(f"{'-' if value != value else fmt.format(value):>{width}}")
        rss = " + ".join(f"{v:.0f}" for v in row["rss_mb"])
        lines.append(f"{row['config']:16} " + " ".join(cells) + f"  {rss}")
    lines.append(
        "CPU: user+system of the server's process tree per accepted send; cores: CPU s per s;"
        " disk: base dir after the run / sends it accepted"
    )
    return "\n".join(lines)


# ---- main --------------------------------------------------------------------------------


def _configs(servers: list[str], workers: list[int], copies: list[int]) -> list[Config]:
    configs = []
    for kind in servers:
        if kind == "real":
            configs.append(Config("real", None))
        else:
            configs.extend(Config(kind, n) for n in workers)
    # the bound: independent single-process servers of ours, no request forwarded
    configs.extend(Config("ours", 1, n) for n in copies)
    return configs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", default="ours,real", help="comma list: ours, real")
    parser.add_argument(
        "--workers", default="1,2", help=f"comma list of worker counts for ours ({WORKERS_ENV})"
    )
    parser.add_argument(
        "--independent",
        default="",
        help="comma list of counts: that many independent single-process servers side by "
        "side, one wrk each with its share of the connections (the bound for as many "
        "workers with forwarding free), e.g. 2",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per server")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t")
    parser.add_argument("--keys", type=int, default=1000, help="virtual-object keys to cycle")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds (medians)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 s per server")
    parser.add_argument(
        "--no-sync", action="store_true", help="turn fsync off on both (not headline)"
    )
    parser.add_argument(
        "--out",
        default=None,
        help="JSON file name (in benchmarks/results/ unless it has a directory); "
        "default sends_wrk.json, sends_wrk-quick.json with --quick",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds = 2, 1
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    copies = [int(n) for n in args.independent.split(",") if n.strip()]
    if args.duration < 1 or args.keys < 1 or args.connections < args.threads or not workers:
        parser.error("need --duration >= 1, --keys >= 1, --connections >= --threads, --workers")
    if any(w < 1 for w in workers):
        parser.error("--workers: counts of 1 or more")
    if any(n < 2 or args.connections < n * args.threads for n in copies):
        parser.error("--independent: counts of 2 or more, each copy with >= --threads connections")
    if shutil.which("wrk") is None:
        print("wrk not found on PATH: apt-get install -y wrk", file=sys.stderr)
        return 2
    compile_bytecode()
    tools = ensure_node_tools()
    if "real" in servers and not tools.restate_server.exists():
        print("real restate-server not installed; measuring ours only", file=sys.stderr)
        servers = [s for s in servers if s != "real"]
    configs = _configs(servers, workers, copies)
    env = {"RESTATE_LOG_FILTER": "warn"}
    if args.no_sync:
        env["RESTATE_LOG_SERVER__ROCKSDB_DISABLE_WAL_FSYNC"] = "true"
    work_dir = Path(tempfile.mkdtemp(prefix="restate-sends-wrk-"))
    endpoint = TsEndpoint(SERVICES_APP, None, None, work_dir=work_dir, tools=tools, name="wrk-ts")
    endpoint.start()
    results: dict[str, list[dict[str, Any]]] = {c.label: [] for c in configs}
    try:
        for index in range(args.rounds):
            order = configs if index % 2 == 0 else configs[::-1]
            for config in order:
                print(f"round {index + 1}/{args.rounds}: {config.label}", file=sys.stderr)
                results[config.label].append(bench_one(config, endpoint, work_dir, args, env))
    finally:
        endpoint.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    rows = summarize(results)
    table = format_table(rows, args)
    print(table)
    path = results_path(args.out, "sends_wrk", args.quick)
    settings = {k: getattr(args, k) for k in ("duration", "connections", "threads", "keys")}
    payload = {
        "settings": {
            **settings,
            "rounds": args.rounds,
            "request": SEND_TAIL,
            "sync": not args.no_sync,
        },
        "rows": rows,
        "runs": results,
        "table": table,
    }
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"written: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
