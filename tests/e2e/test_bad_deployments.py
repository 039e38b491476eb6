"""Broken and malicious deployments: refused at registration, or retried with backoff;
the server itself keeps working."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.endpoints import PyEndpoint
from tests.support.ports import free_port
from tests.support.server import RestateServerProcess

FAKE_APP = Path(__file__).resolve().parent / "fake_endpoint" / "app.py"


def _healthy(srv: RestateServerProcess) -> None:
    assert srv.is_running()
    assert srv.call("/restate/health", method="GET").status == 200


def test_unreachable_deployment_is_refused(server: Callable[..., RestateServerProcess]) -> None:
    srv = server()
    started = time.monotonic()
    resp = srv.register(f"http://127.0.0.1:{free_port()}", check=False)
    assert resp.status == 500, resp.text()
    body = resp.json()
    assert body["restate_code"] == "META0003"
    assert "Connection refused" in body["message"] or "connect" in body["message"]
    assert time.monotonic() - started < 10
    _healthy(srv)


def test_garbage_discovery_is_refused(
    server: Callable[..., RestateServerProcess], py_endpoint: Callable[..., PyEndpoint]
) -> None:
    srv = server()
    fake = py_endpoint(FAKE_APP, env={"FAKE_MODE": "garbage"}, name="garbage")
    resp = srv.register(fake.url, check=False)
    assert resp.status >= 400, resp.text()
    assert "content type" in resp.json()["message"].lower()
    assert srv.call("/Broken/go", "x").status == 404
    _healthy(srv)


def test_unsupported_protocol_versions_are_refused(
    server: Callable[..., RestateServerProcess], py_endpoint: Callable[..., PyEndpoint]
) -> None:
    srv = server()
    fake = py_endpoint(FAKE_APP, env={"FAKE_MODE": "versions"}, name="versions")
    resp = srv.register(fake.url, check=False)
    assert resp.status >= 400, resp.text()
    body = resp.json()
    assert body["restate_code"] == "META0012"
    assert "unsupported service protocol versions" in body["message"]
    _healthy(srv)


def test_endpoint_breaking_mid_stream_is_retried_with_backoff(
    server: Callable[..., RestateServerProcess],
    py_endpoint: Callable[..., PyEndpoint],
    e2e_dir: Path,
) -> None:
    log = e2e_dir / "attempts.log"
    srv = server()
    fake = py_endpoint(
        FAKE_APP,
        env={"FAKE_MODE": "broken-stream", "FAKE_FAILURES": "3", "FAKE_LOG": str(log)},
        name="broken",
    )
    assert srv.register(fake.url).status == 201
    resp = srv.call("/Broken/go", "x", timeout=30)
    assert resp.status == 200, resp.text()
    assert resp.json() == "ok"
    times = [float(line) for line in log.read_text().split()]
    assert len(times) == 4  # three broken attempts, then success
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 500 ms x 2^n plus up to 30 % jitter
    assert 0.45 <= gaps[0] <= 1.0, gaps
    assert 0.9 <= gaps[1] <= 1.8, gaps
    assert 1.8 <= gaps[2] <= 3.5, gaps
    _healthy(srv)
