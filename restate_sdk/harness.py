"""A test harness: our server plus your services, on free loopback ports, no Docker.

    async with restate_sdk.harness.create_test_harness(app) as env:
        greeting = await env.client.service_call(greet, "World")

The server runs in this process (``in_process=True``, default) through its public
entry point, or as a ``restate-server`` subprocess; the services are served by
hypercorn over HTTP/2 cleartext in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from restate_sdk.client import RestateClient, create_client


@dataclass
class HarnessEnvironment:
    ingress_url: str
    admin_url: str
    client: RestateClient


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(
    base_dir: str,
    ingress: int,
    admin: int,
    always_replay: bool,
    disable_retries: bool,
    extra: dict[str, str] | None,
) -> dict[str, str]:
    env = {
        "RESTATE_BASE_DIR": base_dir,
        "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ingress}",
        "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{admin}",
        # the node address (/metrics): never the shared default 5122
        "RESTATE_BIND_ADDRESS": f"127.0.0.1:{_free_port()}",
        "RESTATE_LOG_FILTER": "warn",
        "RESTATE_DEFAULT_NUM_PARTITIONS": "1",
    }
    if always_replay:
        env["RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT"] = "0s"
    if disable_retries:
        env["RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS"] = "1"
        env["RESTATE_DEFAULT_RETRY_POLICY__ON_MAX_ATTEMPTS"] = "kill"
    env.update(extra or {})
    return env


async def _wait_http_ok(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await asyncio.to_thread(urllib.request.urlopen, url, timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def _register(admin_url: str, uri: str) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{admin_url}/deployments", json={"uri": uri}) as resp,
    ):
        if resp.status not in (200, 201):
            raise RuntimeError(f"registration failed: {resp.status} {await resp.text()}")


@contextlib.asynccontextmanager
async def _serve_app(app: Callable[..., Awaitable[None]], port: int) -> AsyncIterator[None]:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(
        serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    )
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


@contextlib.asynccontextmanager
async def _in_process_server(env: dict[str, str]) -> AsyncIterator[None]:
    from restate_server.config import load_config
    from restate_server.server import Server

    server = Server(load_config(None, env, {}))
    await server.start()
    try:
        yield
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def _subprocess_server(env: dict[str, str]) -> AsyncIterator[None]:
    command = shutil.which("restate-server", path=os.path.dirname(sys.executable))
    argv = [command] if command else [sys.executable, "-m", "restate_server"]
    process = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.asynccontextmanager
async def create_test_harness(
    app: Callable[..., Awaitable[None]],
    *,
    in_process: bool = True,
    always_replay: bool = False,
    disable_retries: bool = False,
    server_env: dict[str, str] | None = None,
    start_timeout: float = 20.0,
) -> AsyncIterator[HarnessEnvironment]:
    """Start a server and the app, register the app, and hand out a client."""
    base_dir = tempfile.mkdtemp(prefix="restate-harness-")
    ingress, admin, app_port = _free_port(), _free_port(), _free_port()
    env = _server_env(base_dir, ingress, admin, always_replay, disable_retries, server_env)
    ingress_url = f"http://127.0.0.1:{ingress}"
    admin_url = f"http://127.0.0.1:{admin}"
    server = _in_process_server(env) if in_process else _subprocess_server(env)
    try:
        async with server, _serve_app(app, app_port):
            await _wait_http_ok(f"{admin_url}/health", start_timeout)
            await _register(admin_url, f"http://127.0.0.1:{app_port}")
            async with create_client(ingress_url) as client:
                yield HarnessEnvironment(ingress_url, admin_url, client)
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
