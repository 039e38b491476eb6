"""What every server process does around its event loop: the single server, the
supervisor and each worker run the same way and stop on the same signals."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine, Iterable
from typing import Any


def run_server_loop(main: Coroutine[Any, Any, None]) -> None:
    """``main`` on uvloop, with the garbage collector tuned for a long-lived server."""
    from restate_server import gc_tuning

    gc_tuning.tune_for_server()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    asyncio.run(main)


def stop_events(
    signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT),
) -> tuple[asyncio.Event, asyncio.Event]:
    """(stop, hurry): the first of ``signals`` sets stop; a second one sets hurry (do not
    wait for running invocations)."""
    stop = asyncio.Event()
    hurry = asyncio.Event()

    def on_signal() -> None:
        (hurry if stop.is_set() else stop).set()

    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    return stop, hurry
