"""Crash loop: a mixed workload while the server (or the SDK endpoint) is SIGKILLed at
random moments and restarted, then the promise is checked.

The workload, all of it through idempotent one-way sends that the client retries with
the same key until one is accepted (an answer lost in a crash is no reason to give up):

* ``Counter/{key}/add`` on a few keys (state updates, exclusive handlers);
* ``Steps/threeSteps`` (three ``ctx.run`` side effects, each recorded by the endpoint);
* ``FanOut/sendLater`` (a delayed one-way call to a counter: a durable timer);
* ``Sleeper/sleep`` (a durable sleep).

At the end, with every invocation completed: each counter equals the adds accepted for it
(every add ran exactly once) and the delayed adds arrived exactly once (no timer fired
twice); each ``threeSteps`` recorded its steps in order, each at least once, and no step
ran again after a later one had started (a ``ctx.run`` whose result was journaled never
runs again); every invocation id that a retried send was given is the one the first
acceptance gave.

Quick mode (the test command): 30 kills each. ``RESTATE_RELIABILITY_LONG=1``: 300.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.support.endpoints import TsEndpoint
from tests.support.http import call, request
from tests.support.server import RestateServerProcess

LONG = os.environ.get("RESTATE_RELIABILITY_LONG") == "1"
KILLS = 300 if LONG else 30
KEYS = [f"k{i}" for i in range(4)]


@dataclass
class Workload:
    """What was accepted: idempotency key -> invocation id, and the expectations."""

    accepted: dict[str, str] = field(default_factory=dict)
    adds: Tally[str] = field(default_factory=Tally)
    delayed: Tally[str] = field(default_factory=Tally)
    step_tags: list[str] = field(default_factory=list)
    retries: int = 0
    mismatched_ids: list[str] = field(default_factory=list)


def _send(ingress_url: Callable[[], str], path: str, body: object, key: str, w: Workload) -> None:
    """``/send`` with an idempotency key until the server accepts it (same key each time)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            resp = call(ingress_url(), f"{path}/send", body, {"idempotency-key": key}, timeout=5)
            if resp.status == 202:
                invocation_id = resp.json()["invocationId"]
                first = w.accepted.setdefault(key, invocation_id)
                if first != invocation_id:
                    w.mismatched_ids.append(key)
                return
        except OSError:
            pass  # the server is down or went down mid-request: try again
        w.retries += 1
        assert time.monotonic() < deadline, f"{path} with key {key} never accepted"
        time.sleep(0.05)


def _run_workload(
    ingress_url: Callable[[], str],
    open_gate: Callable[[str], None],
    stop: threading.Event,
    w: Workload,
) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        key = KEYS[n % len(KEYS)]
        _send(ingress_url, f"/Counter/{key}/add", 1, f"add-{n}", w)
        w.adds[key] += 1
        if n % 3 == 0:
            tag = f"s{n}"
            open_gate(tag)  # step3 runs without waiting
            _send(ingress_url, "/Steps/threeSteps", tag, f"steps-{n}", w)
            w.step_tags.append(tag)
        if n % 5 == 0:
            target = f"d{n % 2}"
            _send(ingress_url, "/FanOut/sendLater", {"key": target, "ms": 200}, f"later-{n}", w)
            w.delayed[target] += 1
        if n % 7 == 0:
            _send(ingress_url, "/Sleeper/sleep", 100, f"sleep-{n}", w)


def _query(srv: RestateServerProcess, sql: str) -> list[dict[str, object]]:
    resp = request(
        "POST",
        srv.admin_url + "/query",
        body=json.dumps({"query": sql}).encode(),
        headers={"content-type": "application/json", "accept": "application/json"},
    )
    assert resp.status == 200, resp.text()
    return list(resp.json()["rows"])


def _wait_all_completed(srv: RestateServerProcess, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    sql = "SELECT target, status FROM sys_invocation WHERE status != 'completed'"
    while rows := _query(srv, sql):
        assert time.monotonic() < deadline, f"not completed: {rows[:10]}"
        time.sleep(0.2)


def _check(srv: RestateServerProcess, endpoint: TsEndpoint, w: Workload) -> None:
    assert not w.mismatched_ids, f"a retried send got another invocation: {w.mismatched_ids}"
    _wait_all_completed(srv)
    for key, expected in (w.adds + w.delayed).items():
        got = call(srv.ingress_url, f"/Counter/{key}/get").json()
        assert got == expected, f"Counter {key}: {got}, expected {expected}"
    # every accepted invocation exists once and completed successfully
    rows = _query(srv, "SELECT id, idempotency_key, completion_result FROM sys_invocation")
    by_key = {row["idempotency_key"]: row for row in rows if row.get("idempotency_key")}
    for key, invocation_id in w.accepted.items():
        row = by_key.get(key)
        assert row is not None and row["id"] == invocation_id, (key, row)
        assert row["completion_result"] == "success", row
    steps: dict[str, list[int]] = {tag: [] for tag in w.step_tags}
    for line in endpoint.side_effects():
        parts = line.split()
        if len(parts) == 2 and parts[0] in steps:
            steps[parts[0]].append(int(parts[1].removeprefix("step")))
    for tag, seen in steps.items():
        assert sorted(set(seen)) == [1, 2, 3], (tag, seen)
        # a step may run again only until its result is journaled, i.e. before the next
        # step starts
        assert seen == sorted(seen), (tag, seen)


@pytest.mark.parametrize("victim", ["server", "endpoint"])
def test_crash_loop(
    victim: str,
    server: Callable[..., RestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> None:
    endpoint = ts_endpoint()
    # a short inactivity timeout: attempts to a killed endpoint are given up quickly
    srv = server(env={"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "2s"})
    assert srv.register(endpoint.url).status in (200, 201)
    w = Workload()
    stop = threading.Event()
    failures: list[BaseException] = []

    def load() -> None:
        try:
            _run_workload(lambda: srv.ingress_url, endpoint.open_gate, stop, w)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    loader = threading.Thread(target=load)
    loader.start()
    rng = random.Random(12)
    kills = 0
    try:
        while kills < KILLS:
            time.sleep(rng.uniform(0.05, 0.5))
            if victim == "server":
                srv.restart(kill=True)
            else:
                endpoint.restart(kill=True)
            kills += 1
    finally:
        stop.set()
        loader.join(timeout=180)
    assert not loader.is_alive()
    if failures:
        raise failures[0]
    _check(srv, endpoint, w)
    print(
        f"crash loop ({victim}): {kills} kills, {len(w.accepted)} invocations checked, "
        f"{w.retries} send retries"
    )
