"""Our SDK runs the very code written for the official one: only the imports differ."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_sdk_services_are_the_official_services_with_another_import() -> None:
    official = (HERE / "py_services" / "app.py").read_text().splitlines()
    ours = (HERE / "sdk_services" / "app.py").read_text().splitlines()
    assert len(official) == len(ours)
    different = [(a, b) for a, b in zip(official, ours, strict=True) if a != b]
    allowed = {
        ("import restate", "import restate_sdk as restate"),
        ("from restate import (", "from restate_sdk import ("),
    }
    assert all(pair in allowed or "SDK" in pair[0] for pair in different), different
