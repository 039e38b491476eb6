"""A three-server NATS JetStream cluster on loopback, owned by a test or a benchmark.

Each server is a ``ManagedProcess`` (its own process group, stopped by its PID, killed
with the test run), with a config file, a JetStream store directory and a monitoring
port under ``work_dir``. ``nats-server`` comes from Debian (``apt-get install -y
nats-server``, 2.9).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ports import LOOPBACK, free_ports
from tests.support.procs import ManagedProcess, ProcessError

NATS_SERVER = "nats-server"
READY_TIMEOUT_S = 20.0


def nats_server_path() -> str | None:
    # Debian installs it in /usr/sbin, which a non-root PATH may lack
    return shutil.which(NATS_SERVER) or shutil.which(NATS_SERVER, path="/usr/sbin:/usr/bin")


@dataclass
class JetStreamServer:
    name: str
    client_port: int
    cluster_port: int
    monitor_port: int
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.client_port}"

    def healthy(self) -> bool:
        """JetStream on this server is up, current, and knows its cluster's meta leader
        (before that, creating a stream times out)."""
        url = f"http://{LOOPBACK}:{self.monitor_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status != 200:
                    return False
            meta = self.jsz().get("meta_cluster") or {}
        except (OSError, urllib.error.URLError, ValueError):
            return False
        return bool(meta.get("leader"))

    def jsz_streams(self) -> list[dict]:
        """The streams this server holds a replica of, with their cluster info."""
        url = f"http://{LOOPBACK}:{self.monitor_port}/jsz?streams=true"
        with urllib.request.urlopen(url, timeout=2) as response:
            data = json.loads(response.read())
        streams: list[dict] = []
        for account in data.get("account_details") or []:
            streams.extend(account.get("stream_detail") or [])
        return streams

    def jsz(self) -> dict:
        url = f"http://{LOOPBACK}:{self.monitor_port}/jsz"
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())


class JetStreamCluster:
    """Three ``nats-server`` processes routed to each other, JetStream on each."""

    def __init__(self, work_dir: Path, size: int = 3, cluster_name: str = "engine") -> None:
        binary = nats_server_path()
        if binary is None:
            raise ProcessError("nats-server not found: apt-get install -y nats-server")
        self.work_dir = Path(work_dir)
        ports = free_ports(3 * size)
        self.servers: list[JetStreamServer] = []
        cluster_ports = ports[size : 2 * size]
        for i in range(size):
            name = f"js{i + 1}"
            routes = ", ".join(
                f'"nats-route://{LOOPBACK}:{p}"' for j, p in enumerate(cluster_ports) if j != i
            )
            store = self.work_dir / name / "store"
            store.mkdir(parents=True, exist_ok=True)
            config = self.work_dir / name / "server.conf"
            config.write_text(
                f'server_name: "{name}"\n'
                f'listen: "{LOOPBACK}:{ports[i]}"\n'
                f'http: "{LOOPBACK}:{ports[2 * size + i]}"\n'
                "jetstream {\n"
                f'  store_dir: "{store}"\n'
                "  max_memory_store: 64MB\n"
                "  max_file_store: 2GB\n"
                "}\n"
                "cluster {\n"
                f'  name: "{cluster_name}"\n'
                f'  listen: "{LOOPBACK}:{cluster_ports[i]}"\n'
                f"  routes: [{routes}]\n"
                "}\n"
            )
            process = ManagedProcess(
                name, [binary, "-c", str(config)], log_dir=self.work_dir, inherit_env=False
            )
            self.servers.append(
                JetStreamServer(name, ports[i], cluster_ports[i], ports[2 * size + i], process)
            )

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def start(self) -> JetStreamCluster:
        for server in self.servers:
            server.process.start()
        self.wait_healthy(self.servers)
        return self

    def wait_healthy(self, servers: list[JetStreamServer]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        waiting = list(servers)
        while waiting:
            for server in list(waiting):
                if not server.process.is_running():
                    raise ProcessError(f"{server.name} exited; see {server.process.log_path}")
                if server.healthy():
                    waiting.remove(server)
            if waiting:
                if time.monotonic() > deadline:
                    names = ", ".join(s.name for s in waiting)
                    raise ProcessError(f"JetStream not ready within {READY_TIMEOUT_S} s: {names}")
                time.sleep(0.1)

    def server(self, name: str) -> JetStreamServer:
        return next(server for server in self.servers if server.name == name)

    def stop(self) -> None:
        for server in self.servers:
            server.process.stop()


@contextlib.contextmanager
def running_cluster(work_dir: Path) -> Iterator[JetStreamCluster]:
    """A started three-server cluster under ``work_dir``, stopped by PID on the way
    out. A missing nats-server fails the test: the cluster tests are not optional."""
    if nats_server_path() is None:
        pytest.fail("nats-server is not installed (apt-get install -y nats-server)")
    cluster = JetStreamCluster(work_dir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
