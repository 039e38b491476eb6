"""Stop and hurry signals of the server processes (signals sent to this test process)."""

from __future__ import annotations

import asyncio
import os
import signal

from restate_server.process_run import HURRY_SIGNAL, stop_events


async def _signal(sig: int) -> None:
    os.kill(os.getpid(), sig)
    await asyncio.sleep(0.05)  # the loop runs the handler


async def test_a_second_signal_hurries_a_single_server_or_supervisor() -> None:
    loop = asyncio.get_running_loop()
    stop, hurry = stop_events((signal.SIGTERM,))
    try:
        await _signal(signal.SIGTERM)
        assert stop.is_set() and not hurry.is_set()
        await _signal(signal.SIGTERM)
        assert hurry.is_set()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def test_a_worker_is_hurried_only_by_its_supervisor() -> None:
    # SIGTERM to the whole process group and the supervisor's own SIGTERM both arrive
    loop = asyncio.get_running_loop()
    stop, hurry = stop_events((signal.SIGTERM,), HURRY_SIGNAL)
    try:
        await _signal(signal.SIGTERM)
        await _signal(signal.SIGTERM)
        assert stop.is_set() and not hurry.is_set()
        await _signal(HURRY_SIGNAL)
        assert hurry.is_set()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        loop.remove_signal_handler(HURRY_SIGNAL)
