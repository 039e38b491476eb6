"""Endpoint faults: a fault-injecting proxy (tests/support/fault_proxy.py) between the server
and a real SDK endpoint, while a second, healthy endpoint is served directly.

For each fault (resets on accept and mid-stream, a stalled response past the inactivity
and abort timeouts, a response frame cut in half, trickled bytes, the port closed, the
endpoint process down), counter adds are sent to the faulty endpoint: while the fault
lasts they are retried with backoff (attempts counted by the server and, where requests
get through, by the proxy, and bounded by the retry schedule); once it stops they
complete, and each counter equals the adds accepted for it (exactly once). Meanwhile a
probe calls the healthy endpoint: its latency must stay low (the failing deployment
blocks no other service).

HTTP/2-aware: an endpoint that answers every stream with RST_STREAM(REFUSED_STREAM) gets
no more attempts over a fixed window than one that answers RST_STREAM(INTERNAL_ERROR)
(finding 8: refused streams are resent at once only MAX_IMMEDIATE_RESENDS times in a row).

Quick mode: 2 s per fault. ``RESTATE_RELIABILITY_LONG=1``: 12 s per fault (past the
1 s backoff cap) and more adds.
"""

from __future__ import annotations

import itertools
import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from restate_server.invoker.invocation_task import MAX_IMMEDIATE_RESENDS
from restate_server.invoker.retry import RetryPolicy
from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.http import call, query_rows
from tests.support.identity import key_pair, ready_on_health
from tests.support.server import RestateServerProcess

LONG = os.environ.get("RESTATE_RELIABILITY_LONG") == "1"
FAULT_S = 12.0 if LONG else 2.0  # how long each fault lasts
ADDS = 5 if LONG else 2  # adds per fault, on one key: the first runs, the others queue
RECOVERY_S = 20.0  # from the fault's end to every add completed, at most
LATENCY_BOUND_S = 1.0  # the healthy endpoint's calls, each, while the other fails

IDENTITY_KEY_ENV = "RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE"
TRACING_APP = Path(__file__).resolve().parents[1] / "e2e" / "ts_services" / "tracing_app.mjs"
HEALTHY_CALL = "/Traced/attemptHeaders"  # a one-step handler on the healthy endpoint

# small timeouts and a short backoff, so each fault is retried several times in seconds
POLICY = RetryPolicy(initial_interval_ms=100, exponentiation_factor=2.0, max_interval_ms=1000)
INACTIVITY_MS = ABORT_MS = 400
SERVER_ENV = {
    "RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": f"{INACTIVITY_MS}ms",
    "RESTATE_WORKER__INVOKER__ABORT_TIMEOUT": f"{ABORT_MS}ms",
    "RESTATE_DEFAULT_RETRY_POLICY__INITIAL_INTERVAL": f"{POLICY.initial_interval_ms}ms",
    "RESTATE_DEFAULT_RETRY_POLICY__EXPONENTIATION_FACTOR": str(POLICY.exponentiation_factor),
    "RESTATE_DEFAULT_RETRY_POLICY__MAX_INTERVAL": f"{POLICY.max_interval_ms}ms",
    "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS": "unlimited",
}

# faults the proxy applies while relaying, then the endpoint process itself going down
RELAYED = [
    Fault.RESET_ON_ACCEPT,
    Fault.RESET_MID_STREAM,
    Fault.STALL,
    Fault.STALL_MID_STREAM,
    Fault.TRUNCATE,
    Fault.TRICKLE,
    Fault.REFUSE_CONNECTIONS,
]
ENDPOINT_DOWN = "endpoint-down"


