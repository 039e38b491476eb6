"""Server processes for end-to-end tests: ours and the real restate-server 1.7.12.

Both classes share one interface, so a scenario can run against either:

    srv = RestateServerProcess(base_dir, log_dir).start()
    srv.register("http://127.0.0.1:9080")
    srv.call("/Greeter/greet", "Alice")
    srv.kill9(); srv.start()          # crash and come back on the same base dir and ports

Ports are picked once, at construction, so a restart reuses them (the real server also
remembers its node address in its metadata).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.http import Response, call, register_deployment
from tests.support.node import NodeTools, find_node_tools
from tests.support.ports import LOOPBACK, free_ports, port_accepts
from tests.support.procs import ManagedProcess, http_status

START_TIMEOUT = 15.0


def _clean_environ() -> dict[str, str]:
    """The runner's environment without RESTATE_* settings, which would leak into tests."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RESTATE_")}


class _ServerProcess:
    """What both servers share: ports, base dir, env, lifecycle and readiness."""

    name = "server"

    def __init__(
        self,
        base_dir: Path,
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        ingress_port: int | None = None,
        admin_port: int | None = None,
        node_port: int | None = None,
        name: str | None = None,
        admin_host: str = LOOPBACK,
        start_timeout: float = START_TIMEOUT,
        stop_grace: float = 10.0,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.admin_host = admin_host  # another loopback address keeps admin apart
        self.log_dir = Path(log_dir)
        if name is not None:
            self.name = name
        ports = free_ports(3)
        self.ingress_port = ingress_port or ports[0]
        self.admin_port = admin_port or ports[1]
        # the node address (metrics; the real server's message fabric): never the default
        # 5122, which another process may hold
        self.node_port = node_port or ports[2]
        self.start_timeout = start_timeout
        self.extra_env = dict(env or {})
        full_env = _clean_environ()
        full_env.update(self._base_env())
        full_env.update(self.extra_env)
        self.process = ManagedProcess(
            self.name,
            self._argv(),
            log_dir=self.log_dir,
            env=full_env,
            cwd=self.base_dir.parent,
            inherit_env=False,
            stop_grace=stop_grace,
        )

    # ---- what differs between servers ---------------------------------------------------

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _base_env(self) -> dict[str, str]:
        return {
            "RESTATE_BASE_DIR": str(self.base_dir),
            "RESTATE_INGRESS__BIND_ADDRESS": f"{LOOPBACK}:{self.ingress_port}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"{self.admin_host}:{self.admin_port}",
            "RESTATE_BIND_ADDRESS": f"{LOOPBACK}:{self.node_port}",
        }

    def _is_ready(self) -> bool:
        return http_status(f"{self.admin_url}/health") == 200 and port_accepts(self.ingress_port)

    # ---- addresses ----------------------------------------------------------------------

    @property
    def node_url(self) -> str:
        """The node address: ``/metrics``."""
        return f"http://{LOOPBACK}:{self.node_port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.admin_host}:{self.admin_port}"

    @property
    def ingress_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ingress_port}"

    @property
    def env(self) -> dict[str, str]:
        """The full environment the process runs with."""
        return self.process.env

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    # ---- lifecycle ----------------------------------------------------------------------

    def start(
        self, timeout: float | None = None, poll_interval: float | None = None
    ) -> _ServerProcess:
        """Start and wait until ready (admin ``/health`` is 200 and the ingress accepts).

        ``poll_interval`` is how often readiness is checked (finer when timing startup).
        """
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.process.start()
        self.wait_ready(timeout, poll_interval)
        return self

    def wait_ready(self, timeout: float | None = None, poll_interval: float | None = None) -> None:
        self.process.wait_until(
            self._is_ready,
            self.start_timeout if timeout is None else timeout,
            f"{self.name} ready (admin {self.admin_url}/health, ingress {self.ingress_url})",
            poll_interval,
        )

    def stop(self, grace: float | None = None) -> int | None:
        """SIGTERM, then SIGKILL after the grace period."""
        return self.process.stop(grace)

    def kill9(self) -> int | None:
        """Crash it: SIGKILL, no chance to flush anything."""
        return self.process.kill9()

    def restart(self, *, kill: bool = False, timeout: float | None = None) -> _ServerProcess:
        """Stop (or kill -9 with ``kill=True``) and start again on the same base dir and ports."""
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start(timeout)

    def is_running(self) -> bool:
        return self.process.is_running()

    def log_tail(self, lines: int = 80) -> str:
        return self.process.log_tail(lines)

    # ---- conveniences -------------------------------------------------------------------

    def register(self, uri: str, **opts: Any) -> Response:
        """Register an SDK endpoint (``POST /deployments``); raises unless 200/201."""
        return register_deployment(self.admin_url, uri, **opts)

    def call(self, path: str, *args: Any, **kwargs: Any) -> Response:
        """``tests.support.http.call`` on this server's ingress."""
        return call(self.ingress_url, path, *args, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name} ingress={self.ingress_port} "
            f"admin={self.admin_port} {self.process!r}>"
        )


