"""Malformed HTTP/1.1 framing, sent as raw bytes to our ingress and to the real
restate-server 1.7.12's side by side (same TS services): broken chunked bodies, wrong and
conflicting Content-Length, unknown transfer codings, broken header syntax, a body cut
short by a half-close, and thousands of idle connections.

Every probe targets its own counter key, so "nothing was written for a refused request"
is checked by reading each key back (0). Ours answers every refusal with a 400 in the
ingress's JSON error shape and closes; where the real server answers differently (a 500
for a broken chunked body, or accepting what ours refuses) the test says so.

(A body that stops arriving is in test_http_probes.py: 408 after body-read-timeout.)
"""

from __future__ import annotations

import json
import resource
import select
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.reliability.side_by_side import Server, counter_value
from tests.support.endpoints import TsEndpoint
from tests.support.http import call, request
from tests.support.procfs import rss_mb
from tests.support.raw_http import LOOPBACK, Exchange, exchange
from tests.support.server import RealRestateServerProcess, RestateServerProcess

IDLE_CONNECTIONS = 2000


def _head(key: str, *headers: str, version: str = "HTTP/1.1") -> bytes:
    lines = [f"POST /Counter/{key}/add {version}", "host: x", "content-type: application/json"]
    return "\r\n".join([*lines, *headers, "", ""]).encode()


@dataclass(frozen=True)
class Probe:
    name: str
    key: str  # the counter it would add to
    data: bytes
    real: list[int]  # what the real server answers (statuses)
    ours: list[int]  # what ours answers: a 400, or what the real one does too
    real_count: int = 0  # what the real server's counter shows afterwards


def _chunked(key: str, body: bytes) -> bytes:
    return _head(key, "transfer-encoding: chunked") + body


# the real server answers 500 "cannot read body: hyper::Error(Body, ...)" for every broken
# chunked body: the request's fault, answered as its own
CHUNKED = [
    Probe("chunk size not hex", "c1", _chunked("c1", b"zz\r\n1\r\n0\r\n\r\n"), [500], [400]),
    Probe("chunk size negative", "c2", _chunked("c2", b"-1\r\n1\r\n0\r\n\r\n"), [500], [400]),
    Probe(
        "chunk size overflows",
        "c3",
        _chunked("c3", b"fffffffffffffffffffff\r\n1\r\n0\r\n\r\n"),
        [500],
        [400],
    ),
    Probe("no CRLF after chunk data", "c4", _chunked("c4", b"1\r\n10\r\n\r\n"), [500], [400]),
    Probe(
        "chunk bigger than announced",
        "c5",
        _chunked("c5", b"1\r\n123\r\n0\r\n\r\n"),
        [500],
        [400],
    ),
    Probe(
        "a trailer that is no header",
        "c6",
        _chunked("c6", b"1\r\n1\r\n0\r\nbad\r\n\r\n"),
        [500],
        [400],
    ),
    # accepted by the real server, refused by ours (control character in an extension)
    Probe(
        "junk chunk extension", "c7", _chunked("c7", b"1;\x01\r\n1\r\n0\r\n\r\n"), [200], [400], 1
    ),
]
LENGTHS = [
    Probe(
        "two different content-lengths",
        "l1",
        _head("l1", "content-length: 1", "content-length: 2") + b"12",
        [400],
        [400],
    ),
    # RFC 9112 lets a recipient accept or refuse these two; ours refuses
    Probe(
        "the same content-length twice",
        "l2",
        _head("l2", "content-length: 1", "content-length: 1") + b"1",
        [200],
        [400],
        1,
    ),
    Probe(
        "content-length and transfer-encoding",
        "l3",
        _head("l3", "content-length: 3", "transfer-encoding: chunked") + b"1\r\n1\r\n0\r\n\r\n",
        [200],
        [400],
        1,
    ),
    Probe(
        "transfer-encoding and content-length",
        "l4",
        _head("l4", "transfer-encoding: chunked", "content-length: 3") + b"1\r\n1\r\n0\r\n\r\n",
        [200],
        [400],
        1,
    ),
    Probe("content-length list", "l5", _head("l5", "content-length: 1, 1") + b"1", [400], [400]),
    Probe(
        "content-length not a number", "l6", _head("l6", "content-length: abc") + b"1", [400], [400]
    ),
    Probe("negative content-length", "l7", _head("l7", "content-length: -1") + b"1", [400], [400]),
    Probe(
        "content-length with a sign", "l8", _head("l8", "content-length: +1") + b"1", [400], [400]
    ),
    Probe(
        "content-length past 2**64",
        "l9",
        _head("l9", "content-length: 99999999999999999999999") + b"1",
        [400],
        [400],
    ),
]
CODINGS = [
    Probe(
        "transfer-encoding gzip", "t1", _head("t1", "transfer-encoding: gzip") + b"1", [400], [400]
    ),
    Probe(
        "chunked, then gzip",
        "t2",
        _head("t2", "transfer-encoding: chunked, gzip") + b"1\r\n1\r\n0\r\n\r\n",
        [400],
        [400],
    ),
    Probe(
        "transfer-encoding xchunked",
        "t3",
        _head("t3", "transfer-encoding: xchunked") + b"1\r\n1\r\n0\r\n\r\n",
        [400],
        [400],
    ),
    Probe(
        "chunked twice",
        "t4",
        _head("t4", "transfer-encoding: chunked", "transfer-encoding: chunked")
        + b"1\r\n1\r\n0\r\n\r\n",
        [200],
        [400],
        1,
    ),
]
SYNTAX = [
    Probe(
        "space before the colon",
        "s1",
        _head("s1", "transfer-encoding : chunked") + b"1\r\n1\r\n0\r\n\r\n",
        [400],
        [400],
    ),
    Probe(
        "folded header line",
        "s2",
        _head("s2", "content-length: 1", "x-a: b", " c") + b"1",
        [400],
        [400],
    ),
    Probe("CR without LF", "s3", _head("s3", "content-length: 1\rx-a: b") + b"1", [400], [400]),
    Probe(
        "NUL in a header value",
        "s4",
        _head("s4", "x-a: a\x00b", "content-length: 1") + b"1",
        [400],
        [400],
    ),
    Probe(
        "bare LF line ends",
        "s5",
        _head("s5", "content-length: 1").replace(b"\r\n", b"\n") + b"1",
        [200],
        [400],
        1,
    ),
    Probe(
        "HTTP/1.2", "s6", _head("s6", "content-length: 1", version="HTTP/1.2") + b"1", [400], [400]
    ),
    # HTTP/2 begins with its preface, never with a request line (ours used to run this)
    Probe(
        "HTTP/2.0", "s7", _head("s7", "content-length: 1", version="HTTP/2.0") + b"1", [400], [400]
    ),
]
PROBES = CHUNKED + LENGTHS + CODINGS + SYNTAX