class _FixedJitter(random.Random):
    """A backoff's jitter pinned to one end of its range."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


SHORTEST = _FixedJitter(0.0)  # no jitter beyond the 3 ms floor
LONGEST = _FixedJitter(0.999_999)  # +30 %


def max_attempts_within(window_s: float, jitter: random.Random = SHORTEST) -> int:
    """The most attempts the schedule allows in ``window_s`` from the first one, every
    backoff with the given jitter (the shortest by default), attempts taking no time."""
    attempts, elapsed = 1, 0.0
    for retry in range(1, 10_000):
        delay = POLICY.delay_ms(retry, jitter)
        assert delay is not None
        elapsed += delay / 1000
        if elapsed > window_s:
            return attempts
        attempts += 1
    raise AssertionError("unreachable: the window is finite")


# ---- the healthy endpoint's probe --------------------------------------------------------


class LatencyProbe:
    """Calls the healthy endpoint in a thread, one call at a time, 20 ms apart; latencies
    by phase (the fault being injected, or its recovery)."""

    def __init__(self, srv: RestateServerProcess) -> None:
        self.srv = srv
        self.phase = "setup"
        self.samples: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latency-probe", daemon=True)

    def __enter__(self) -> LatencyProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        deadline = time.monotonic() + 600  # bounded even if nobody stops it
        while not self._stop.is_set() and time.monotonic() < deadline:
            phase = self.phase
            started = time.monotonic()
            error: str | None = None
            try:
                resp = call(self.srv.ingress_url, HEALTHY_CALL, timeout=10)
                if resp.status != 200:
                    error = f"{resp.status} {resp.text()[:200]}"
            except OSError as exc:
                error = repr(exc)
            elapsed = time.monotonic() - started
            if error is not None:
                self.errors.append(f"{phase}: {error}")
            self.samples.setdefault(phase, []).append(elapsed)
            self._stop.wait(0.02)

    def all_samples(self, exclude: str = "setup") -> list[float]:
        return [s for phase, values in self.samples.items() if phase != exclude for s in values]


def latency_figures(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "calls": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


# ---- server helpers ----------------------------------------------------------------------


def _query(srv: RestateServerProcess, sql: str) -> list[dict[str, Any]]:
    return query_rows(srv.admin_url, sql)


def _adds(srv: RestateServerProcess, key: str) -> list[dict[str, Any]]:
    return _query(
        srv,
        "SELECT id, status, retry_count, last_failure FROM sys_invocation "
        f"WHERE target_service_name = 'Counter' AND target_service_key = '{key}' "
        "AND target_handler_name = 'add'",
    )


def _send_adds(srv: RestateServerProcess, key: str, count: int) -> list[str]:
    """One-way adds of 1 with idempotency keys; the ingress accepts them at once."""
    ids = []
    for i in range(count):
        resp = srv.call(f"/Counter/{key}/add/send", 1, {"idempotency-key": f"{key}-{i}"})
        assert resp.status == 202, (resp.status, resp.text())
        ids.append(resp.json()["invocationId"])
    return ids


def _wait_completed(srv: RestateServerProcess, key: str, count: int, timeout: float) -> float:
    """Seconds until ``count`` adds on ``key`` are completed."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        rows = _adds(srv, key)
        if len(rows) == count and all(r["status"] == "completed" for r in rows):
            return time.monotonic() - started
        assert time.monotonic() < deadline, f"adds on {key} not completed: {rows}"
        time.sleep(0.05)


def _assert_backoff(times: list[float]) -> None:
    """Attempt ``n + 1`` came no sooner than the ``n``-th backoff after attempt ``n``."""
    assert len(times) >= 2, times
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for retry, gap in enumerate(gaps, start=1):
        shortest = POLICY.delay_ms(retry, SHORTEST)
        assert shortest is not None and gap >= shortest / 1000 * 0.95, (retry, gaps)


