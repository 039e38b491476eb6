"""Installs the configured filter and format on the root logger (stderr)."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from restate_server.logs.filter import parse_log_filter
from restate_server.logs.formatters import FORMATTERS


def configure_logging(
    log_filter: str,
    log_format: str = "pretty",
    disable_ansi_codes: bool = False,
    stream: TextIO | None = None,
) -> None:
    stream = stream or sys.stderr
    parsed = parse_log_filter(log_filter)
    colours = not disable_ansi_codes and log_format != "json" and _is_terminal(stream)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(FORMATTERS[log_format](colours))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    parsed.apply()
    if parsed.not_understood:
        logging.getLogger("restate_server.config").warning(
            "log-filter: ignoring directives that are not understood: %s",
            ", ".join(parsed.not_understood),
        )


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