def _error_body(done: Exchange) -> dict[str, object]:
    return json.loads(done.received.split(b"\r\n\r\n", 1)[1])


def test_malformed_framing_gets_a_400_and_writes_nothing(pair: dict[str, Server]) -> None:
    results: dict[str, dict[str, Exchange]] = {"ours": {}, "real": {}}
    for which, srv in pair.items():
        for probe in PROBES:
            # the real server keeps an accepted request's connection open: do not wait long
            results[which][probe.name] = exchange(srv.ingress_port, probe.data, read_timeout=1.0)
    mismatches = []
    for probe in PROBES:
        ours, real = results["ours"][probe.name], results["real"][probe.name]
        if (ours.statuses, real.statuses) != (probe.ours, probe.real):
            mismatches.append((probe.name, ours.statuses, real.statuses, ours.received[-200:]))
            continue
        if probe.ours == [400]:
            # a clear refusal: the ingress's error shape, the connection closed at once
            assert ours.closed and ours.seconds < 1, probe.name
            error = _error_body(ours)
            assert error["code"] == 400 and str(error["message"]).startswith("bad request"), error
            head = ours.received.split(b"\r\n\r\n", 1)[0].lower()
            assert b"\r\ncontent-type: application/json" in head, probe.name
    assert not mismatches, mismatches
    for probe in PROBES:
        assert counter_value(pair["ours"], probe.key) == 0, probe.name
        assert counter_value(pair["real"], probe.key) == probe.real_count, probe.name
    # the admin port shares the parser: the same refusals there
    for probe in PROBES:
        if probe.ours == [400]:
            data = probe.data.replace(f"/Counter/{probe.key}/add".encode(), b"/query", 1)
            done = exchange(pair["ours"].admin_port, data, read_timeout=1.0)
            assert done.statuses == [400] and done.closed, (probe.name, done.received[-200:])
    for srv in pair.values():
        assert call(srv.ingress_url, "/Greeter/greet", "after").json() == "Hello, after!"


