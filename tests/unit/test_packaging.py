"""The Dockerfiles and the compose example refer only to files that are in the tree."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "Dockerfile", ROOT / "examples" / "docker-compose" / "Dockerfile.services"]


def _copy_sources(dockerfile: Path) -> list[str]:
    sources = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words and words[0] == "COPY":
            sources.extend(w for w in words[1:-1] if not w.startswith("--"))
    return sources


def test_every_copied_path_exists_and_is_not_empty() -> None:
    for dockerfile in DOCKERFILES:
        for source in _copy_sources(dockerfile):
            path = ROOT / source
            assert path.exists(), f"{dockerfile.name}: COPY {source} is missing"
            if path.is_dir():
                assert any(path.rglob("*.py")), f"{dockerfile.name}: COPY {source} has no code"


def test_compose_builds_from_the_repository_root() -> None:
    compose = (ROOT / "examples" / "docker-compose" / "docker-compose.yml").read_text()
    assert "context: ../.." in compose and "build: ../.." in compose
    assert "examples/docker-compose/Dockerfile.services" in compose
