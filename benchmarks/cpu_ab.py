"""CPU per request of two variants of our server, measured side by side at the same time.

    .venv/bin/python -m benchmarks.cpu_ab ours ours-nometrics --rounds 5 --requests 8000
    .venv/bin/python -m benchmarks.cpu_ab ours ours --rounds 5     # A/A: the noise

Alternating rounds (``benchmarks.run``) compare throughput, which on a shared two-core
machine drifts by more between rounds than a few per cent. Here both servers run at
once against one TypeScript endpoint, each under its own closed loop of the same size,
so whatever else the machine does hits both alike, and the figure is the ratio of their
CPU time per request (user + system, from /proc). Sends count the CPU of running the
sent invocations too (the round waits for them). Which server's load starts first
alternates between rounds: an A/A run showed a bias of up to 2 % for the first one.
Variants: "ours" and ``benchmarks.run.SERVER_VARIANTS``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.loadgen import build_request, run_closed_loop
from benchmarks.proctree import tree_cpu_s
from benchmarks.run import SERVER_VARIANTS, SERVICES_APP, compile_bytecode
from tests.support.endpoints import TsEndpoint
from tests.support.node import ensure_node_tools
from tests.support.server import RestateServerProcess

JSON = {"content-type": "application/json"}
SEND_SETTLE_S = 8.0


def _workload(kind: str, round_index: int) -> Callable[[int], bytes]:
    if kind == "greet":
        greet = build_request("POST", "/Greeter/greet", b'"bench"', JSON)
        return lambda _i: greet
    return lambda i: build_request("POST", f"/Counter/r{round_index}-{i % 64}/add/send", b"1", JSON)


async def measure(variants: list[str], rounds: int, requests: int, kinds: list[str]) -> int:
    compile_bytecode()
    tools = ensure_node_tools()
    work = Path(tempfile.mkdtemp(prefix="restate-cpu-ab-"))
    endpoint = TsEndpoint(SERVICES_APP, None, None, work_dir=work, tools=tools, name="ts")
    endpoint.start()
    servers: list[RestateServerProcess] = []
    ratios: dict[str, list[float]] = {kind: [] for kind in kinds}
    try:
        for index, variant in enumerate(variants):
            env = {"RESTATE_LOG_FILTER": "warn", **SERVER_VARIANTS.get(variant, {})}
            server = RestateServerProcess(work / f"s{index}", work, env=env, name=f"s{index}")
            servers.append(server.start())
            server.register(endpoint.url)
        for round_index in range(rounds):
            for kind in kinds:
                make = _workload(kind, round_index)
                before = [tree_cpu_s(_pid(s)) for s in servers]
                order = servers if round_index % 2 == 0 else servers[::-1]
                loads = {
                    s.name: run_closed_loop(
                        "127.0.0.1",
                        s.ingress_port,
                        make,
                        concurrency=32,
                        total=requests,
                        deadline_s=600,
                    )
                    for s in order
                }
                done = dict(zip(loads, await asyncio.gather(*loads.values()), strict=True))
                results = [done[s.name] for s in servers]
                if kind == "send":
                    await asyncio.sleep(SEND_SETTLE_S)
                cpu_ms = [
                    (tree_cpu_s(_pid(s)) - b) * 1000 / max(1, r.requests)
                    for s, b, r in zip(servers, before, results, strict=True)
                ]
                ratio = cpu_ms[0] / cpu_ms[1]
                ratios[kind].append(ratio)
                print(
                    f"round {round_index + 1} {kind}: {variants[0]} {cpu_ms[0]:.3f} ms/req "
                    f"({results[0].throughput:.0f}/s), {variants[1]} {cpu_ms[1]:.3f} ms/req "
                    f"({results[1].throughput:.0f}/s), ratio {ratio:.3f}",
                    flush=True,
                )
    finally:
        for server in servers:
            server.stop()
        endpoint.stop()
        shutil.rmtree(work, ignore_errors=True)
    for kind, values in ratios.items():
        median = statistics.median(values)
        print(
            f"{kind}: CPU per request {variants[0]}/{variants[1]} median {median:.3f}"
            f" (min {min(values):.3f}, max {max(values):.3f}, {len(values)} rounds)"
        )
    return 0


def _pid(server: RestateServerProcess) -> int:
    pid = server.process.pid
    assert pid is not None
    return pid


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("variant_a", help="ours or one of " + ", ".join(SERVER_VARIANTS))
    parser.add_argument("variant_b")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=8000, help="per server and workload")
    parser.add_argument("--only", default="greet,send", help="comma list of greet,send")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.only.split(",") if k.strip()]
    variants = [args.variant_a, args.variant_b]
    sys.exit(asyncio.run(measure(variants, args.rounds, args.requests, kinds)))


if __name__ == "__main__":
    main()
