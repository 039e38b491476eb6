"""Logging configured like the real server: ``log-filter`` directives, ``log-format``
(pretty, compact or json) and structured fields on the lines about an invocation."""

from restate_server.logs.fields import FIELDS, invocation_fields
from restate_server.logs.filter import LogFilter, parse_log_filter
from restate_server.logs.setup import configure_logging

__all__ = ["FIELDS", "LogFilter", "configure_logging", "invocation_fields", "parse_log_filter"]