@dataclass
class StepFigures:
    fault: str
    injected: dict[str, int]
    server_attempts: int  # the first add's attempts, as the server counts them
    proxy_attempts: int  # request streams of the adds that reached the proxy
    bound: int
    recovery_s: float
    last_failure: str
    latency: dict[str, float] = field(default_factory=dict)


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def _fault_step(
    srv: RestateServerProcess,
    proxy: FaultProxy,
    endpoint: TsEndpoint | PyEndpoint,
    fault: Fault | str,
    probe: LatencyProbe,
) -> StepFigures:
    name = fault.value if isinstance(fault, Fault) else fault
    key = f"{name}-{endpoint.kind}"
    probe.phase = name
    before = proxy.snapshot()["faults"]
    since = time.monotonic()
    if isinstance(fault, Fault):
        proxy.set_fault(fault)
    else:
        endpoint.kill9()
    ids = _send_adds(srv, key, ADDS)
    time.sleep(FAULT_S)
    rows = {r["id"]: r for r in _adds(srv, key)}
    window = time.monotonic() - since  # the fault so far, the query's answer included
    first = rows[ids[0]]
    attempts = [s.at for s in proxy.streams("/invoke/Counter/add", key=key, since=since)]
    bound = max_attempts_within(window)
    if fault is Fault.TRICKLE:
        # slow is not failed: every add completes while the bytes trickle, at one attempt
        assert all(r["status"] == "completed" for r in rows.values()), rows
        assert len(attempts) == ADDS, attempts
    else:
        # failing all along: retried, no faster than the schedule, nothing completed
        assert all(r["status"] != "completed" for r in rows.values()), rows
        assert 2 <= first["retry_count"] <= bound, (first, bound)
        assert len(attempts) <= bound, (attempts, bound)
    # where every attempt fails at once, the gaps between them are the backoff
    if fault in (Fault.RESET_MID_STREAM, Fault.TRUNCATE):
        _assert_backoff(attempts)
    if fault is Fault.RESET_ON_ACCEPT:
        _assert_backoff(proxy.accepted(fault, since))
    if isinstance(fault, Fault):
        proxy.clear()
    else:
        endpoint.start()
    probe.phase = f"{name} (recovery)"
    recovery = _wait_completed(srv, key, ADDS, RECOVERY_S)
    # exactly once: every accepted add counted, none twice
    assert srv.call(f"/Counter/{key}/get").json() == ADDS
    return StepFigures(
        name,
        _diff(proxy.snapshot()["faults"], before),
        int(first.get("retry_count") or 0),
        len(attempts),
        bound,
        round(recovery, 2),
        str(first.get("last_failure") or "")[:120],
    )


# ---- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def fault_proxy() -> Iterator[Callable[[int], FaultProxy]]:
    proxies: list[FaultProxy] = []

    def start(upstream_port: int) -> FaultProxy:
        proxy = FaultProxy(upstream_port).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()
    for proxy in proxies:
        assert not proxy.errors, f"the fault proxy failed: {proxy.errors}"


def _report(title: str, lines: list[str]) -> None:
    print(f"\n== {title}")
    for line in lines:
        print(line)


