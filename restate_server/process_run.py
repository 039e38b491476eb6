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


# what a supervisor sends its workers when it is itself hurried (a second signal)
HURRY_SIGNAL = signal.SIGUSR1


def stop_events(
    signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT),
    hurry_signal: int | None = None,
) -> tuple[asyncio.Event, asyncio.Event]:
    """(stop, hurry): the first of ``signals`` sets stop; a second one sets hurry (do not
    wait for running invocations). With ``hurry_signal`` (a worker) only that signal
    hurries: ``signals`` may arrive twice at once, from whoever signalled the whole
    process group (systemd, a terminal, a test harness) and from the supervisor."""
    stop = asyncio.Event()
    hurry = asyncio.Event()

    def on_signal() -> None:
        (hurry if stop.is_set() and hurry_signal is None else stop).set()

    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    if hurry_signal is not None:
        loop.add_signal_handler(hurry_signal, hurry.set)
    return stop, hurry
