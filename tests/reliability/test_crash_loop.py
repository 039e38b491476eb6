"""Crash loop: a mixed workload while the server (or the SDK endpoint) is SIGKILLed at
random moments and restarted, then the promise is checked.

The workload, all of it through idempotent one-way sends that the client retries with
the same key until one is accepted (an answer lost in a crash is no reason to give up):

* ``Counter/{key}/add`` on a few keys (state updates, exclusive handlers);
* ``Steps/threeSteps`` (three ``ctx.run`` side effects, each recorded by the endpoint);
* ``FanOut/sendLater`` (a delayed one-way call to a counter: a durable timer);
* ``Sleeper/sleep`` (a durable sleep);
* ``Payment/{key}/run`` workflows (sent without a key header: a workflow's key makes
  it idempotent), each approved by a one-way ``approve`` that resolves its durable
  promise;
* ``Awaker/wait``, each waiting on an awakeable that the client resolves from outside
  through the ingress once the endpoint has published its id (retried like the sends).

At the end, with every invocation completed: each counter equals the adds accepted for it
(every add ran exactly once) and the delayed adds arrived exactly once (no timer fired
twice); each ``threeSteps`` recorded its steps in order, each at least once, and no step
ran again after a later one had started (a ``ctx.run`` whose result was journaled never
runs again); every invocation id that a retried send was given is the one the first
acceptance gave; every workflow ran ``reserve`` then ``charge`` and answers "completed";
every awakeable wait answers with the value it was resolved with.

Quick mode (the test command): 30 kills each. ``RESTATE_RELIABILITY_LONG=1``: 300.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.support.endpoints import TsEndpoint
from tests.support.http import call, query_rows
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
    workflows: dict[str, str] = field(default_factory=dict)  # workflow key -> invocation id
    awakeables: dict[str, str] = field(default_factory=dict)  # tag -> idempotency key
    resolved: set[str] = field(default_factory=set)
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


def _retry(attempt: Callable[[], bool], what: str, w: Workload) -> None:
    """``attempt`` until it reports success (the server may be down meanwhile)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            if attempt():
                return
        except OSError:
            pass
        w.retries += 1
        assert time.monotonic() < deadline, f"{what} never accepted"
        time.sleep(0.05)


def _start_workflow(ingress_url: Callable[[], str], key: str, w: Workload) -> None:
    def attempt() -> bool:
        path = f"/Payment/{key}/run/send"
        resp = call(ingress_url(), path, {"amount": 5}, timeout=5)
        if resp.status != 202:
            return False
        first = w.workflows.setdefault(key, resp.json()["invocationId"])
        if first != resp.json()["invocationId"]:
            w.mismatched_ids.append(key)
        return True

    _retry(attempt, f"workflow {key}", w)


def _resolve_published(
    ingress_url: Callable[[], str], side_effects: Callable[[], list[str]], w: Workload
) -> None:
    """Resolve every awakeable whose id the endpoint has published and that is not yet."""
    waiting = set(w.awakeables) - w.resolved
    if not waiting:
        return
    for line in side_effects():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "awk" and parts[1] in waiting:
            tag, awakeable_id = parts[1], parts[2]
            path = f"/restate/awakeables/{awakeable_id}/resolve"
            _retry(
                lambda path=path, tag=tag: call(ingress_url(), path, f"v-{tag}").status == 202,
                f"resolving {tag}",
                w,
            )
            w.resolved.add(tag)
            waiting.discard(tag)


def _run_workload(
    ingress_url: Callable[[], str],
    open_gate: Callable[[str], None],
    side_effects: Callable[[], list[str]],
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
        if n % 11 == 0:
            key = f"wf{n}"
            _start_workflow(ingress_url, key, w)
            _send(ingress_url, f"/Payment/{key}/approve", None, f"approve-{n}", w)
        if n % 13 == 0:
            tag = f"a{n}"
            _send(ingress_url, "/Awaker/wait", tag, f"wait-{n}", w)
            w.awakeables[tag] = f"wait-{n}"
        if n % 4 == 0:
            _resolve_published(ingress_url, side_effects, w)
    # what the last rounds published
    deadline = time.monotonic() + 120
    while set(w.awakeables) - w.resolved:
        assert time.monotonic() < deadline, f"not published: {set(w.awakeables) - w.resolved}"
        _resolve_published(ingress_url, side_effects, w)
        time.sleep(0.1)


def _query(srv: RestateServerProcess, sql: str) -> list[dict[str, object]]:
    return query_rows(srv.admin_url, sql)


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
    by_id = {row["id"]: row for row in rows}
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
    effects = endpoint.side_effects()
    for key, invocation_id in w.workflows.items():
        assert by_id.get(invocation_id, {}).get("completion_result") == "success", key
        output = call(srv.ingress_url, f"/restate/workflow/Payment/{key}/output", method="GET")
        assert (output.status, output.json()) == (200, "completed"), (key, output.text())
        mine = [line.split()[0] for line in effects if line.split()[1:2] == [key]]
        # reserve ran (maybe again before it was journaled), then charge, never release
        assert mine and mine[-1] == "charge" and "release" not in mine, (key, mine)
        assert mine.index("charge") > max(i for i, e in enumerate(mine) if e == "reserve")
    for tag, key in w.awakeables.items():
        path = f"/restate/invocation/{w.accepted[key]}/output"
        output = call(srv.ingress_url, path, method="GET")
        assert (output.status, output.json()) == (200, f"got v-{tag}"), (tag, output.text())


@pytest.mark.parametrize("victim", ["server", "endpoint"])
def test_crash_loop(
    victim: str,
    server: Callable[..., RestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> None:
    endpoint = ts_endpoint()
    # a short inactivity timeout: attempts to a killed endpoint are given up quickly; and
    # retries capped at 2 s apart (the default grows to a minute), so the end is near
    srv = server(
        env={
            "RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "2s",
            "RESTATE_DEFAULT_RETRY_POLICY__MAX_INTERVAL": "2s",
        }
    )
    assert srv.register(endpoint.url).status in (200, 201)
    w = Workload()
    stop = threading.Event()
    failures: list[BaseException] = []

    def load() -> None:
        try:
            _run_workload(
                lambda: srv.ingress_url, endpoint.open_gate, endpoint.side_effects, stop, w
            )
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
        f"crash loop ({victim}): {kills} kills, {len(w.accepted)} invocations checked "
        f"({len(w.workflows)} workflows, {len(w.awakeables)} awakeables), "
        f"{w.retries} send retries"
    )
