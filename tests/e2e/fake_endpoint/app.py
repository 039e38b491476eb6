"""A misbehaving SDK endpoint (ASGI, served by hypercorn over h2c) for failure tests.

FAKE_MODE selects the behaviour:
- ``garbage``: discovery answers 200 with a body that is not a manifest;
- ``versions``: a well-formed manifest that only speaks protocol versions 8 and 9;
- ``broken-stream``: a valid manifest (service ``Broken``, handler ``go``); the first
  FAKE_FAILURES attempts answer the invocation with a valid head, then bytes that are not
  protocol frames, then end the stream; later attempts answer Output("ok") + End.
Each invocation attempt appends its wall-clock time (seconds) to FAKE_LOG.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from restate_server.protocol import messages as pm
from restate_server.protocol.framing import encode_frame

MODE = os.environ.get("FAKE_MODE", "broken-stream")
FAILURES = int(os.environ.get("FAKE_FAILURES", "3"))
LOG = os.environ.get("FAKE_LOG", "")
MANIFEST_CT = "application/vnd.restate.endpointmanifest.v4+json"


def _manifest(min_version: int, max_version: int) -> bytes:
    return json.dumps(
        {
            "protocolMode": "BIDI_STREAM",
            "minProtocolVersion": min_version,
            "maxProtocolVersion": max_version,
            "services": [
                {
                    "name": "Broken",
                    "ty": "SERVICE",
                    "handlers": [
                        {
                            "name": "go",
                            "input": {"required": False, "contentType": "application/json"},
                            "output": {"contentType": "application/json"},
                        }
                    ],
                }
            ],
        }
    ).encode()


def _attempts() -> int:
    if not LOG or not os.path.exists(LOG):
        return 0
    with open(LOG) as f:
        return sum(1 for _ in f)


async def _respond(send: Any, status: int, content_type: str, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path.endswith("/discover"):
        if MODE == "garbage":
            await _respond(send, 200, "text/plain", b"\x00\x01 this is not a manifest")
        elif MODE == "versions":
            await _respond(send, 200, MANIFEST_CT, _manifest(8, 9))
        else:
            await _respond(send, 200, MANIFEST_CT, _manifest(5, 7))
        return
    if "/invoke/" not in path:
        await _respond(send, 404, "text/plain", b"not found")
        return
    content_type = dict(scope["headers"]).get(b"content-type", b"").decode()
    attempt = _attempts()
    if LOG:
        with open(LOG, "a") as f:
            f.write(f"{time.time()}\n")
    # Wait for the Start message and the journal before answering.
    await receive()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type.encode())],
        }
    )
    if attempt < FAILURES:
        garbage = b"\x7f\x7f\x00\x00\x00\x00\x00\x03abc"  # an unknown message type id
        await send({"type": "http.response.body", "body": garbage, "more_body": False})
        return
    frames = encode_frame(pm.OutputCommandMessage(value=b'"ok"')) + encode_frame(pm.EndMessage())
    await send({"type": "http.response.body", "body": frames, "more_body": False})
