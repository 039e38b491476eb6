"""Property-based probes of the ingress (hypothesis) against a real server process with
the TS test services: keys of any text (unicode, ``/``, ``%``, spaces, very long) address
one object each way they are written; random headers and bodies never get a 5xx from the
server itself; every error is the ingress's JSON shape; the server stays healthy.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.endpoints import TsEndpoint
from tests.support.http import call, request
from tests.support.raw_http import exchange
from tests.support.server import RestateServerProcess

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run: a failure reproduces
)
# header names are tokens; values printable latin-1 without CR/LF
TOKEN = st.text(alphabet=string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~", min_size=1)
VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=200)
SKIPPED_HEADERS = {"content-length", "transfer-encoding", "host", "connection", "expect"}


@pytest.fixture
def ingress(
    server: Callable[..., RestateServerProcess], ts_endpoint: Callable[..., TsEndpoint]
) -> Iterator[RestateServerProcess]:
    srv = server()
    assert srv.register(ts_endpoint().url).status in (200, 201)
    yield srv
    # whatever was sent, the server is still up and answering
    assert request("GET", srv.ingress_url + "/restate/health").status == 200
    assert call(srv.ingress_url, "/Greeter/greet", "still").json() == "Hello, still!"


def _is_error_shape(body: bytes) -> bool:
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and "message" in parsed


@SETTINGS
@given(key=st.text(min_size=1, max_size=300))
def test_any_key_addresses_one_object(ingress: RestateServerProcess, key: str) -> None:
    encoded = quote(key, safe="")
    added = call(ingress.ingress_url, f"/Counter/{encoded}/add", 2)
    assert added.status == 200, (key, added.status, added.text())
    total = added.json()
    assert total >= 2 and total % 2 == 0
    got = call(ingress.ingress_url, f"/Counter/{encoded}/get")
    assert got.status == 200 and got.json() == total, (key, got.text())


@SETTINGS
@given(headers=st.dictionaries(TOKEN, VALUE, max_size=30))
def test_random_headers_never_break_a_call(
    ingress: RestateServerProcess, headers: dict[str, str]
) -> None:
    headers = {k: v for k, v in headers.items() if k.lower() not in SKIPPED_HEADERS}
    lines = [f"{name}: {value}" for name, value in headers.items()]
    if not any(name.lower() == "content-type" for name in headers):
        lines.append("content-type: application/json")
    lines += ["connection: close", "content-length: 3"]
    head = "\r\n".join(["POST /Greeter/greet HTTP/1.1", "host: x", *lines])
    done = exchange(ingress.ingress_port, head.encode("latin-1") + b'\r\n\r\n"h"')
    assert done.statuses, done.received[:300]
    status = done.statuses[0]
    assert status < 500, (headers, done.received[:500])
    if status >= 400:
        assert _is_error_shape(done.received.split(b"\r\n\r\n", 1)[1]), done.received[:500]


@SETTINGS
@given(
    body=st.binary(max_size=2000),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/octet-stream", "", "application/x"]
    ),
)
def test_random_bodies_get_an_answer_in_the_error_shape(
    ingress: RestateServerProcess, body: bytes, content_type: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    resp = request("POST", ingress.ingress_url + "/Greeter/greet", body=body, headers=headers)
    # the handler's own failure (the SDK cannot read the input) is the SDK's 5xx, not
    # ours; everything the server refuses itself is a 4xx in the ingress's error shape
    if resp.status >= 400:
        assert _is_error_shape(resp.body), (resp.status, resp.body[:300])


@SETTINGS
@given(line=st.binary(min_size=1, max_size=300))
def test_garbage_request_lines_get_a_4xx_or_a_close(
    ingress: RestateServerProcess, line: bytes
) -> None:
    probe = line + b"\r\nhost: x\r\nconnection: close\r\n\r\n"
    done = exchange(ingress.ingress_port, probe, read_timeout=1.0)
    assert all(400 <= status < 500 or status < 300 for status in done.statuses), (
        line,
        done.received[:300],
    )
