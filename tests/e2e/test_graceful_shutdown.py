"""SIGTERM under load: the server stops accepting, lets running attempts finish or
suspend for up to ``shutdown-timeout``, commits, and exits 0; after a restart every
accepted invocation completes exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.support.endpoints import TsEndpoint
from tests.support.http import Response, call, get
from tests.support.server import RestateServerProcess

SHUTDOWN_TIMEOUT_S = 4
COUNTERS = 4
SENDS = 240


class Sender:
    """Idempotent one-way sends; a send that got no 202 is retried with its key."""

    def __init__(self, ingress_url: str) -> None:
        self.ingress_url = ingress_url
        self.accepted: dict[str, str] = {}  # idempotency key -> invocation id
        self.lock = threading.Lock()

    def send(self, key: str, path: str, body: object) -> bool:
        try:
            answer = call(
                self.ingress_url, f"{path}/send", body, {"idempotency-key": key}, timeout=10
            )
        except OSError:
            return False
        if answer.status not in (200, 202):
            return False
        with self.lock:
            previous = self.accepted.setdefault(key, answer.json()["invocationId"])
        assert previous == answer.json()["invocationId"], "one key, one invocation"
        return True


def _workload() -> list[tuple[str, str, object]]:
    """(idempotency key, target, body): quick adds, adds that hold their key for a while
    (running at SIGTERM), and sleeps (suspended at SIGTERM)."""
    items: list[tuple[str, str, object]] = []
    for n in range(SENDS):
        counter = f"/Counter/gs-{n % COUNTERS}"
        if n % 8 == 3:
            items.append((f"slow-{n}", f"{counter}/slowAdd", {"ms": 200, "n": 1}))
        elif n % 8 == 5:
            items.append((f"sleep-{n}", "/Sleeper/sleep", 1500))
        else:
            items.append((f"add-{n}", f"{counter}/add", 1))
    return items


def _attach(srv: RestateServerProcess, invocation_id: str) -> Response:
    return get(f"{srv.ingress_url}/restate/invocation/{invocation_id}/attach", timeout=60)


def test_sigterm_under_load_then_restart_loses_and_repeats_nothing(
    server: Callable[..., RestateServerProcess], ts_endpoint: Callable[..., TsEndpoint]
) -> None:
    endpoint = ts_endpoint()
    srv = server(env={"RESTATE_SHUTDOWN_TIMEOUT": f"{SHUTDOWN_TIMEOUT_S}s"}, stop_grace=30)
    srv.register(endpoint.url)
    # an attempt that cannot finish in time: step3 waits for a gate opened after restart
    assert call(srv.ingress_url, "/Steps/threeSteps/send", "gated").status == 202
    endpoint.wait_at_gate("gated")

    sender = Sender(srv.ingress_url)
    workload = _workload()

    def load(item: tuple[str, str, object]) -> None:
        sender.send(*item)

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(load, item) for item in workload]
        while len(sender.accepted) < SENDS // 3:
            time.sleep(0.01)
        started = time.monotonic()
        code = srv.stop()  # SIGTERM (the harness's stop signal) while the pool keeps sending
        took = time.monotonic() - started
        for future in futures:
            future.result()
    assert code == 0, srv.log_tail()
    # the gated attempt keeps it waiting for the whole shutdown-timeout, not longer
    assert SHUTDOWN_TIMEOUT_S - 0.5 <= took < SHUTDOWN_TIMEOUT_S + 8, took
    log = srv.log_path.read_text()
    assert "Shutting down" in log and "still running at shutdown" in log and "Stopped" in log
    accepted_before = dict(sender.accepted)
    assert 0 < len(accepted_before) < SENDS

    srv.start()
    for key, path, body in workload:  # what was not accepted is sent again, same key
        while not sender.send(key, path, body):
            time.sleep(0.1)
    assert {k: sender.accepted[k] for k in accepted_before} == accepted_before
    endpoint.open_gate("gated")

    for key, invocation_id in sender.accepted.items():
        answer = _attach(srv, invocation_id)
        assert answer.status == 200, (key, answer.text())
        if key.startswith("sleep"):
            assert answer.json() == "slept"
        else:
            assert isinstance(answer.json(), int)
    adds = Counter(path for key, path, _ in workload if not key.startswith("sleep"))
    for n in range(COUNTERS):
        counter = f"/Counter/gs-{n}"
        expected = adds[f"{counter}/add"] + adds[f"{counter}/slowAdd"]
        assert call(srv.ingress_url, f"{counter}/get").json() == expected, counter

    deadline = time.monotonic() + 30
    while "gated step3" not in endpoint.side_effects() and time.monotonic() < deadline:
        time.sleep(0.05)
    effects = Counter(endpoint.side_effects())
    assert effects["gated step1"] == 1 and effects["gated step2"] == 1, effects
    assert effects["gated step3"] >= 1