def our_server_argv() -> list[str]:
    # The console script next to the running interpreter (the venv's), else the module.
    script = Path(sys.executable).parent / "restate-server"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "restate_server"]


class RestateServerProcess(_ServerProcess):
    """Our server (``restate-server`` console script, entry point restate_server.main:main);
    ``command`` runs another copy, e.g. one installed in a clean virtualenv."""

    name = "our-server"

    def __init__(
        self, base_dir: Path, log_dir: Path, *, command: list[str] | None = None, **kwargs: Any
    ) -> None:
        self.command = command
        super().__init__(base_dir, log_dir, **kwargs)

    def _argv(self) -> list[str]:
        return list(self.command) if self.command else our_server_argv()

    def _base_env(self) -> dict[str, str]:
        env = super()._base_env()
        env["PYTHONUNBUFFERED"] = "1"  # logs reach the file before a kill -9
        # Tests stop servers while handlers wait at gates: do not wait the default minute
        # for them (tests of graceful shutdown set their own).
        env["RESTATE_SHUTDOWN_TIMEOUT"] = "2s"
        # the whole suite in the multi-process mode: OURS_WORKER_PROCESSES=2 (a test's own
        # env still wins)
        workers = os.environ.get("OURS_WORKER_PROCESSES")
        if workers:
            env["RESTATE_PY__WORKER__PROCESSES"] = workers
        return env


class RealRestateServerProcess(_ServerProcess):
    """The real restate-server 1.7.12 binary from ``.tools/node`` (npm package).

    Besides the shared variables (the node port serves its node-to-node "message fabric"
    besides ``/metrics``) it needs an advertised node address, a fixed node
    name (its data lives in ``<base dir>/<node name>`` and must not change across restarts)
    and TCP-only listeners (by default it also opens unix sockets under the base dir, whose
    paths can exceed the 108-byte limit in deep tmp dirs). Telemetry is switched off.
    """

    name = "real-server"

    def __init__(
        self,
        base_dir: Path,
        log_dir: Path,
        *,
        tools: NodeTools | None = None,
        node_name: str = "n1",
        **kwargs: Any,
    ) -> None:
        self.tools = tools or find_node_tools()
        self.node_name = node_name
        super().__init__(base_dir, log_dir, **kwargs)

    def _argv(self) -> list[str]:
        return [str(self.tools.restate_server), "--no-logo"]

    def _base_env(self) -> dict[str, str]:
        env = super()._base_env()
        env.update(
            {
                "RESTATE_NODE_NAME": self.node_name,
                "RESTATE_ADVERTISED_ADDRESS": f"http://{LOOPBACK}:{self.node_port}/",
                "RESTATE_LISTEN_MODE": "tcp",
                "RESTATE_DISABLE_TELEMETRY": "true",
                "RESTATE_LOG_DISABLE_ANSI_CODES": "true",
                "RESTATE_LOG_FORMAT": "compact",
                # Small machine: fewer partitions start faster, and a smaller RocksDB budget.
                "RESTATE_DEFAULT_NUM_PARTITIONS": "4",
                "RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE": "512MB",
            }
        )
        return env

    def _is_ready(self) -> bool:
        # Its admin answers /health before the ingress can route; wait for both.
        return (
            http_status(f"{self.admin_url}/health") == 200
            and http_status(f"{self.ingress_url}/restate/health") == 200
        )
