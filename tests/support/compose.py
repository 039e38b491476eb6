"""A compose file's services run as plain processes on loopback, from emulated images.

Each service runs its image's command (or the compose ``command``) in the image's work
dir with the image's environment plus the compose ``environment``. Networking is what
changes: every port a service exposes is given a free loopback port, and the
``host:port`` spellings that reach it (``0.0.0.0:9080`` in a bind argument,
``services:9080`` from another container, ``localhost:8080`` from the host) are
rewritten to that port in commands and environment values. A restate-server image
is told its ports through its own ``RESTATE_*__BIND_ADDRESS`` settings, since it binds
by configuration. ``depends_on`` with ``service_healthy`` waits for the dependency's
image ``HEALTHCHECK`` (or the compose ``healthcheck``) to pass; services with
``restart: "no"`` are one-shot and must exit 0. A service's named volumes are
directories of its own (two nodes of one image keep separate data), and a service
with a public ``image:`` runs its program from this machine (``stand_ins``).
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.dockerfile import EmulatedImage
from tests.support.ports import LOOPBACK, free_ports
from tests.support.procs import ManagedProcess
from tests.support.stand_ins import StandInImage, stand_in

HEALTH_POLL_S = 0.2
# The restate-server image binds by configuration; its exposed ports are these settings.
SERVER_PORT_SETTINGS = {
    8080: "RESTATE_INGRESS__BIND_ADDRESS",
    9070: "RESTATE_ADMIN__BIND_ADDRESS",
    5122: "RESTATE_BIND_ADDRESS",
}


def read_compose(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict) and "services" in data, path
    return data


def build_of(service: dict[str, Any], compose_dir: Path) -> tuple[Path, Path]:
    """(context, Dockerfile) of a service's ``build`` entry."""
    build = service["build"]
    if isinstance(build, str):
        build = {"context": build}
    context = (compose_dir / build["context"]).resolve()
    return context, context / build.get("dockerfile", "Dockerfile")


@dataclass
class ComposeService:
    name: str
    spec: dict[str, Any]
    image: EmulatedImage
    ports: dict[int, int]  # container port -> loopback port
    process: ManagedProcess | None = None

    @property
    def one_shot(self) -> bool:
        return str(self.spec.get("restart", "")) == "no"

    def depends_on(self) -> dict[str, str]:
        deps = self.spec.get("depends_on", {})
        if isinstance(deps, list):
            return {d: "service_started" for d in deps}
        return {name: cond.get("condition", "service_started") for name, cond in deps.items()}


