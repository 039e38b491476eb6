"""Checks that objects are freed by reference counting alone.

The server runs the cycle collector rarely (``restate_server/gc_tuning.py``), so an
object kept alive by a reference cycle stays for minutes there. With the collector
off, whatever a test still finds alive after dropping its references is in a cycle.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_off() -> Iterator[None]:
    """Collect what earlier code left, then keep the collector off inside."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
