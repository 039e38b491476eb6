"""Logging configured from a RESTATE_LOG_FILTER-style filter.

The real server takes a tracing filter such as ``warn,restate=info`` or
``debug``; we map its levels onto Python logging: the bare level applies to
everything, ``restate=<level>`` to our own loggers.
"""

from __future__ import annotations

import logging
import sys

_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 10,
}


def configure_logging(log_filter: str) -> None:
    root_level = logging.WARNING
    our_level: int | None = None
    for part in (p.strip() for p in log_filter.split(",")):
        if not part:
            continue
        if "=" in part:
            target, _, level = part.partition("=")
            if target.strip().startswith("restate") and level.strip().lower() in _LEVELS:
                our_level = _LEVELS[level.strip().lower()]
        elif part.lower() in _LEVELS:
            root_level = _LEVELS[part.lower()]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(root_level)
    logging.getLogger("restate_server").setLevel(our_level if our_level is not None else root_level)
