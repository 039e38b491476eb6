"""HTTP/2 cleartext (prior knowledge) on the ingress and admin ports, as the real server
serves it: the same routes and answers as HTTP/1.1, many requests in flight on one
connection, and the same limits (issue 12, finding 5)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.http import H2Request, Response, get, h2c_exchange
from tests.support.ports import LOOPBACK
from tests.support.server import RealRestateServerProcess, RestateServerProcess

JSON = {"content-type": "application/json"}


def _greets(count: int) -> list[H2Request]:
    return [
        H2Request("POST", "/Greeter/greet", json.dumps(f"h2-{i}").encode(), JSON)
        for i in range(count)
    ]


def test_ingress_and_admin_answer_over_h2c(
    server: Callable[..., RestateServerProcess], endpoint: TsEndpoint | PyEndpoint
) -> None:
    srv = server()
    srv.register(endpoint.url)
    adds = [H2Request("POST", "/Counter/h2c/add", b"1", JSON) for _ in range(10)]
    others = [
        H2Request("POST", "/Greeter/greet/send", b'"later"', JSON),
        H2Request("POST", "/Nope/greet", b'"x"', JSON),
        H2Request("GET", "/restate/health"),
    ]
    answers = h2c_exchange(LOOPBACK, srv.ingress_port, _greets(30) + adds + others, timeout=60)
    greets, counted, (sent, unknown, health) = answers[:30], answers[30:40], answers[40:]
    assert [(a.status, a.json()) for a in greets] == [(200, f"Hello, h2-{i}!") for i in range(30)]
    assert all(a.headers["x-restate-id"].startswith("inv_") for a in greets)
    # one key's calls run one at a time, each seeing the one before
    assert sorted(a.json() for a in counted) == list(range(1, 11))
    assert srv.call("/Counter/h2c/get", method="POST").json() == 10
    assert sent.status == 202 and sent.json()["status"] == "Accepted"
    assert health.status == 200
    over_http1 = srv.call("/Nope/greet", "x")
    assert (
        (unknown.status, unknown.json())
        == (over_http1.status, over_http1.json())
        == (
            404,
            over_http1.json(),
        )
    )
    # the admin port too
    deployments, admin_health = h2c_exchange(
        LOOPBACK, srv.admin_port, [H2Request("GET", "/deployments"), H2Request("GET", "/health")]
    )
    assert deployments.status == 200
    assert deployments.json() == get(f"{srv.admin_url}/deployments").json()
    assert admin_health.status == 200


def _masked(answer: Response) -> tuple[int, str, list[str]]:
    body = re.sub(r"(inv|dp)_[0-9A-Za-z]+", r"\1_*", answer.body.decode())
    names = sorted(name for name in answer.headers if name != "date")
    return answer.status, body, names


def test_h2c_answers_match_the_real_server(
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> None:
    endpoint = ts_endpoint()
    probes = [
        H2Request("POST", "/Greeter/greet", b'"Ada"', JSON),
        H2Request("POST", "/Counter/parity/add", b"2", JSON),
        H2Request("POST", "/Nope/greet", b'"x"', JSON),
        H2Request("GET", "/Greeter/greet"),
        H2Request("POST", "/Counter/ключ/add", b"1", JSON),  # a raw UTF-8 key
        # announced over the body limit: refused without waiting for the body
        H2Request(
            "POST",
            "/Greeter/greet",
            b'"x"',
            {**JSON, "content-length": "104857600"},
            end_stream=False,
        ),
        # a body shorter than its content-length is malformed (RFC 9113 §8.1.1)
        H2Request("POST", "/Greeter/greet", b'"x"', {**JSON, "content-length": "5"}),
    ]
    results = {}
    for name, factory in (("ours", server), ("real", real_server)):
        srv = factory()
        srv.register(endpoint.url)
        results[name] = [_masked(a) for a in h2c_exchange(LOOPBACK, srv.ingress_port, probes)]
        srv.stop()
    for probe, ours, real in zip(probes, results["ours"], results["real"], strict=True):
        assert ours == real, probe
