"""Where a benchmark writes its JSON: ``benchmarks/results/`` unless told otherwise."""

from __future__ import annotations

from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def results_path(out: str | None, stem: str, quick: bool = False) -> Path:
    """``--out`` as given (a bare name lands in ``RESULTS_DIR``), else ``<stem>.json``
    (``<stem>-quick.json`` for a quick run, so it never overwrites a measured one); its
    directory exists on return."""
    name = out or (f"{stem}-quick.json" if quick else f"{stem}.json")
    path = Path(name) if Path(name).parent != Path() else RESULTS_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