# ---- the tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("sdk", ["ts", "py"])
def test_faults_are_retried_and_recovered_exactly_once(
    sdk: str,
    server: Callable[..., RestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
    py_endpoint: Callable[..., PyEndpoint],
    fault_proxy: Callable[[int], FaultProxy],
) -> None:
    faulty = ts_endpoint(name="faulty") if sdk == "ts" else py_endpoint(name="faulty")
    healthy = ts_endpoint(TRACING_APP, name="healthy")
    srv = server(env=SERVER_ENV)
    proxy = fault_proxy(faulty.port)
    srv.register(proxy.url)
    srv.register(healthy.url)
    # through the proxy without a fault: a call works
    assert srv.call("/Counter/warm/add", 1).json() == 1
    _adds(srv, "warm")  # the first query imports the query engine: not inside a window
    steps: list[StepFigures] = []
    with LatencyProbe(srv) as probe:
        time.sleep(0.5)  # a baseline
        faults: list[Fault | str] = [*RELAYED, ENDPOINT_DOWN]
        for fault in faults:
            steps.append(_fault_step(srv, proxy, faulty, fault, probe))
            probe.phase = "between"
    lines = []
    for step in steps:
        figures = latency_figures(probe.samples[step.fault])
        step.latency = figures
        lines.append(
            f"{step.fault}: injected {step.injected}, attempts {step.server_attempts} "
            f"(proxy saw {step.proxy_attempts}, bound {step.bound}), recovered in "
            f"{step.recovery_s} s, healthy calls {figures}; last failure: {step.last_failure}"
        )
    baseline = latency_figures(probe.samples["setup"])
    overall = latency_figures(probe.all_samples())
    lines.append(f"healthy endpoint before the faults: {baseline}; during and after: {overall}")
    lines.append(f"proxy: {proxy.snapshot()}")
    _report(f"endpoint faults ({sdk}, {FAULT_S:g} s each)", lines)
    assert not probe.errors, probe.errors
    assert overall["max_ms"] < LATENCY_BOUND_S * 1000, lines
    injected = proxy.snapshot()["faults"]
    for fault in RELAYED:
        assert injected.get(fault.value, 0) > 0, (fault, injected)


def _attempts_while(
    srv: RestateServerProcess, proxy: FaultProxy, fault: Fault, key: str, window_s: float
) -> list[float]:
    """Attempt times (from the first) of one add sent while ``fault`` lasts, in the window."""
    since = time.monotonic()
    proxy.set_fault(fault)
    _send_adds(srv, key, 1)
    deadline = time.monotonic() + 10
    while not (seen := proxy.streams("/invoke/Counter/add", key=key, since=since)):
        assert time.monotonic() < deadline, "no attempt reached the proxy"
        time.sleep(0.01)
    first = seen[0].at
    time.sleep(max(0.0, first + window_s - time.monotonic()) + 0.05)
    times = [s.at - first for s in proxy.streams("/invoke/Counter/add", key=key, since=since)]
    proxy.clear()
    _wait_completed(srv, key, 1, RECOVERY_S)
    assert srv.call(f"/Counter/{key}/get").json() == 1
    return [t for t in times if t <= window_s]


def test_refused_streams_cost_no_more_attempts_than_other_failures(
    server: Callable[..., RestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
    fault_proxy: Callable[[int], FaultProxy],
) -> None:
    endpoint = ts_endpoint()
    srv = server(env=SERVER_ENV)
    proxy = fault_proxy(endpoint.port)
    srv.register(proxy.url)
    window = 12.0 if LONG else 3.0
    refused = _attempts_while(srv, proxy, Fault.REFUSE_STREAMS, "refused", window)
    reset = _attempts_while(srv, proxy, Fault.RESET_STREAMS, "reset", window)
    bound = max_attempts_within(window)
    # what jitter alone may change in the count of attempts over the window
    spread = bound - max_attempts_within(window, LONGEST)
    _report(
        f"refused streams ({window:g} s window)",
        [
            f"RST_STREAM(REFUSED_STREAM): {len(refused)} attempts at "
            f"{[round(t, 2) for t in refused]}",
            f"RST_STREAM(INTERNAL_ERROR): {len(reset)} attempts at {[round(t, 2) for t in reset]}",
            f"schedule bound: {bound} (+{MAX_IMMEDIATE_RESENDS} immediate resends when refused), "
            f"jitter spread {spread}",
            f"proxy: {proxy.snapshot()}",
        ],
    )
    assert 2 <= len(reset) <= bound, reset
    assert 2 <= len(refused) <= bound + MAX_IMMEDIATE_RESENDS, refused
    # the only difference a refusal makes: the first few resends come at once, then the
    # backoff is that of any failure (before a345472, the resends came before every step)
    immediate = [b - a for a, b in itertools.pairwise(refused)][:MAX_IMMEDIATE_RESENDS]
    assert all(gap < POLICY.initial_interval_ms / 1000 for gap in immediate), refused
    _assert_backoff(refused[MAX_IMMEDIATE_RESENDS:])
    assert len(refused) <= len(reset) + MAX_IMMEDIATE_RESENDS + spread, (refused, reset)


def test_signed_requests_survive_faults(
    server: Callable[..., RestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
    fault_proxy: Callable[[int], FaultProxy],
    e2e_dir: Path,
) -> None:
    """With request identity on, every retry after a fault is signed again: the endpoint,
    which refuses unsigned requests (401), serves each add once the fault stops."""
    pem, kid = key_pair(e2e_dir)
    signed = ts_endpoint(env={"IDENTITY_KEY": kid}, name="signed", start=False)
    ready_on_health(signed)
    signed.start()
    healthy = ts_endpoint(TRACING_APP, name="healthy")
    srv = server(env={**SERVER_ENV, IDENTITY_KEY_ENV: str(pem)})
    proxy = fault_proxy(signed.port)
    srv.register(proxy.url)
    srv.register(healthy.url)
    assert signed.discover().status == 401  # unsigned requests are refused
    with LatencyProbe(srv) as probe:
        for fault in (Fault.RESET_MID_STREAM, Fault.TRUNCATE, Fault.REFUSE_CONNECTIONS):
            step = _fault_step(srv, proxy, signed, fault, probe)
            assert step.server_attempts >= 2, step
            assert "401" not in step.last_failure, step
    assert not probe.errors, probe.errors
