"""Bad input on the HTTP ports, sent as raw bytes to our server and to the real
restate-server 1.7.12 with the same services registered: what each answers, and that
ours refuses oversized or slow requests without buffering them or stalling others.

Findings of issue 12 covered here (each a regression test): a request followed by
garbage is answered before the 400 (1); 413 at once for an announced oversized body (2);
431 for header floods, refused before buffering, with other clients unaffected (3);
header and body read timeouts (4); a raw UTF-8 request target (6); 405 for an unknown
method and 414 for a 64 KiB path (9).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable

from tests.reliability.side_by_side import Server, counter_value
from tests.support.endpoints import TsEndpoint
from tests.support.http import call, request
from tests.support.procfs import rss_mb
from tests.support.raw_http import Exchange, exchange
from tests.support.server import RestateServerProcess

MIB = 1024 * 1024


def _post(path: str, body: bytes, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "host: x", "content-type: application/json"]
    lines += [*extra, f"content-length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode("utf-8") + body


def test_a_request_followed_by_garbage_is_answered_first(pair: dict[str, Server]) -> None:
    for which, srv in pair.items():
        done = exchange(srv.ingress_port, _post("/Counter/g/add", b"1") + b"GARBAGE\r\n\r\n")
        assert done.statuses == [200, 400], (which, done.received)
        assert done.received.split(b"\r\n\r\n", 1)[1].startswith(b"1"), which
        assert done.closed, which
        assert counter_value(srv, "g") == 1, which


def test_an_announced_oversized_body_gets_413_at_once(pair: dict[str, Server]) -> None:
    head = b"POST /Greeter/greet HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    head += b"content-length: 104857600\r\n\r\n"
    for which, srv in pair.items():
        done = exchange(srv.ingress_port, head, read_timeout=3)
        assert done.statuses == [413], (which, done.received)
        assert done.received.endswith(b"length limit exceeded"), which
        assert done.seconds < 2, which
    # ours on the admin port too (the real one waits for the body there)
    done = exchange(pair["ours"].admin_port, head.replace(b"/Greeter/greet", b"/query"))
    assert done.statuses == [413] and done.closed


def test_a_body_over_the_limit_is_refused_while_it_arrives(
    server: Callable[..., RestateServerProcess],
) -> None:
    srv = server(env={"RESTATE_PY__HTTP__MAX_BODY_SIZE": "1 MiB"})
    head = b"POST /Greeter/greet HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
    piece = b"%x\r\n%s\r\n" % (256 * 1024, b"a" * 256 * 1024)
    done = exchange(srv.ingress_port, head, *([piece] * 8), read_timeout=3)
    assert done.statuses == [413], done.received
    assert request("GET", srv.ingress_url + "/restate/health").status == 200


def test_header_floods_get_431(pair: dict[str, Server]) -> None:
    many = b"".join(b"x-h%d: v\r\n" % i for i in range(1000))
    probes = {
        "1000 headers": b"GET /restate/health HTTP/1.1\r\nhost: x\r\n" + many + b"\r\n",
        "a 1 MiB header": b"GET /restate/health HTTP/1.1\r\nx-big: " + b"a" * MIB + b"\r\n\r\n",
    }
    for which, srv in pair.items():
        for name, probe in probes.items():
            done = exchange(srv.ingress_port, probe)
            assert done.statuses == [431], (which, name, done.received[:200])
            assert done.closed, (which, name)


def test_a_huge_header_value_neither_buffers_nor_stalls_others(
    server: Callable[..., RestateServerProcess], ts_endpoint: Callable[..., TsEndpoint]
) -> None:
    """A 256 MiB header value sent in 1 MiB writes is refused after the first MiB; the
    server's memory stays put and other clients' greets go on meanwhile."""
    srv = server()
    assert srv.register(ts_endpoint().url).status in (200, 201)
    pid = srv.process.pid
    assert pid is not None
    rss_before = rss_mb(pid)
    latencies: list[float] = []
    stop = threading.Event()

    def greets() -> None:
        while not stop.is_set():
            started = time.monotonic()
            assert call(srv.ingress_url, "/Greeter/greet", "x").status == 200
            latencies.append(time.monotonic() - started)

    side = threading.Thread(target=greets)
    side.start()
    try:
        value = b"a" * MIB
        done = exchange(
            srv.ingress_port,
            b"GET /restate/health HTTP/1.1\r\nx-big: ",
            *([value] * 256),
            read_timeout=5,
        )
    finally:
        stop.set()
        side.join()
    assert done.statuses == [431], done.received[:200]
    assert done.seconds < 5
    assert rss_mb(pid) - rss_before < 50
    assert latencies and max(latencies) < 1.0, statistics.median(latencies)


def test_slow_heads_and_stalled_bodies_time_out(
    server: Callable[..., RestateServerProcess],
) -> None:
    srv = server(
        env={
            "RESTATE_PY__HTTP__HEADER_READ_TIMEOUT": "1s",
            "RESTATE_PY__HTTP__BODY_READ_TIMEOUT": "1s",
            "RESTATE_PY__HTTP__IDLE_TIMEOUT": "2s",
        }
    )
    # slowloris: a header byte every 0.2 s never completes a head
    head = b"GET /restate/health HTTP/1.1\r\nx-slow: " + b"a" * 20
    done = exchange(srv.ingress_port, *[head[i : i + 1] for i in range(len(head))], pause=0.2)
    assert done.statuses == [408] and done.closed, done.received
    # a body that stops half-way
    stalled = _post("/Greeter/greet", b'"abc"')[:-2]
    done = exchange(srv.admin_port, stalled, read_timeout=4)
    assert done.statuses == [408] and done.closed and done.seconds < 4, done
    # an idle kept-alive connection is closed, silently
    health = b"GET /restate/health HTTP/1.1\r\nhost: x\r\n\r\n"
    done = exchange(srv.ingress_port, health, read_timeout=5)
    assert done.statuses == [200] and done.closed and 1.5 < done.seconds < 5, done


def test_a_raw_utf8_key_is_a_key(pair: dict[str, Server]) -> None:
    for which, srv in pair.items():
        done = exchange(srv.ingress_port, _post("/Counter/ключ-raw/add", b"3"))
        assert done.statuses == [200], (which, done.received)
        # the same key, percent-encoded
        assert counter_value(srv, "%D0%BA%D0%BB%D1%8E%D1%87-raw") == 3, which


def test_unknown_methods_and_long_paths(pair: dict[str, Server]) -> None:
    results: dict[str, dict[str, Exchange]] = {}
    for which, srv in pair.items():
        results[which] = {
            "FOO on the admin port": exchange(srv.admin_port, b"FOO /health HTTP/1.1\r\n\r\n"),
            "a 64 KiB path": exchange(
                srv.ingress_port, b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\nhost: x\r\n\r\n"
            ),
        }
    for name in results["ours"]:
        ours, real = results["ours"][name], results["real"][name]
        assert ours.statuses[:1] == real.statuses[:1], (name, ours.received[:200], real)
    assert results["ours"]["FOO on the admin port"].statuses == [405]
    assert results["ours"]["a 64 KiB path"].statuses == [414]
    assert len(results["ours"]["a 64 KiB path"].received) < 1024  # the path is not echoed


def test_nothing_is_written_for_refused_requests(pair: dict[str, Server]) -> None:
    srv = pair["ours"]
    big_header = _post("/Counter/r/add", b"1", "x-big: " + "a" * (100 * 1024))
    refused = [
        [_post("/Counter/r/add", b"1", *[f"x-h{i}: v" for i in range(200)])],
        [big_header],
        # a head that begins in a small read and ends in the next one (once let through)
        [big_header[:64], big_header[64:]],
        [b"POST /Counter/r/add HTTP/1.1\r\nhost: x\r\ncontent-length: 104857600\r\n\r\n1"],
    ]
    for chunks in refused:
        done = exchange(srv.ingress_port, *chunks, pause=0.05)
        assert done.statuses[0] in (413, 431), done.received[:200]
    assert counter_value(srv, "r") == 0
    body = json.dumps({"query": "SELECT COUNT(*) AS n FROM sys_invocation"}).encode()
    headers = ["accept: application/json"]
    done = exchange(srv.admin_port, _post("/query", body, *headers))
    assert done.statuses == [200]
