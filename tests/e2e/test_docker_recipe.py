"""The Dockerfiles and the compose example, proven without a container engine.

This machine has no engine and cannot pull a base image, so the recipe is performed
step by step outside containers (tests/support/dockerfile.py, tests/support/compose.py):
each Dockerfile's COPY and RUN lines in a fresh directory with a fresh virtualenv for
the base image's Python, then the compose file's services as processes on loopback,
in depends_on order, with the images' own health checks, the one-shot registration and
the README's curl lines. The README's Docker section says what this does not cover.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.compose import ComposeFlow, read_compose
from tests.support.dockerfile import EmulatedImage, build_image
from tests.support.ports import LOOPBACK, free_ports
from tests.support.procs import ManagedProcess, http_status
from tests.support.readme import readme_curls, run_curl

ROOT = Path(__file__).resolve().parents[2]
SERVER_DOCKERFILE = ROOT / "Dockerfile"
SERVICES_DOCKERFILE = ROOT / "examples" / "docker-compose" / "Dockerfile.services"
COMPOSE_FILE = ROOT / "examples" / "docker-compose" / "docker-compose.yml"
CLUSTER_COMPOSE_FILE = ROOT / "examples" / "docker-compose" / "docker-compose.cluster.yml"
TEST_ONLY_PACKAGES = ("pytest", "restate-sdk", "ruff", "mypy", "pyyaml", "hypercorn", "h2")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, EmulatedImage]:
    base = tmp_path_factory.mktemp("images")
    return {
        dockerfile: build_image(dockerfile, ROOT, base / name, base / f"build-{name}.log")
        for name, dockerfile in (("server", SERVER_DOCKERFILE), ("services", SERVICES_DOCKERFILE))
    }


def _installed(image: EmulatedImage) -> set[str]:
    out = subprocess.run(
        [str(image.venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        check=True,
        env=image.environment(),
    ).stdout
    return {p["name"].lower() for p in json.loads(out)}


def _compiled(image: EmulatedImage, module: str) -> bool:
    code = (
        "import importlib.util, os, sys; s = importlib.util.find_spec(sys.argv[1]);"
        "sys.exit(0 if os.path.exists(importlib.util.cache_from_source(s.origin)) else 1)"
    )
    argv = [str(image.venv / "bin" / "python"), "-c", code, module]
    return subprocess.run(argv, cwd="/", env=image.environment()).returncode == 0


def test_server_image(images: dict[Path, EmulatedImage], e2e_dir: Path) -> None:
    image = images[SERVER_DOCKERFILE]
    recipe = image.recipe
    assert recipe.base_image == "python:3.11-slim"
    assert recipe.user not in (None, "root", "0")
    assert recipe.volumes == ["/restate-data"] and recipe.env["RESTATE_BASE_DIR"] == "/restate-data"
    assert sorted(recipe.exposed_ports) == [5122, 8080, 9070]
    assert recipe.entrypoint == ["restate-server"]  # exec form: the server is PID 1
    assert image.skipped == [r for r in image.skipped if r.startswith(("RUN useradd", "USER"))]
    installed = _installed(image)
    assert "restate-py-server" in installed
    assert not installed & set(TEST_ONLY_PACKAGES), "the image must not carry test extras"
    assert _compiled(image, "restate_server.server"), "bytecode is compiled at build"

    ingress, admin, node = free_ports(3)
    env = image.environment(
        {
            "RESTATE_INGRESS__BIND_ADDRESS": f"{LOOPBACK}:{ingress}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"{LOOPBACK}:{admin}",
            "RESTATE_BIND_ADDRESS": f"{LOOPBACK}:{node}",
        }
    )
    server = ManagedProcess(
        "image-server", image.default_command, log_dir=e2e_dir, env=env, cwd=image.workdir
    )
    assert recipe.healthcheck is not None
    healthcheck = image.argv(recipe.healthcheck)

    def healthy() -> bool:
        return subprocess.run(healthcheck, env=env, capture_output=True).returncode == 0

    try:
        server.start()
        server.wait_until(healthy, 30, "HEALTHCHECK passes", 0.1)
        assert http_status(f"http://{LOOPBACK}:{ingress}/restate/health") == 200
        assert (image.path("/restate-data") / "db").is_dir(), "data lives in the volume"
        # docker stop: SIGTERM to PID 1, which shuts down cleanly
        server.stop_signal = signal.SIGTERM
        assert server.stop(grace=30) == 0
        assert not healthy()
    finally:
        server.stop()


def test_compose_up_then_the_readme_curls(images: dict[Path, EmulatedImage], e2e_dir: Path) -> None:
    compose = read_compose(COMPOSE_FILE)
    assert set(compose["services"]) == {"restate", "services", "register"}
    flow = ComposeFlow(COMPOSE_FILE, images, e2e_dir)
    try:
        assert flow.up() == {"register": 0}, "the one-shot registration succeeded"
        addresses = {
            "localhost:8080": flow.loopback("restate", 8080),
            "localhost:9070": flow.loopback("restate", 9070),
            "localhost:5122": flow.loopback("restate", 5122),
        }
        curls = readme_curls("Docker")
        answers = [run_curl(args, addresses) for args in curls]
        assert [a.status for a in answers] == [200] * len(curls), [a.text() for a in answers]
        greet, add = answers[:2]
        assert greet.json() == "Hello, World!"
        assert add.json() == 5

        # docker compose restart restate: SIGTERM, the same volume, everything still there
        restate = flow.services["restate"].process
        assert restate is not None
        assert restate.stop(grace=30) == 0
        flow.start("restate")
        flow.wait_healthy("restate")
        again = run_curl(curls[1], addresses)
        assert again.json() == 10, again.text()
    finally:
        flow.down()


def test_cluster_compose_up_then_the_readme_curls(
    images: dict[Path, EmulatedImage], e2e_dir: Path
) -> None:
    compose = read_compose(CLUSTER_COMPOSE_FILE)
    nodes = ["restate-1", "restate-2", "restate-3"]
    assert set(compose["services"]) == {
        "nats-1", "nats-2", "nats-3", *nodes, "services", "register"
    }  # fmt: skip
    flow = ComposeFlow(CLUSTER_COMPOSE_FILE, images, e2e_dir, start_timeout=120)
    try:
        assert flow.up() == {"register": 0}, "the one-shot registration through node 1"
        addresses = {
            f"localhost:{host}": flow.loopback(node, container)
            for node, offset in zip(nodes, range(3), strict=True)
            for host, container in ((8080 + offset, 8080), (9070 + offset, 9070))
        }
        curls = readme_curls("A cluster with docker compose")
        answers = [run_curl(args, addresses) for args in curls]
        assert [a.status for a in answers] == [200] * len(curls), [a.text() for a in answers]
        add, get, query = answers
        assert add.json() == 5 and get.json() == 5
        assert {"service_key": "my-counter"} in query.json()["rows"]

        # docker compose stop restate-2: it hands its partitions over; the others serve
        stopped = flow.services["restate-2"].process
        assert stopped is not None and stopped.stop(grace=30) == 0
        for node in ("restate-1", "restate-3"):
            url = f"http://{flow.loopback(node, 8080)}/Counter/my-counter/add"
            again = run_curl([url, "-H", "content-type: application/json", "-d", "1"], {})
            assert again.status == 200, again.text()
        assert run_curl(curls[1], addresses).json() == 7  # read through node 3
    finally:
        flow.down()
