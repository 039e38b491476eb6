"""A small router with the real admin API's behaviour at the edges.

Every route is served unprefixed and under ``/v2``, ``/v3``, ``/v4`` (the handler sees
which); ``/v1/...`` answers 400 text, ``/v5/...`` is simply unknown. Unknown paths are
404 with an empty body, a known path with the wrong method is 405 with an ``allow``
header listing the methods in the real server's order (``GET,HEAD,POST``).
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from restate_server.admin.errors import (
    ApiError,
    EmptyError,
    ExtractionError,
    empty_response,
)
from restate_server.http_server import Request, Response
from restate_server.storage.db import StorageFull

log = logging.getLogger(__name__)


class ApiVersion(enum.IntEnum):
    UNKNOWN = 0  # unprefixed path
    V1 = 1
    V2 = 2
    V3 = 3
    V4 = 4


MIN_API_VERSION = ApiVersion.V2
MAX_API_VERSION = ApiVersion.V4
_VERSION_PREFIX = re.compile(r"^/v(\d+)(/.*)?$")


def is_write(request: Request) -> bool:
    """Whether the request may change something (refused while the disk is full);
    ``POST /query`` only reads."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    return not request.raw_path.split("?", 1)[0].rstrip("/").endswith("/query")


@dataclass
class Call:
    """What a route handler gets: the request, the API version and the path parameters."""

    request: Request
    version: ApiVersion
    params: dict[str, str]
    state: Any


Handler = Callable[[Call], Awaitable[Response]]


@dataclass
class Route:
    segments: tuple[str, ...]
    handlers: dict[str, Handler] = field(default_factory=dict)
    # method order as the real server lists them in ``allow``
    order: list[str] = field(default_factory=list)

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for pattern, part in zip(self.segments, parts, strict=True):
            if pattern.startswith("{"):
                if not part:
                    return None
                params[pattern[1:-1]] = part
            elif pattern != part:
                return None
        return params

    @property
    def allow(self) -> str:
        methods: list[str] = []
        for method in self.order:
            methods.append(method)
            if method == "GET":
                methods.append("HEAD")
        return ",".join(methods)


class Router:
    def __init__(self, state: Any) -> None:
        self.state = state
        self._routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        segments = tuple(path.split("/")[1:])
        route = next((r for r in self._routes if r.segments == segments), None)
        if route is None:
            route = Route(segments)
            self._routes.append(route)
        route.handlers[method] = handler
        route.order.append(method)

    async def dispatch(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except (ApiError, ExtractionError, EmptyError) as exc:
            return exc.response()
        except StorageFull:
            log.exception("admin API request failed: %s %s", request.method, request.path)
            return ApiError(503, "cannot take new work: the disk is full").response()
        except Exception as exc:
            log.exception("admin API request failed: %s %s", request.method, request.path)
            return ApiError(500, f"Internal server error: {exc}").response()

    async def _dispatch(self, request: Request) -> Response:
        storage = getattr(self.state, "storage", None)
        if storage is not None and storage.unavailable and is_write(request):
            raise ApiError(503, f"cannot take new work: {storage.unavailable}")
        path = request.raw_path.split("?", 1)[0]
        version = ApiVersion.UNKNOWN
        prefixed = _VERSION_PREFIX.match(path)
        if prefixed is not None:
            number = int(prefixed.group(1))
            if number == ApiVersion.V1:
                raise ExtractionError(
                    400,
                    "Unsupported Admin API version V1. This server supports versions between "
                    f"V{MIN_API_VERSION.value} and V{MAX_API_VERSION.value}.",
                )
            if MIN_API_VERSION <= number <= MAX_API_VERSION:
                version = ApiVersion(number)
                # a nested router sees "/v4" as its root and "/v4/" as an unknown path
                path = prefixed.group(2) or "/"
                if prefixed.group(2) == "/":
                    return empty_response(404)
        parts = [unquote(part) for part in path.split("/")[1:]]
        for route in self._routes:
            params = route.match(parts)
            if params is None:
                continue
            method = request.method
            handler = route.handlers.get(method)
            if handler is None and method == "HEAD":
                handler = route.handlers.get("GET")
            if handler is None:
                return empty_response(405, {"allow": route.allow})
            return await handler(Call(request, version, params, self.state))
        return empty_response(404)
