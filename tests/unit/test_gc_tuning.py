"""The server collects garbage far less often than CPython's defaults (see gc_tuning)."""

from __future__ import annotations

import gc
import subprocess
import sys

from restate_server import gc_tuning


def test_server_thresholds_are_well_above_the_defaults() -> None:
    saved = gc.get_threshold()
    try:
        gc_tuning.tune_for_server()
        assert gc.get_threshold() == gc_tuning.SERVER_GC_THRESHOLDS
        assert gc.get_threshold()[0] >= 10_000
    finally:
        gc.set_threshold(*saved)


def test_freezing_moves_live_objects_out_of_collections() -> None:
    # in a child process: freezing is process-wide and must not leak into other tests
    code = (
        "import gc\n"
        "from restate_server import gc_tuning\n"
        "keep = [[i] for i in range(1000)]\n"
        "gc_tuning.freeze_startup_objects()\n"
        "assert gc.get_freeze_count() >= 1000, gc.get_freeze_count()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
