"""HTTP/1.1 against HTTP/2 (h2c, prior knowledge) on the ingress, ours and the real server.

    .venv/bin/python -m benchmarks.h2c                    # 3 rounds, ours and real
    .venv/bin/python -m benchmarks.h2c --servers ours --rounds 5 --requests 10000

Load comes from ``h2load`` (Debian package nghttp2-client), the same client for both
protocols: 32 connections with one request at a time each (``--h1`` and h2), and h2 with
4 connections carrying 8 streams each. Per cell: requests per second, mean latency
and the server's CPU time per request (user + system, from /proc). Rounds alternate the
order of servers and protocols; the table shows medians.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.proctree import tree_cpu_s
from benchmarks.run import SERVICES_APP, compile_bytecode
from tests.support.endpoints import TsEndpoint
from tests.support.node import ensure_node_tools
from tests.support.server import RealRestateServerProcess, RestateServerProcess

# (label, h2load arguments)
MODES = [
    ("HTTP/1.1, 32 connections", ["--h1", "-c", "32", "-m", "1"]),
    ("h2c, 32 connections", ["-c", "32", "-m", "1"]),
    ("h2c, 4 connections x 8 streams", ["-c", "4", "-m", "8"]),
]
_FINISHED = re.compile(r"finished in ([\d.]+)m?s, ([\d.]+) req/s")
_STATUS = re.compile(r"status codes: (\d+) 2xx")
_LATENCY = re.compile(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)")


def _ms(text: str) -> float:
    value = float(re.sub(r"[a-z]+$", "", text))
    if text.endswith("us"):
        return value / 1000
    if text.endswith("ms"):
        return value
    return value * 1000  # "s"


def _h2load(port: int, args: list[str], requests: int, body: Path) -> dict[str, float]:
    out = subprocess.run(
        [
            "h2load",
            *args,
            "-n",
            str(requests),
            "-d",
            str(body),
            "-H",
            "content-type: application/json",
            f"http://127.0.0.1:{port}/Greeter/greet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    finished = _FINISHED.search(out)
    ok = _STATUS.search(out)
    latency = _LATENCY.search(out)
    if not (finished and ok and latency):
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    return {
        "req_s": float(finished.group(2)),
        "ok": int(ok.group(1)),
        "mean_ms": _ms(latency.group(3)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default="ours,real")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=6000)
    args = parser.parse_args()
    if shutil.which("h2load") is None:
        print("h2load not found: apt-get install nghttp2-client", file=sys.stderr)
        return 2
    compile_bytecode()
    tools = ensure_node_tools()
    work_dir = Path(tempfile.mkdtemp(prefix="restate-h2c-"))
    body = work_dir / "body.json"
    body.write_text('"bench"')
    endpoint = TsEndpoint(SERVICES_APP, None, None, work_dir=work_dir, tools=tools, name="ts")
    endpoint.start()
    servers = args.servers.split(",")
    cells: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        for round_index in range(args.rounds):
            order = servers if round_index % 2 == 0 else servers[::-1]
            for kind in order:
                cls = RealRestateServerProcess if kind == "real" else RestateServerProcess
                srv = cls(
                    work_dir / f"{kind}-{round_index}",
                    work_dir,
                    env={"RESTATE_LOG_FILTER": "warn"},
                    name=f"{kind}-{round_index}",
                )
                srv.start()
                try:
                    srv.register(endpoint.url)
                    pid = srv.process.pid
                    assert pid is not None
                    _h2load(srv.ingress_port, ["-c", "8"], 500, body)  # warm up
                    modes = MODES if round_index % 2 == 0 else MODES[::-1]
                    for label, h2load_args in modes:
                        before = tree_cpu_s(pid)
                        result = _h2load(srv.ingress_port, h2load_args, args.requests, body)
                        cpu = tree_cpu_s(pid) - before
                        result["cpu_ms"] = cpu * 1000 / max(1, result["ok"])
                        cells.setdefault((kind, label), []).append(result)
                        print(f"round {round_index + 1} {kind} {label}: {result}", file=sys.stderr)
                finally:
                    srv.stop()
    finally:
        endpoint.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    print(f"\nGreeter/greet, {args.requests} requests per cell, median of {args.rounds} rounds\n")
    print("| server | protocol | req/s | mean latency | server CPU per request | errors |")
    print("|---|---|---|---|---|---|")
    for kind in servers:
        for label, _ in MODES:
            runs = cells[(kind, label)]
            errors = sum(args.requests - run["ok"] for run in runs)
            print(
                f"| {kind} | {label} | {statistics.median(r['req_s'] for r in runs):,.0f} "
                f"| {statistics.median(r['mean_ms'] for r in runs):.1f} ms "
                f"| {statistics.median(r['cpu_ms'] for r in runs):.3f} ms | {errors} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
