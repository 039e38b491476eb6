"""Attempts over HTTP/1.1 (REQUEST_RESPONSE deployments), on aiohttp.

Imported only when a deployment uses HTTP/1.1: aiohttp takes a quarter second to
import, which every start of the server would otherwise pay.
"""

from __future__ import annotations

import asyncio

import aiohttp

from restate_server.invoker.errors import AttemptError


class Http1Pool:
    """Connections to every HTTP/1.1 deployment (one aiohttp session)."""

    def __init__(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
            auto_decompress=False,
        )

    def open(self, url: str, headers: list[tuple[str, str]]) -> Http1RequestResponseStream:
        return Http1RequestResponseStream(self._session, url, headers)

    async def close(self) -> None:
        await self._session.close()


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
        return await self._session.post(
            self._url,
            data=b"".join(self._body),
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )

    async def response(self) -> tuple[int, list[tuple[str, str]]]:
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

    def give_up(self) -> None:
        # aiohttp drops the connection of a response closed before its end anyway
        self.reset()
