"""Tiny HTTP helpers for end-to-end tests.

- ``call`` / ``register_deployment``: blocking HTTP/1.1 (urllib, proxies ignored), for the
  ingress and admin APIs.
- ``acall``: the same call on aiohttp, for tests that need calls in flight concurrently.
- ``h2c_get``: a minimal HTTP/2 cleartext (prior knowledge) GET with the ``h2`` library,
  for an SDK endpoint's ``/discover``.
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


def h2c_get(
    host: str,
    port: int,
    path: str,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> Response:
    """GET over HTTP/2 cleartext with prior knowledge (what the server uses for discovery)."""
    deadline = time.monotonic() + timeout
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        conn.initiate_connection()
        stream_id = conn.get_next_available_stream_id()
        request_headers = [
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", f"{host}:{port}"),
            (":path", path),
            *((k.lower(), v) for k, v in (headers or {}).items()),
        ]
        conn.send_headers(stream_id, request_headers, end_stream=True)
        sock.sendall(conn.data_to_send())
        status = 0
        resp_headers: list[tuple[str, str]] = []
        body = bytearray()
        done = False
        while not done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"h2c GET {host}:{port}{path} timed out")
            sock.settimeout(remaining)
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"h2c GET {host}:{port}{path}: connection closed early")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    for name, value in event.headers:
                        key = name.decode() if isinstance(name, bytes) else name
                        val = value.decode() if isinstance(value, bytes) else value
                        if key == ":status":
                            status = int(val)
                        else:
                            resp_headers.append((key, val))
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                    done = True
                elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                    raise ConnectionError(f"h2c GET {path}: stream reset ({event.error_code})")
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise ConnectionError(f"h2c GET {path}: connection terminated")
            outgoing = conn.data_to_send()
            if outgoing:
                sock.sendall(outgoing)
        conn.close_connection()
        # Best effort GOAWAY; the peer may already be closing.
        with contextlib.suppress(OSError):
            sock.sendall(conn.data_to_send())
    return Response(status, _lower_headers(resp_headers), bytes(body))


def discover(port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> Response:
    """``GET /discover`` on an SDK endpoint, asking for the v4 manifest (as 1.7.12 does)."""
    return h2c_get(host, port, "/discover", {"accept": MANIFEST_V4}, timeout=timeout)
