"""A Dockerfile's steps performed outside a container, for machines without an engine.

``parse_dockerfile`` reads the instructions our Dockerfiles use; ``build_image`` performs
them in a fresh directory: the base image's Python is a fresh virtualenv of the running
interpreter (same major.minor, checked against the ``FROM`` tag), ``WORKDIR`` and
absolute paths in ``ENV`` values live under that directory, ``COPY`` copies from the
build context, and each ``RUN`` line runs with ``sh -c`` in the work dir with the image's
environment and the venv first on ``PATH``. What a plain user cannot do is not run and is
listed in ``EmulatedImage.skipped``: ``RUN`` lines that create system users (``useradd``)
and ``USER`` itself. ``VOLUME`` directories are created. Exec-form ``ENTRYPOINT``,
``CMD`` and ``HEALTHCHECK CMD`` become argv lists resolved against the venv.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# RUN lines starting with these need root in a container and are not performed
ROOT_ONLY_COMMANDS = ("useradd", "groupadd", "adduser")


@dataclass
class Instruction:
    keyword: str
    arguments: str
    flags: dict[str, str] = field(default_factory=dict)

    def exec_form(self) -> list[str]:
        value = json.loads(self.arguments)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self
        return value


@dataclass
class Recipe:
    base_image: str
    env: dict[str, str]
    workdir: str
    copies: list[tuple[list[str], str]]
    runs: list[str]
    user: str | None
    volumes: list[str]
    exposed_ports: list[int]
    healthcheck: list[str] | None
    healthcheck_flags: dict[str, str]
    entrypoint: list[str]
    cmd: list[str]


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1].rstrip() + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current.strip())
    return lines


def _take_flags(arguments: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    while arguments.startswith("--"):
        word, _, arguments = arguments.partition(" ")
        name, _, value = word[2:].partition("=")
        flags[name] = value
        arguments = arguments.lstrip()
    return flags, arguments


def parse_dockerfile(text: str) -> list[Instruction]:
    instructions = []
    for line in _logical_lines(text):
        keyword, _, arguments = line.partition(" ")
        flags, arguments = _take_flags(arguments.strip())
        instructions.append(Instruction(keyword.upper(), arguments, flags))
    return instructions


def _env_pairs(arguments: str) -> dict[str, str]:
    pairs = {}
    for word in shlex.split(arguments):
        name, sep, value = word.partition("=")
        assert sep, f"ENV {arguments!r}: only the NAME=value form is supported"
        pairs[name] = value
    return pairs


def read_recipe(dockerfile: Path) -> Recipe:
    recipe = Recipe("", {}, "/", [], [], None, [], [], None, {}, [], [])
    for ins in parse_dockerfile(dockerfile.read_text()):
        if ins.keyword == "FROM":
            recipe.base_image = ins.arguments
        elif ins.keyword == "ENV":
            recipe.env.update(_env_pairs(ins.arguments))
        elif ins.keyword == "WORKDIR":
            recipe.workdir = ins.arguments
        elif ins.keyword == "COPY":
            words = shlex.split(ins.arguments)
            recipe.copies.append((words[:-1], words[-1]))
        elif ins.keyword == "RUN":
            recipe.runs.append(ins.arguments)
        elif ins.keyword == "USER":
            recipe.user = ins.arguments
        elif ins.keyword == "VOLUME":
            recipe.volumes.extend(Instruction("VOLUME", ins.arguments).exec_form())
        elif ins.keyword == "EXPOSE":
            recipe.exposed_ports.extend(int(p.split("/")[0]) for p in ins.arguments.split())
        elif ins.keyword == "HEALTHCHECK":
            kind, _, rest = ins.arguments.partition(" ")
            assert kind == "CMD", f"HEALTHCHECK {ins.arguments!r}"
            recipe.healthcheck = Instruction("CMD", rest).exec_form()
            recipe.healthcheck_flags = ins.flags
        elif ins.keyword == "ENTRYPOINT":
            recipe.entrypoint = ins.exec_form()
        elif ins.keyword == "CMD":
            recipe.cmd = ins.exec_form()
        else:
            raise AssertionError(f"instruction {ins.keyword} is not emulated")
    return recipe


@dataclass
class EmulatedImage:
    recipe: Recipe
    root: Path  # stands for the image's /
    venv: Path  # stands for the base image's Python installation
    skipped: list[str]

    def path(self, image_path: str) -> Path:
        """Where an absolute path of the image lives here."""
        return self.root / image_path.lstrip("/")

    @property
    def workdir(self) -> Path:
        return self.path(self.recipe.workdir)

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The image's ENV (absolute paths mapped), the venv first on PATH, then ``extra``
        (what ``docker run -e`` or compose's ``environment`` would add)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTATE_", "PIP_"))}
        env.pop("VIRTUAL_ENV", None)
        for name, value in self.recipe.env.items():
            env[name] = str(self.path(value)) if value.startswith("/") else value
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.update(extra or {})
        return env

    def argv(self, command: list[str]) -> list[str]:
        """An exec-form command with its program resolved in the venv when it is there."""
        program = self.venv / "bin" / command[0]
        return [str(program) if program.exists() else command[0], *command[1:]]

    @property
    def default_command(self) -> list[str]:
        return self.argv(self.recipe.entrypoint + self.recipe.cmd)


def base_python_version(image: str) -> str | None:
    match = re.match(r"python:(\d+\.\d+)", image)
    return match.group(1) if match else None


def build_image(dockerfile: Path, context: Path, root: Path, log: Path) -> EmulatedImage:
    """Perform ``dockerfile``'s steps with ``context`` as the build context under ``root``."""
    recipe = read_recipe(dockerfile)
    wanted = base_python_version(recipe.base_image)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert wanted == here, f"FROM {recipe.base_image}: emulated with Python {here}"
    root.mkdir(parents=True)
    venv = root / "usr-local"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    image = EmulatedImage(recipe, root, venv, [])
    image.workdir.mkdir(parents=True, exist_ok=True)
    for sources, destination in recipe.copies:
        target = image.workdir / destination
        for source in sources:
            origin = context / source
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                dest = target / origin.name if destination.endswith("/") else target
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, dest)
    env = image.environment()
    with open(log, "ab") as out:
        for command in recipe.runs:
            if command.split()[0] in ROOT_ONLY_COMMANDS:
                image.skipped.append(f"RUN {command}")
                continue
            out.write(f"\n===== RUN {command}\n".encode())
            out.flush()
            done = subprocess.run(
                ["sh", "-c", command], cwd=image.workdir, env=env, stdout=out, stderr=out
            )
            assert done.returncode == 0, f"RUN {command} failed; see {log}"
    if recipe.user is not None:
        image.skipped.append(f"USER {recipe.user}")
    for volume in recipe.volumes:
        image.path(volume).mkdir(parents=True, exist_ok=True)
    return image