class ComposeFlow:
    """The services of one compose file, started in ``depends_on`` order."""

    def __init__(
        self,
        compose_file: Path,
        images: dict[Path, EmulatedImage],
        log_dir: Path,
        start_timeout: float = 60.0,
    ) -> None:
        data = read_compose(compose_file)
        self.log_dir = log_dir
        self.start_timeout = start_timeout
        self.services: dict[str, ComposeService] = {}
        for name, spec in data["services"].items():
            image: EmulatedImage
            if "build" in spec:
                image = images[build_of(spec, compose_file.parent)[1]]
            else:
                image = stand_in(spec["image"], log_dir / "stand-ins" / name)
            # the image's EXPOSE and the compose file's ``expose``
            exposed = sorted(
                set(image.recipe.exposed_ports) | {int(p) for p in spec.get("expose", [])}
            )
            ports = dict(zip(exposed, free_ports(len(exposed)), strict=True))
            self.services[name] = ComposeService(name, spec, image, ports)

    # ---- addresses ---------------------------------------------------------------------

    def loopback(self, service: str, container_port: int) -> str:
        return f"{LOOPBACK}:{self.services[service].ports[container_port]}"

    def rewrite(self, text: str, own: str) -> str:
        """Replace the ``host:port`` forms that reach a service's port with loopback."""
        for name, service in self.services.items():
            for port, mapped in service.ports.items():
                hosts = [re.escape(name)]
                if name == own:
                    hosts += [r"0\.0\.0\.0", r"127\.0\.0\.1", "localhost"]
                pattern = rf"\b(?:{'|'.join(hosts)}):{port}\b"
                text = re.sub(pattern, f"{LOOPBACK}:{mapped}", text)
        return text

    def volumes(self, service: ComposeService) -> dict[str, Path]:
        """The service's named volumes: container path -> a directory of its own here
        (two services of one image do not share the image's directories)."""
        mounts: dict[str, Path] = {}
        for entry in service.spec.get("volumes", []):
            volume, container_path = str(entry).split(":")[:2]
            mounts[container_path.rstrip("/")] = self.log_dir / "volumes" / volume
        return mounts

    def _map_paths(self, text: str, service: ComposeService) -> str:
        """A word or value naming a mounted path (``/data``, ``--dir=/data/x``) mapped to
        the volume's directory."""
        for container_path, here in self.volumes(service).items():
            head, eq, value = text.rpartition("=") if "=" in text else ("", "", text)
            if value == container_path or value.startswith(container_path + "/"):
                here.mkdir(parents=True, exist_ok=True)
                return head + eq + str(here) + value[len(container_path) :]
        return text

    def _environment(self, service: ComposeService) -> dict[str, str]:
        extra = {
            k: self.rewrite(str(v), service.name)
            for k, v in (service.spec.get("environment") or {}).items()
        }
        for name, value in service.image.recipe.env.items():  # the image's ENV on a volume
            mapped = self._map_paths(value, service)
            if mapped != value:
                extra.setdefault(name, mapped)
        if service.image.default_command[0].endswith("restate-server"):
            for port, setting in SERVER_PORT_SETTINGS.items():
                if port in service.ports:
                    extra[setting] = self.loopback(service.name, port)
        return service.image.environment(extra)

    def _command(self, service: ComposeService) -> list[str]:
        image = service.image
        command = service.spec.get("command")
        argv = image.argv(image.recipe.entrypoint + command) if command else image.default_command
        if isinstance(image, StandInImage):
            argv = image.adapt(argv, service.ports)
        return [self._map_paths(self.rewrite(word, service.name), service) for word in argv]

    def _healthcheck(self, service: ComposeService) -> list[str] | None:
        check = service.spec.get("healthcheck", {}).get("test") or service.image.recipe.healthcheck
        if check is None:
            return None
        if check[0] == "CMD":
            check = check[1:]
        return [self.rewrite(w, service.name) for w in service.image.argv(list(check))]

    # ---- lifecycle ---------------------------------------------------------------------

    def healthy(self, name: str) -> bool:
        service = self.services[name]
        check = self._healthcheck(service)
        assert check is not None, f"{name} has no health check"
        done = subprocess.run(
            check,
            cwd=service.image.workdir,
            env=self._environment(service),
            capture_output=True,
            timeout=30,
        )
        return done.returncode == 0

    def wait_healthy(self, name: str) -> None:
        process = self.services[name].process
        assert process is not None
        process.wait_until(
            lambda: self.healthy(name), self.start_timeout, f"{name} healthy", HEALTH_POLL_S
        )

    def order(self) -> list[str]:
        done: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            assert name not in path, f"depends_on cycle: {path}"
            if name in done:
                return
            for dep in self.services[name].depends_on():
                visit(dep, (*path, name))
            done.append(name)

        for name in self.services:
            visit(name, ())
        return done

    def start(self, name: str) -> ComposeService:
        service = self.services[name]
        for dep, condition in service.depends_on().items():
            if condition == "service_healthy":
                self.wait_healthy(dep)
        if service.process is None:
            service.process = ManagedProcess(
                name,
                self._command(service),
                log_dir=self.log_dir,
                env=self._environment(service),
                cwd=service.image.workdir,
                inherit_env=False,
                stop_grace=70.0,
            )
        service.process.start()
        return service

    def up(self) -> dict[str, int]:
        """Start everything; one-shot services run to the end. Their exit codes."""
        exits = {}
        for name in self.order():
            service = self.start(name)
            if service.one_shot:
                assert service.process is not None
                exits[name] = _wait_exit(service.process, self.start_timeout)
        return exits

    def down(self) -> None:
        for name in reversed(self.order()):
            process = self.services[name].process
            if process is not None:
                process.stop()


def _wait_exit(process: ManagedProcess, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while process.is_running():
        assert time.monotonic() < deadline, f"{process.name} still running after {timeout}s"
        time.sleep(0.1)
    code = process.returncode
    assert code is not None
    return code
