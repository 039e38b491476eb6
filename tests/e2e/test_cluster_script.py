"""``scripts/cluster.sh``, as the README shows it: a three-server engine and three nodes
on loopback, a registration on one node, calls through the others, and a stop that
leaves no process behind."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.endpoints import PyEndpoint
from tests.support.http import call, get
from tests.support.jetstream import nats_server_path
from tests.support.ports import LOOPBACK
from tests.support.readme import readme_curls, run_curl

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "cluster.sh"
PORTS = 21  # the script's port block
EXAMPLES_APP = ROOT / "examples" / "services.py"
README_SECTION = "A cluster on one machine"


def _free_block() -> int:
    """A base port with the script's whole block free on loopback a moment ago."""
    for base in range(23000, 60000, 97):
        socks = []
        try:
            for port in range(base, base + PORTS):
                sock = socket.socket()
                socks.append(sock)
                sock.bind((LOOPBACK, port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free block of ports")


def test_the_cluster_script_starts_three_nodes_and_stops_them(
    tmp_path: Path, py_endpoint: Callable[..., PyEndpoint]
) -> None:
    assert nats_server_path() is not None, "apt-get install -y nats-server"
    endpoint = py_endpoint(EXAMPLES_APP, name="examples")
    base = _free_block()
    # the runner's own RESTATE_* settings stay out of the nodes
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTATE_")}
    env.update(
        RESTATE_CLUSTER_BASE_PORT=str(base),
        RESTATE_CLUSTER_DIR=str(tmp_path / "cluster"),
        RESTATE_SERVER=str(ROOT / ".venv" / "bin" / "restate-server"),
    )

    def script(command: str) -> str:
        done = subprocess.run(
            [str(SCRIPT), command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    try:
        assert "cluster up" in script("start")
        ingress = [f"http://{LOOPBACK}:{base + i}" for i in range(3)]
        admin = [f"http://{LOOPBACK}:{base + 3 + i}" for i in range(3)]
        # the README's lines: register through node 1, add through node 2
        addresses = {
            "localhost:9070": admin[0].removeprefix("http://"),
            "localhost:8081": ingress[1].removeprefix("http://"),
            "http://127.0.0.1:9080": endpoint.url,
        }
        register, add = [run_curl(args, addresses) for args in readme_curls(README_SECTION)]
        assert register.status == 201, register.text()
        assert add.json() == 5
        assert call(ingress[1], "/Greeter/greet", "cluster").json() == "Hello, cluster!"
        for i in range(6):
            assert call(ingress[i % 3], "/Counter/my-counter/add", 1).json() == 6 + i
        assert get(admin[2] + "/health").status == 200
        assert script("status").count("running") == 6
    finally:
        script("stop")
    assert "running" not in script("status")
