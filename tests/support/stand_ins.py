"""Public images this machine cannot pull, stood in by the same program installed here.

A compose service with ``image:`` (no ``build:``) runs the program its image would
run, from this machine's package, with the command the compose file gives. Only
images whose program is installed here can stand in: ``nats`` (Debian's nats-server,
2.9, for the 2.10 image; the flags the compose files use are the same in both).
Networking is the compose flow's: its published and exposed ports become free loopback
ports, so a stand-in also moves the listening ports its flags name and binds loopback.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import LOOPBACK


@dataclass
class StandInRecipe:
    """The parts of an image's recipe a compose flow reads."""

    exposed_ports: list[int]
    entrypoint: list[str]
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"


class StandInImage:
    # flags whose value is a port the program listens on (both spellings)
    PORT_FLAGS: tuple[str, ...] = ()
    ADDRESS_FLAGS: tuple[str, ...] = ()

    def __init__(self, image: str, program: str, recipe: StandInRecipe, root: Path) -> None:
        self.image = image
        self.program = program
        self.recipe = recipe
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    @property
    def workdir(self) -> Path:
        return self.path(self.recipe.workdir)

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTATE_")}
        env.update(self.recipe.env)
        env.update(extra or {})
        return env

    def argv(self, command: list[str]) -> list[str]:
        name = self.recipe.entrypoint[0]
        return [self.program if command[0] == name else command[0], *command[1:]]

    @property
    def default_command(self) -> list[str]:
        return self.argv(self.recipe.entrypoint + self.recipe.cmd)

    def adapt(self, argv: list[str], ports: dict[int, int]) -> list[str]:
        """``argv`` with its listening ports moved to ``ports`` and its binds on loopback."""
        out: list[str] = []
        words = iter(argv)
        for word in words:
            flag, eq, value = word.partition("=")
            if flag in self.PORT_FLAGS or flag in self.ADDRESS_FLAGS:
                if not eq:
                    value = next(words)
                if flag in self.ADDRESS_FLAGS:
                    continue  # replaced below: loopback only
                value = str(ports.get(int(value), int(value)))
                out.append(f"{flag}={value}")
                continue
            out.append(word)
        return [*out, f"{self.ADDRESS_FLAGS[0]}={LOOPBACK}"] if self.ADDRESS_FLAGS else out


class NatsStandIn(StandInImage):
    PORT_FLAGS = ("-p", "--port", "-m", "--http_port")
    ADDRESS_FLAGS = ("--addr", "-a", "--net")


def stand_in(image: str, root: Path) -> StandInImage:
    """The stand-in for ``image``; fails clearly for an image nothing here can stand in for."""
    name = image.split(":", 1)[0].rsplit("/", 1)[-1]
    if name == "nats":
        program = shutil.which("nats-server") or "/usr/sbin/nats-server"
        assert Path(program).exists(), "nats-server is not installed: scripts/test.sh installs it"
        # the image's ports: clients, routes, monitoring
        recipe = StandInRecipe(exposed_ports=[4222, 6222, 8222], entrypoint=["nats-server"])
        return NatsStandIn(image, program, recipe, root)
    raise AssertionError(f"no stand-in for image {image!r} on this machine")
