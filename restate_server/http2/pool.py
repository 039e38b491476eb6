"""Connections to deployments, reused across attempts and multiplexed.

One connection per origin carries many concurrent streams; more connections are
opened only when the peer's MAX_CONCURRENT_STREAMS is reached.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from restate_server.http2.connection import H2ClientConnection
from restate_server.http2.errors import H2ConnectionError, H2ConnectTimeout
from restate_server.http2.stream import H2Stream, Headers

CONNECT_TIMEOUT_S = 10.0


class H2Pool:
    def __init__(self, connect_timeout: float = CONNECT_TIMEOUT_S) -> None:
        self._connect_timeout = connect_timeout
        self._connections: dict[str, list[H2ClientConnection]] = {}
        self._connecting: dict[str, asyncio.Future[H2ClientConnection]] = {}
        # for the metrics (restate_connection_pool_*_opened_total)
        self.connections_opened = 0
        self.streams_opened = 0

    async def open_stream(
        self, origin: str, method: str, path: str, headers: Headers, end_stream: bool = False
    ) -> H2Stream:
        """Open a request stream to ``origin`` (``http://host:port``)."""
        conn = await self._connection_for(origin)
        stream = conn.open_stream(method, path, headers, end_stream)
        self.streams_opened += 1
        return stream

    def open_connections(self) -> dict[str, int]:
        """Open connections (not closed, no GOAWAY received), by origin."""
        counts: dict[str, int] = {}
        for origin, connections in self._connections.items():
            live = sum(1 for conn in connections if conn.accepting)
            if live:
                counts[origin] = live
        return counts

    async def _connection_for(self, origin: str) -> H2ClientConnection:
        while True:
            live = [c for c in self._connections.get(origin, []) if c.accepting]
            self._connections[origin] = live
            for conn in live:
                if conn.has_capacity():
                    return conn
            pending = self._connecting.get(origin)
            if pending is None:
                pending = asyncio.get_running_loop().create_future()
                self._connecting[origin] = pending
                try:
                    conn = await self._connect(origin)
                except BaseException as exc:
                    pending.set_exception(exc)
                    pending.exception()
                    raise
                finally:
                    self._connecting.pop(origin, None)
                self._connections.setdefault(origin, []).append(conn)
                pending.set_result(conn)
                return conn
            conn = await asyncio.shield(pending)
            if conn.has_capacity():
                return conn

    async def _connect(self, origin: str) -> H2ClientConnection:
        parts = urlsplit(origin)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        authority = parts.netloc
        loop = asyncio.get_running_loop()
        ssl = None
        if parts.scheme == "https":
            import ssl as ssl_module

            ssl = ssl_module.create_default_context()
            ssl.set_alpn_protocols(["h2"])
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: H2ClientConnection(authority, parts.scheme or "http"),
                    host,
                    port,
                    ssl=ssl,
                ),
                self._connect_timeout,
            )
        except TimeoutError as exc:
            raise H2ConnectTimeout(f"connect to {origin} timed out") from exc
        except OSError as exc:
            error = H2ConnectionError(f"cannot connect to {origin}: {exc}")
            error.errno = exc.errno  # callers word errors by errno, as the real server does
            raise error from exc
        await conn.wait_ready()
        self.connections_opened += 1
        return conn

    async def close(self) -> None:
        for connections in self._connections.values():
            for conn in connections:
                conn.close()
        self._connections.clear()
