"""Public images this machine cannot pull, stood in by the same program installed here.

A compose service with ``image:`` (no ``build:``) runs the program its image would
run, from this machine's package, with the command the compose file gives. Only
images whose program is installed here can stand in: ``nats`` (Debian's nats-server,
2.9, for the 2.10 image; the flags the compose files use are the same in both).

A stand-in is an ``EmulatedImage`` whose "Python installation" is a directory with the
program linked into its ``bin``, so it runs, and is given its environment, as a built
image is. Networking is the compose flow's: its published and exposed ports become
free loopback ports, so a stand-in also moves the listening ports its flags name and
binds loopback (``adapt``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.support.dockerfile import EmulatedImage, Recipe
from tests.support.ports import LOOPBACK


@dataclass
class StandInImage(EmulatedImage):
    # flags whose value is a port the program listens on, and its bind address
    port_flags: tuple[str, ...] = ()
    address_flags: tuple[str, ...] = ()

    def adapt(self, argv: list[str], ports: dict[int, int]) -> list[str]:
        """``argv`` with its listening ports moved to ``ports`` and its binds on loopback."""
        out: list[str] = []
        words = iter(argv)
        for word in words:
            flag, eq, value = word.partition("=")
            if flag not in self.port_flags and flag not in self.address_flags:
                out.append(word)
                continue
            if not eq:
                value = next(words)
            if flag in self.port_flags:
                out.append(f"{flag}={ports.get(int(value), int(value))}")
            # an address flag is dropped: loopback is added below
        return [*out, f"{self.address_flags[0]}={LOOPBACK}"] if self.address_flags else out


def stand_in(image: str, root: Path) -> StandInImage:
    """The stand-in for ``image``; fails clearly for an image nothing here can stand in for."""
    name = image.split(":", 1)[0].rsplit("/", 1)[-1]
    if name != "nats":
        raise AssertionError(f"no stand-in for image {image!r} on this machine")
    program = shutil.which("nats-server") or "/usr/sbin/nats-server"
    assert Path(program).exists(), "nats-server is not installed: scripts/test.sh installs it"
    bin_dir = root / "program" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    link = bin_dir / "nats-server"
    if not link.exists():
        link.symlink_to(program)
    recipe = Recipe(
        base_image=image,
        env={},
        workdir="/",
        copies=[],
        runs=[],
        user=None,
        volumes=[],
        exposed_ports=[4222, 6222, 8222],  # the image's: clients, routes, monitoring
        healthcheck=None,
        healthcheck_flags={},
        entrypoint=["nats-server"],
        cmd=[],
    )
    return StandInImage(
        recipe,
        root,
        root / "program",
        [],
        port_flags=("-p", "--port", "-m", "--http_port"),
        address_flags=("--addr", "-a", "--net"),
    )
