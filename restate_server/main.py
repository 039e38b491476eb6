"""The ``restate-server`` command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys

import click

from restate_server.config import ConfigError, dump_config, load_config
from restate_server.durations import format_duration
from restate_server.logs import configure_logging


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config-file",
    envvar="RESTATE_CONFIG",
    type=click.Path(dir_okay=False),
    help="TOML configuration file (env: RESTATE_CONFIG).",
)
@click.option(
    "--base-dir",
    type=click.Path(file_okay=False),
    help="Where the server keeps its data (env: RESTATE_BASE_DIR, default ./restate-data).",
)
@click.option("--node-name", help="Name of this node (env: RESTATE_NODE_NAME).")
@click.option("--log-filter", help="Log filter, e.g. 'info' (env: RESTATE_LOG_FILTER).")
@click.option("--dump-config", is_flag=True, help="Print the effective configuration and exit.")
def main(
    config_file: str | None,
    base_dir: str | None,
    node_name: str | None,
    log_filter: str | None,
    dump_config: bool,
) -> None:
    """A durable-execution server, wire-compatible with Restate."""
    overrides: dict[str, object] = {}
    if base_dir is not None:
        overrides["base-dir"] = base_dir
    if node_name is not None:
        overrides["node-name"] = node_name
    if log_filter is not None:
        overrides["log-filter"] = log_filter
    try:
        config = load_config(config_file, os.environ, overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if dump_config:
        click.echo(dump_config_text(config))
        return
    configure_logging(config.log_filter, config.log_format, config.log_disable_ansi_codes)
    _run(config)


def dump_config_text(config: object) -> str:
    return dump_config(config)  # type: ignore[arg-type]


def _run(config: object) -> None:
    from restate_server.process_run import run_server_loop

    run_server_loop(_serve(config))


async def _serve(config: object) -> None:
    from restate_server import gc_tuning
    from restate_server.process_run import stop_events
    from restate_server.request_identity import RequestIdentityKeyError
    from restate_server.server import Server

    workers = config.py.worker.resolved_processes(config.default_num_partitions)  # type: ignore[attr-defined]
    if config.py.cluster.enabled:  # type: ignore[attr-defined]
        workers = 1  # cluster mode runs in one process per node (docs/cluster.md)
    if workers > 1:
        await _supervise(config, workers)
        return
    server = Server(config)
    stop, hurry = stop_events()
    starting = asyncio.ensure_future(server.start())
    stopping = asyncio.ensure_future(stop.wait())
    # a cluster node's start waits for its engine (it may not be up yet): a stop signal
    # ends the wait
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await server.stop()
        return
    stopping.cancel()
    try:
        starting.result()
    # ConfigError: what only shows when used, e.g. a bad tracing endpoint
    except (OSError, RequestIdentityKeyError, ConfigError) as exc:
        logging.getLogger("restate_server").error("cannot start: %s", exc)
        await server.stop()
        sys.exit(1)
    gc_tuning.freeze_startup_objects()
    await stop.wait()
    timeout_ms = config.shutdown_timeout_ms  # type: ignore[attr-defined]
    log = logging.getLogger("restate_server")
    log.info(
        "Shutting down: running invocations get up to %s to finish or suspend",
        format_duration(timeout_ms),
    )
    await server.stop(timeout_ms / 1000, hurry)
    log.info("Stopped")


async def _supervise(config: object, workers: int) -> None:
    """N worker processes under this one (docs/workers.md)."""
    from restate_server.process_run import stop_events
    from restate_server.request_identity import RequestIdentityKeyError
    from restate_server.workers.supervisor import Supervisor

    supervisor = Supervisor(config, workers)
    stop, hurry = stop_events()
    log = logging.getLogger("restate_server")
    try:
        await supervisor.start()
    except (OSError, RequestIdentityKeyError, ConfigError, RuntimeError, TimeoutError) as exc:
        log.error("cannot start: %s", exc)
        await supervisor.stop()
        sys.exit(1)
    await stop.wait()
    log.info("Shutting down %d worker processes", workers)
    await supervisor.stop(hurry)
    log.info("Stopped")


if __name__ == "__main__":  # pragma: no cover
    main()
