"""Soak: a bounded run at the highest rate this machine sustains (closed loop, 32
connections: greets and counter adds on 16 keys), the server's memory sampled every few
seconds. Holds: no error responses, nothing lost (each counter equals its adds), and
the second half's RSS slope, reported, stays below what a per-request leak would give.

Quick mode (the test command): 2 minutes. ``RESTATE_RELIABILITY_LONG=1``: 15 minutes;
``RESTATE_SOAK_SECONDS`` sets any other length.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from collections.abc import Callable

import pytest

from benchmarks.loadgen import build_request, run_closed_loop
from tests.support.endpoints import TsEndpoint
from tests.support.http import call
from tests.support.procfs import rss_mb
from tests.support.server import RestateServerProcess

LONG = os.environ.get("RESTATE_RELIABILITY_LONG") == "1"
DURATION_S = float(os.environ.get("RESTATE_SOAK_SECONDS", 900.0 if LONG else 120.0))
ROUND = 2000  # requests per round; every round completes (no request cut at a deadline)
KEYS = 16
JSON = {"content-type": "application/json"}
GREET = build_request("POST", "/Greeter/greet", b'"soak"', JSON)
ADDS = [build_request("POST", f"/Counter/soak{k}/add", b"1", JSON) for k in range(KEYS)]
# RSS growth allowed per request in the second half. Some follows the data: every call is
# retained (a day, as by the real server) and RocksDB keeps its files' index and filter
# blocks in memory, measured at 15-80 bytes per request; a leaked Python object per
# request (a dict, a task) is a few hundred. The long mode shows the level-off.
MAX_GROWTH_BYTES_PER_REQUEST = 256


def _slope_per_min(samples: list[tuple[float, float]]) -> float:
    times = [t for t, _ in samples]
    values = [v for _, v in samples]
    return statistics.linear_regression(times, values).slope * 60


@pytest.mark.timeout(DURATION_S + 180)
def test_soak(
    server: Callable[..., RestateServerProcess], ts_endpoint: Callable[..., TsEndpoint]
) -> None:
    srv = server()
    assert srv.register(ts_endpoint().url).status in (200, 201)
    pid = srv.process.pid
    assert pid is not None
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not stop.wait(3.0):
            samples.append((time.monotonic() - started, rss_mb(pid)))

    sampler = threading.Thread(target=sample)
    sampler.start()
    adds = [0] * KEYS
    requests = errors = 0
    bad_statuses: dict[int, int] = {}

    def make(index: int) -> bytes:
        if index % 2 == 0:
            return GREET
        return ADDS[(index // 2) % KEYS]

    async def load() -> None:
        nonlocal requests, errors
        offset = 0
        while time.monotonic() - started < DURATION_S:
            result = await run_closed_loop(
                "127.0.0.1",
                srv.ingress_port,
                lambda i, base=offset: make(base + i),
                concurrency=32,
                total=ROUND,
                deadline_s=300,
            )
            for i in range(ROUND):
                if (offset + i) % 2:
                    adds[((offset + i) // 2) % KEYS] += 1
            offset += ROUND
            requests += result.requests
            errors += result.errors
            for status, count in result.statuses.items():
                if status != 200:
                    bad_statuses[status] = bad_statuses.get(status, 0) + count

    try:
        asyncio.run(load())
    finally:
        stop.set()
        sampler.join()
    elapsed = time.monotonic() - started
    assert errors == 0 and not bad_statuses, (errors, bad_statuses)
    for k in range(KEYS):
        assert call(srv.ingress_url, f"/Counter/soak{k}/get").json() == adds[k], k
    steady = samples[len(samples) // 2 :]
    slope = _slope_per_min(steady)
    rate = requests / elapsed
    per_request = slope * 1024 * 1024 / (rate * 60)
    print(
        f"soak: {requests:,} requests in {elapsed:.0f} s ({rate:,.0f}/s), 0 errors; RSS "
        f"{samples[0][1]:.0f} -> {samples[-1][1]:.0f} MB, second-half slope {slope:+.2f} "
        f"MB/min ({per_request:+.0f} bytes per request)"
    )
    print("RSS samples (s, MB):", [(round(t), round(v, 1)) for t, v in samples])
    assert per_request < MAX_GROWTH_BYTES_PER_REQUEST, samples
