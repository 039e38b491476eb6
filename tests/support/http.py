"""Tiny HTTP helpers for end-to-end tests.

- ``call`` / ``register_deployment``: blocking HTTP/1.1 (urllib, proxies ignored), for the
  ingress and admin APIs.
- ``acall``: the same call on aiohttp, for tests that need calls in flight concurrently.
- ``h2c_exchange``: requests on concurrent streams of one HTTP/2 cleartext (prior
  knowledge) connection, with the ``h2`` library (the ingress's h2c); ``h2c_get`` one GET
  (an SDK endpoint's ``/discover``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import h2.config
import h2.connection
import h2.events

CALL_TIMEOUT = 30.0
MANIFEST_V4 = "application/vnd.restate.endpointmanifest.v4+json"

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_NO_BODY = object()


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def text(self) -> str:
        return self.body.decode(errors="replace")

    def __iter__(self) -> Iterator[Any]:
        """Unpacks as ``(status, headers, body)``."""
        return iter((self.status, self.headers, self.body))


def _lower_headers(items: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = CALL_TIMEOUT,
) -> Response:
    """One blocking HTTP/1.1 request; any status comes back as a ``Response``."""
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return Response(resp.status, _lower_headers(resp.getheaders()), resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return Response(err.code, _lower_headers(err.headers.items()), err.read())


def _json_request(
    json_body: Any, headers: Mapping[str, str] | None
) -> tuple[bytes | None, dict[str, str]]:
    hdrs = dict(headers or {})
    if json_body is _NO_BODY:
        return None, hdrs
    if not any(k.lower() == "content-type" for k in hdrs):
        hdrs["content-type"] = "application/json"
    return json.dumps(json_body).encode(), hdrs


def call(
    ingress_url: str,
    path: str,
    json_body: Any = _NO_BODY,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "POST",
    timeout: float = CALL_TIMEOUT,
) -> Response:
    """Call ``ingress_url + path`` (e.g. ``/Greeter/greet``) with a JSON body.

    Leave ``json_body`` out to send no body at all; ``None`` sends JSON ``null``. Returns a
    ``Response`` that also unpacks as ``(status, headers, body)``.
    """
    body, hdrs = _json_request(json_body, headers)
    return request(method, ingress_url.rstrip("/") + path, body=body, headers=hdrs, timeout=timeout)


def get(
    url: str, headers: Mapping[str, str] | None = None, timeout: float = CALL_TIMEOUT
) -> Response:
    return request("GET", url, headers=headers, timeout=timeout)


async def acall(
    ingress_url: str,
    path: str,
    json_body: Any = _NO_BODY,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "POST",
    timeout: float = CALL_TIMEOUT,
) -> Response:
    """``call`` on asyncio (aiohttp): start several and ``asyncio.gather`` them."""
    body, hdrs = _json_request(json_body, headers)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with (
        aiohttp.ClientSession(timeout=client_timeout, trust_env=False) as session,
        session.request(
            method,
            ingress_url.rstrip("/") + path,
            data=body,
            headers=hdrs,
            # aiohttp would label an empty POST application/octet-stream, which the real
            # server rejects (400) for JSON handlers; send no content-type, like urllib.
            skip_auto_headers=() if body is not None else ("Content-Type",),
        ) as resp,
    ):
        return Response(resp.status, _lower_headers(resp.headers.items()), await resp.read())


class RegistrationError(RuntimeError):
    pass


def register_deployment(
    admin_url: str,
    uri: str,
    *,
    timeout: float = CALL_TIMEOUT,
    check: bool = True,
    **opts: Any,
) -> Response:
    """``POST /deployments {"uri": uri, **opts}`` (opts: force, use_http_11, ...).

    With ``check`` (default) anything but 200/201 raises ``RegistrationError`` carrying the
    answer; ``.json()`` of the result is the ``RegisterDeploymentResponse``.
    """
    payload = {"uri": uri, **opts}
    resp = request(
        "POST",
        admin_url.rstrip("/") + "/deployments",
        body=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
        timeout=timeout,
    )
    if check and resp.status not in (200, 201):
        raise RegistrationError(
            f"POST {admin_url}/deployments {payload} -> {resp.status}: {resp.text()}"
        )
    return resp


@dataclass(frozen=True)
class H2Request:
    method: str
    path: str
    body: bytes = b""
    headers: Mapping[str, str] | None = None
    end_stream: bool = True  # False: the request never ends (an answer must come anyway)


def h2c_exchange(
    host: str, port: int, requests: list[H2Request], timeout: float = 10.0
) -> list[Response]:
    """Send ``requests`` at once on one HTTP/2 cleartext connection (prior knowledge),
    each on its own stream, and return their responses in the same order (a stream reset
    before its answer gives status 0 and the error code in the header ``:reset``)."""
    deadline = time.monotonic() + timeout
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        conn.initiate_connection()
        pending: dict[int, bytes] = {}  # request bodies not yet sent (flow control)
        open_ended: set[int] = set()
        order: list[int] = []
        for req in requests:
            stream_id = conn.get_next_available_stream_id()
            order.append(stream_id)
            headers = [
                (":method", req.method),
                (":scheme", "http"),
                (":authority", f"{host}:{port}"),
                (":path", req.path),
                *((k.lower(), v) for k, v in (req.headers or {}).items()),
            ]
            conn.send_headers(stream_id, headers, end_stream=req.end_stream and not req.body)
            if req.body:
                pending[stream_id] = req.body
            if not req.end_stream:
                open_ended.add(stream_id)
        status: dict[int, int] = {}
        resp_headers: dict[int, list[tuple[str, str]]] = {sid: [] for sid in order}
        bodies: dict[int, bytearray] = {sid: bytearray() for sid in order}
        done: set[int] = set()

        def send_bodies() -> None:
            for stream_id, body in list(pending.items()):
                size = min(len(body), conn.local_flow_control_window(stream_id))
                size = min(size, conn.max_outbound_frame_size)
                if size <= 0:
                    continue
                last = size == len(body) and stream_id not in open_ended
                conn.send_data(stream_id, body[:size], end_stream=last)
                if size == len(body):
                    del pending[stream_id]
                else:
                    pending[stream_id] = body[size:]

        send_bodies()
        sock.sendall(conn.data_to_send())
        while len(done) < len(order):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"h2c requests to {host}:{port} timed out")
            sock.settimeout(remaining)
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"h2c {host}:{port}: connection closed early")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    for name, value in event.headers:
                        key = name.decode() if isinstance(name, bytes) else name
                        val = value.decode() if isinstance(value, bytes) else value
                        if key == ":status":
                            status[event.stream_id] = int(val)
                        else:
                            resp_headers[event.stream_id].append((key, val))
                elif isinstance(event, h2.events.DataReceived):
                    bodies[event.stream_id] += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    done.add(event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    # before an answer: status 0 and the code as ":reset"; after one (a
                    # 413 that stops the body): the answer stands
                    if event.stream_id not in status:
                        status[event.stream_id] = 0
                        resp_headers[event.stream_id].append((":reset", str(event.error_code)))
                    done.add(event.stream_id)
                    pending.pop(event.stream_id, None)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise ConnectionError(f"h2c connection terminated ({event.error_code})")
            send_bodies()
            outgoing = conn.data_to_send()
            if outgoing:
                sock.sendall(outgoing)
        conn.close_connection()
        # Best effort GOAWAY; the peer may already be closing.
        with contextlib.suppress(OSError):
            sock.sendall(conn.data_to_send())
    return [
        Response(status.get(sid, 0), _lower_headers(resp_headers[sid]), bytes(bodies[sid]))
        for sid in order
    ]


def h2c_get(
    host: str,
    port: int,
    path: str,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> Response:
    """GET over HTTP/2 cleartext with prior knowledge (what the server uses for discovery)."""
    return h2c_exchange(host, port, [H2Request("GET", path, headers=headers)], timeout)[0]


def discover(port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> Response:
    """``GET /discover`` on an SDK endpoint, asking for the v4 manifest (as 1.7.12 does)."""
    return h2c_get(host, port, "/discover", {"accept": MANIFEST_V4}, timeout=timeout)


def query_rows(
    admin_url: str, sql: str, *, path: str = "/query", timeout: float = CALL_TIMEOUT
) -> list[dict[str, Any]]:
    """``POST /query`` (JSON rows) on an admin API; asserts a 200."""
    response = request(
        "POST",
        admin_url.rstrip("/") + path,
        body=json.dumps({"query": sql}).encode(),
        headers={"content-type": "application/json", "accept": "application/json"},
        timeout=timeout,
    )
    assert response.status == 200, response.text()
    return list(response.json()["rows"])
