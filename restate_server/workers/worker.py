"""A worker process: ``python -m restate_server.workers.worker``, started by the supervisor.

It leads its share of the partitions (``Server`` with a ``WorkerRole``) until SIGTERM,
and dies with its supervisor (a supervisor killed by SIGKILL leaves no worker behind
holding the store or the ports).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys

from restate_server.workers.spec import SPEC_ENV, WorkerSpec, decode_spec

log = logging.getLogger("restate_server")

_PR_SET_PDEATHSIG = 1


def _die_with_parent(supervisor_pid: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the supervisor's stop covers it
        pass
    if os.getppid() != supervisor_pid:  # it died before we asked
        sys.exit(1)


def main() -> None:
    from restate_server.logs import configure_logging
    from restate_server.process_run import run_server_loop

    spec = decode_spec(os.environ[SPEC_ENV])
    _die_with_parent(spec.supervisor_pid)
    # Ctrl-C reaches the whole process group: the supervisor decides, by SIGTERM
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    config = spec.config
    configure_logging(config.log_filter, config.log_format, config.log_disable_ansi_codes)
    run_server_loop(_serve(spec))


async def _serve(spec: WorkerSpec) -> None:
    from restate_server import gc_tuning
    from restate_server.process_run import HURRY_SIGNAL, stop_events
    from restate_server.server import Server, WorkerRole

    role = WorkerRole(
        index=spec.index,
        count=spec.count,
        partition_count=spec.partition_count,
        fabric_addresses=spec.fabric_addresses,
        ingress_fd=spec.ingress_fd,
    )
    server = Server(spec.config, role)
    stop, hurry = stop_events((signal.SIGTERM,), HURRY_SIGNAL)
    starting = asyncio.ensure_future(server.start())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # stopped while waiting for the supervisor's registry
        starting.cancel()
        await server.stop()
        return
    stopping.cancel()
    if starting.exception() is not None:
        log.error("worker %d cannot start", spec.index, exc_info=starting.exception())
        await server.stop()
        sys.exit(1)
    gc_tuning.freeze_startup_objects()
    await stop.wait()
    await server.stop(spec.config.shutdown_timeout_ms / 1000, hurry)


if __name__ == "__main__":
    main()