def test_a_body_shorter_or_longer_than_announced(pair: dict[str, Server]) -> None:
    ours, real = pair["ours"], pair["real"]
    # shorter: the first byte is the body, the rest the next request
    short = _head("short", "content-length: 1") + b"12"
    done = exchange(ours.ingress_port, short, read_timeout=1.0)
    assert done.statuses == [200, 400] and done.closed, done.received[-200:]
    assert _error_body(Exchange(done.received.rsplit(b"HTTP/1.1", 1)[1], True, 0))["code"] == 400
    # the real server waits for the rest of that "next request"
    done = exchange(real.ingress_port, short, read_timeout=1.0)
    assert done.statuses == [200] and not done.closed
    for srv in pair.values():
        assert counter_value(srv, "short") == 1
    # longer, and the client stops sending (half-close): nothing to answer, nothing run
    for which, srv in pair.items():
        with socket.create_connection((LOOPBACK, srv.ingress_port), timeout=5) as sock:
            sock.sendall(_head("long", "content-length: 10") + b"123")
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        # ours closes without a word, the real server answers 500 "cannot read body"
        expected = b"" if which == "ours" else b"HTTP/1.1 500 "
        assert received.startswith(expected) and (which != "ours" or not received), received
        assert counter_value(srv, "long") == 0, which


def _raise_open_files(wanted: int) -> int:
    """Lift this process's soft open-file limit towards ``wanted`` (servers started
    afterwards inherit it); the number of connections the limit then allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def _greet_latencies(srv: Server, count: int) -> list[float]:
    latencies = []
    for i in range(count):
        started = time.monotonic()
        assert call(srv.ingress_url, "/Greeter/greet", f"n{i}").status == 200
        latencies.append(time.monotonic() - started)
    return latencies


def _closed_by_peer(sockets: list[socket.socket], timeout: float) -> int:
    """How many of ``sockets`` the server closes within ``timeout`` seconds."""
    pending = {sock.fileno(): sock for sock in sockets}
    closed = 0
    deadline = time.monotonic() + timeout
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLIN)
    while pending and time.monotonic() < deadline:
        for fd, _event in poller.poll(200):
            sock = pending.pop(fd)
            poller.unregister(fd)
            try:
                data = sock.recv(4096)
            except ConnectionResetError:
                data = b""
            # a silent close, or a 408 and then the close
            if not data or data.startswith(b"HTTP/1.1 408"):
                closed += 1
    return closed


def test_thousands_of_idle_connections(
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> None:
    """2,000 connections opened to the ingress and left silent: greets beside them stay
    fast, the server's memory grows by a bounded amount per connection, and it closes
    them once the idle timeout passes."""
    # ours and the test each hold every connection; leave room for the rest
    limit = _raise_open_files(2 * IDLE_CONNECTIONS + 512)
    count = min(IDLE_CONNECTIONS, limit - 512)
    assert count >= 1000, f"open-file limit {limit} is too low for this test"
    endpoint = ts_endpoint()
    ours = server(env={"RESTATE_PY__HTTP__IDLE_TIMEOUT": "5s"})
    real = real_server()
    for srv in (ours, real):
        assert srv.register(endpoint.url).status in (200, 201)
    pid = ours.process.pid
    assert pid is not None
    baseline = {
        which: statistics.median(_greet_latencies(srv, 20))
        for which, srv in (("ours", ours), ("real", real))
    }
    rss_before = rss_mb(pid)
    for which, srv in (("ours", ours), ("real", real)):
        sockets = [
            socket.create_connection((LOOPBACK, srv.ingress_port), timeout=5) for _ in range(count)
        ]
        try:
            opened = time.monotonic()
            latencies = _greet_latencies(srv, 50)
            print(
                f"{which}: {count} idle connections; greets median "
                f"{statistics.median(latencies) * 1000:.1f} ms (alone "
                f"{baseline[which] * 1000:.1f} ms), max {max(latencies) * 1000:.1f} ms"
            )
            assert max(latencies) < 1.0, (which, max(latencies))
            assert statistics.median(latencies) < baseline[which] + 0.05, (which, latencies)
            if which == "ours":
                growth = rss_mb(pid) - rss_before
                # a connection's buffers and task: well under 64 KiB each
                assert growth < count * 64 / 1024, growth
                # the idle timeout closes every one of them (5 s, some slack)
                left = 5.0 - (time.monotonic() - opened)
                closed = _closed_by_peer(sockets, max(left, 0) + 10)
                print(f"ours: RSS +{growth:.1f} MB, {closed} closed by the idle timeout")
                assert closed == count
        finally:
            for sock in sockets:
                sock.close()
        assert request("GET", srv.ingress_url + "/restate/health").status == 200
