"""``GET /openapi``: the admin API's OpenAPI document, as restate-server 1.7.12 serves it.

``openapi.json`` next to this module is the document recorded from the real server
(a measured fact about the API we implement), served compact like the real server.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import msgspec

from restate_server.admin.routing import Call, Router
from restate_server.http_server import Response

_DOCUMENT = Path(__file__).with_name("openapi.json")


@cache
def admin_openapi_document() -> bytes:
    return msgspec.json.encode(msgspec.json.decode(_DOCUMENT.read_bytes()))


async def get_openapi(call: Call) -> Response:
    return Response(body=admin_openapi_document(), headers={"content-type": "application/json"})


def add_routes(router: Router) -> None:
    router.add("GET", "/openapi", get_openapi)
