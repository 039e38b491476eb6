"""Opening the HTTP exchange of one attempt: HTTP/2 (bidirectional) or HTTP/1.1.

Both give the attempt the same small stream interface: ``send`` request body
bytes, ``end`` the request body, await the ``response`` head, ``read`` body
chunks (b"" at the end), ``reset`` to abort.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from restate_server.http2 import H2Pool
from restate_server.invoker.errors import AttemptError

if TYPE_CHECKING:
    import aiohttp  # imported on first HTTP/1.1 use: it costs a quarter second at startup


class AttemptStream(Protocol):
    def send(self, data: bytes) -> None: ...
    def end(self) -> None: ...
    async def response(self) -> tuple[int, list[tuple[str, str]]]: ...
    async def read(self) -> bytes: ...
    def reset(self) -> None: ...


def invoke_url(base_uri: str, service: str, handler: str) -> tuple[str, str]:
    """(origin, path-with-query) of the invoke request for a deployment base URI."""
    parts = urlsplit(base_uri)
    base_path = parts.path.rstrip("/")
    path = f"{base_path}/invoke/{service}/{handler}"
    if parts.query:
        path = f"{path}?{parts.query}"
    return f"{parts.scheme}://{parts.netloc}", path


class Http1RequestResponseStream:
    """REQUEST_RESPONSE over HTTP/1.1: the whole request body goes out at ``end``."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, headers: list[tuple[str, str]]
    ) -> None:
        self._session = session
        self._url = url
        self._headers = headers
        self._body: list[bytes] = []
        self._request: asyncio.Task[aiohttp.ClientResponse] | None = None
        self._response: aiohttp.ClientResponse | None = None

    def send(self, data: bytes) -> None:
        if self._request is None:
            self._body.append(data)

    def end(self) -> None:
        if self._request is None:
            self._request = asyncio.get_running_loop().create_task(self._post())

    async def _post(self) -> aiohttp.ClientResponse:
        import aiohttp

        return await self._session.post(
            self._url,
            data=b"".join(self._body),
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )

    async def response(self) -> tuple[int, list[tuple[str, str]]]:
        import aiohttp

        self.end()
        assert self._request is not None
        try:
            self._response = await self._request
        except (aiohttp.ClientError, OSError) as exc:
            raise AttemptError(
                f"error when calling the deployment: {exc}", reached_sdk=False
            ) from exc
        headers = [(k.lower(), v) for k, v in self._response.headers.items()]
        return self._response.status, headers

    async def read(self) -> bytes:
        import aiohttp

        assert self._response is not None
        try:
            return await self._response.content.readany()
        except (aiohttp.ClientError, OSError) as exc:
            raise AttemptError(f"error reading the response: {exc}") from exc

    def reset(self) -> None:
        if self._response is not None:
            self._response.close()
        elif self._request is not None:
            self._request.cancel()


class Transport:
    """Connection pools toward deployments, shared by every attempt."""

    def __init__(self, h2_pool: H2Pool | None = None) -> None:
        self._h2 = h2_pool or H2Pool()
        self._http1: aiohttp.ClientSession | None = None

    @property
    def h2_pool(self) -> H2Pool:
        return self._h2

    def http1_session(self) -> aiohttp.ClientSession:
        if self._http1 is None:
            import aiohttp

            self._http1 = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
                auto_decompress=False,
            )
        return self._http1

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
            return Http1RequestResponseStream(self.http1_session(), origin + path, headers)
        try:
            return await self._h2.open_stream(origin, "POST", path, headers)
        except (OSError, ConnectionError) as exc:
            raise AttemptError(
                f"error when calling the deployment {origin}: {exc}", reached_sdk=False
            ) from exc

    async def close(self) -> None:
        await self._h2.close()
        if self._http1 is not None:
            await self._http1.close()
