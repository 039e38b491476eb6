"""Registering an endpoint that does not speak HTTP (issue 12, finding 7): over HTTP/1.1,
an endpoint answering random bytes or an HTML page is refused at once with a short,
clear error (the real server: META0003 / META0013), not retried for seconds with
kilobytes of the junk quoted."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.http import request
from tests.support.server import RealRestateServerProcess, RestateServerProcess

Server = RestateServerProcess | RealRestateServerProcess

ANSWERS = {
    "random bytes": os.urandom(20_000),
    "an html page": b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n\r\n<html>" + b"junk " * 4000,
}


@pytest.fixture
def junk_endpoint() -> Iterator[Callable[[bytes], str]]:
    """A loopback TCP server that answers every connection with the given bytes."""
    listeners: list[socket.socket] = []

    def start(answer: bytes) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with conn:
                    conn.settimeout(2)
                    try:
                        conn.recv(65536)
                        conn.sendall(answer)
                    except OSError:
                        pass

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}/"

    yield start
    for listener in listeners:
        listener.close()


def _register(srv: Server, uri: str) -> tuple[int, str, float]:
    started = time.monotonic()
    resp = request(
        "POST",
        srv.admin_url + "/deployments",
        body=json.dumps({"uri": uri, "use_http_11": True}).encode(),
        headers={"content-type": "application/json"},
    )
    return resp.status, resp.text(), time.monotonic() - started


def test_junk_answers_to_discovery_are_refused_at_once(
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
    junk_endpoint: Callable[[bytes], str],
) -> None:
    ours, real = server(), real_server()
    for name, answer in ANSWERS.items():
        uri = junk_endpoint(answer)
        status, text, seconds = _register(ours, uri)
        real_status, real_text, _ = _register(real, uri)
        # the real server's status (500 for an unreachable endpoint, 400 for a bad answer)
        assert status == real_status, (name, text, real_text)
        assert seconds < 1.0, (name, seconds)
        assert len(text) < 1000, (name, text[:300])
        expected = "META0013" if name == "an html page" else "META0003"
        assert expected in text and expected in real_text, (name, text, real_text)
    _, text, _ = _register(ours, junk_endpoint(ANSWERS["random bytes"]))
    assert "server possibly supports only HTTP/2" in text
