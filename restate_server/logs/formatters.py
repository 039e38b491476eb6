"""The three ``log-format`` layouts of the real server.

- ``pretty``: a header line (time, level, logger), the message indented below it and
  one field per line under that; for people reading a terminal.
- ``compact``: one line, ``time LEVEL logger: message key=value ...``.
- ``json``: one JSON object per line, ``{"timestamp","level","fields":{"message",...},
  "target"}``, for log shippers.

Times are UTC with microseconds (``2026-12-01T21:40:15.103744Z``). Colours only when
asked for (a terminal, and ``log-disable-ansi-codes`` off).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from restate_server.logs.fields import FIELDS

LEVEL_NAMES = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "ERROR",
}
_COLOURS = {"DEBUG": "34", "INFO": "32", "WARN": "33", "ERROR": "31"}


def timestamp(created: float) -> str:
    seconds = int(created)
    micros = int((created - seconds) * 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def level_name(record: logging.LogRecord) -> str:
    return LEVEL_NAMES.get(record.levelno, record.levelname)


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, FIELDS, None)
    return fields if isinstance(fields, dict) else {}


class _Base(logging.Formatter):
    def __init__(self, colours: bool = False) -> None:
        super().__init__()
        self.colours = colours

    def _level(self, record: logging.LogRecord, width: int) -> str:
        name = level_name(record)
        text = name.rjust(width)
        return f"\x1b[{_COLOURS[name]}m{text}\x1b[0m" if self.colours and name in _COLOURS else text

    def _message(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        elif record.exc_text:
            message = f"{message}\n{record.exc_text}"
        return message


class PrettyFormatter(_Base):
    def format(self, record: logging.LogRecord) -> str:
        lines = [f"{timestamp(record.created)} {self._level(record, 5)} {record.name}"]
        lines += [f"  {line}" for line in self._message(record).splitlines() or [""]]
        for key, value in fields_of(record).items():
            text = str(value).replace("\n", "\n      ")
            lines.append(f"    {key}: {text}")
        return "\n".join(lines)


class CompactFormatter(_Base):
    def format(self, record: logging.LogRecord) -> str:
        head = f"{timestamp(record.created)} {self._level(record, 5)} {record.name}: "
        parts = [self._message(record)]
        for key, value in fields_of(record).items():
            parts.append(f"{key}={json.dumps(value) if isinstance(value, str) else value}")
        return head + " ".join(parts)


class JsonFormatter(_Base):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {"message": self._message(record)}
        fields.update(fields_of(record))
        document = {
            "timestamp": timestamp(record.created),
            "level": level_name(record),
            "fields": fields,
            "target": record.name,
        }
        return json.dumps(document, ensure_ascii=False, default=str)


FORMATTERS: dict[str, type[_Base]] = {
    "pretty": PrettyFormatter,
    "compact": CompactFormatter,
    "json": JsonFormatter,
}
