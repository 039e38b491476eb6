"""Opening the HTTP exchange of one attempt: HTTP/2 (bidirectional) or HTTP/1.1.

Both give the attempt the same small stream interface: ``send`` request body
bytes, ``end`` the request body, await the ``response`` head, ``read`` body
chunks (b"" at the end), ``reset`` to abort, ``give_up`` to abort after a timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from restate_server.http2 import H2Pool
from restate_server.invoker.errors import UNREACHABLE, AttemptError

if TYPE_CHECKING:
    from restate_server.invoker.http1 import Http1Pool


class AttemptStream(Protocol):
    def send(self, data: bytes) -> None: ...
    def end(self) -> None: ...
    async def response(self) -> tuple[int, list[tuple[str, str]]]: ...
    async def read(self) -> bytes: ...
    def reset(self) -> None: ...
    def give_up(self) -> None: ...


def invoke_url(base_uri: str, service: str, handler: str) -> tuple[str, str]:
    """(origin, path-with-query) of the invoke request for a deployment base URI."""
    parts = urlsplit(base_uri)
    base_path = parts.path.rstrip("/")
    path = f"{base_path}/invoke/{service}/{handler}"
    if parts.query:
        path = f"{path}?{parts.query}"
    return f"{parts.scheme}://{parts.netloc}", path


class Transport:
    """Connection pools toward deployments, shared by every attempt."""

    def __init__(self, h2_pool: H2Pool | None = None) -> None:
        self._h2 = h2_pool or H2Pool()
        self._http1: Http1Pool | None = None

    @property
    def h2_pool(self) -> H2Pool:
        return self._h2

    async def open(
        self,
        base_uri: str,
        use_http_11: bool,
        service: str,
        handler: str,
        headers: list[tuple[str, str]],
    ) -> AttemptStream:
        origin, path = invoke_url(base_uri, service, handler)
        if use_http_11:
            if self._http1 is None:
                # aiohttp costs a quarter second to import: only when a deployment needs it
                from restate_server.invoker.http1 import Http1Pool

                self._http1 = Http1Pool()
            return self._http1.open(origin + path, headers)
        try:
            return await self._h2.open_stream(origin, "POST", path, headers)
        except (OSError, ConnectionError) as exc:
            raise AttemptError(
                f"error when calling the deployment {origin}: {exc}",
                reached_sdk=False,
                doc_code=UNREACHABLE,
            ) from exc

    async def close(self) -> None:
        await self._h2.close()
        if self._http1 is not None:
            await self._http1.close()
