"""Log filter directives, the three formats and the invocation fields (no sockets)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from restate_server.logs import FIELDS, configure_logging, invocation_fields, parse_log_filter
from restate_server.logs.formatters import CompactFormatter, JsonFormatter, PrettyFormatter

LOGGERS = ("restate_server", "restate_sdk", "restate_server.invoker", "hpack", "h2", "aiohttp")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in LOGGERS}
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def test_the_real_default_filter() -> None:
    parsed = parse_log_filter("warn,restate=info")
    assert parsed.default == logging.WARNING
    assert parsed.levels == {"restate_server": logging.INFO, "restate_sdk": logging.INFO}
    assert parsed.not_understood == []


@pytest.mark.parametrize(
    ("text", "logger", "level"),
    [
        ("info,restate_server::invoker=debug", "restate_server.invoker", logging.DEBUG),
        ("restate_server.invoker=trace", "restate_server.invoker", logging.DEBUG),
        # the real server's crate names address the package of ours doing that work
        ("restate_invoker_impl=debug", "restate_server.invoker", logging.DEBUG),
        ("restate_ingress_http=error", "restate_server.ingress", logging.ERROR),
        ("aiohttp=debug", "aiohttp", logging.DEBUG),
        ("restate=off", "restate_server", logging.CRITICAL + 10),
        ("WARN,restate=DEBUG", "restate_sdk", logging.DEBUG),
    ],
)
def test_target_directives(text: str, logger: str, level: int) -> None:
    assert parse_log_filter(text).levels[logger] == level


def test_the_last_directive_for_a_target_wins_and_bare_levels_set_the_default() -> None:
    parsed = parse_log_filter("error, restate=info ,restate=debug, info")
    assert parsed.default == logging.INFO
    assert parsed.levels["restate_server"] == logging.DEBUG


def test_directives_without_a_counterpart_are_reported() -> None:
    parsed = parse_log_filter("info,restate[invoke]=debug,restate=loud,restate_server")
    assert parsed.not_understood == ["restate[invoke]=debug", "restate=loud", "restate_server"]
    assert parsed.default == logging.INFO and parsed.levels == {}


def test_applied_as_logger_levels_and_chatty_libraries_stay_quiet() -> None:
    configure_logging("debug,restate_server.invoker=error", "compact", stream=io.StringIO())
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("restate_server.invoker").level == logging.ERROR
    # hpack's debug lines print header values: only when asked for by name
    assert not logging.getLogger("hpack").isEnabledFor(logging.DEBUG)
    configure_logging("debug,hpack=debug", "compact", stream=io.StringIO())
    assert logging.getLogger("hpack").isEnabledFor(logging.DEBUG)


def _record(message: str = "Invocation error, retrying in %s.", *args: object) -> logging.LogRecord:
    args = args or (("50ms",) if "%s" in message else ())
    record = logging.LogRecord(
        "restate_server.invoker", logging.WARNING, __file__, 1, message, args, None
    )
    record.created = 1_796_248_815.103744
    extra = invocation_fields("inv_1abc", "Counter", "add", 2, error="[500] boom")
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_invocation_fields_carry_id_target_and_attempt_but_never_the_key() -> None:
    fields = invocation_fields("inv_1abc", "Counter", "add", 3)[FIELDS]
    assert fields == {
        "restate.invocation.id": "inv_1abc",
        "restate.invocation.target": "Counter/add",
        "restate.invocation.attempt": 3,
    }


def test_json_lines() -> None:
    line = JsonFormatter().format(_record())
    assert "\n" not in line
    assert json.loads(line) == {
        "timestamp": "2026-12-02T22:00:15.103744Z",
        "level": "WARN",
        "fields": {
            "message": "Invocation error, retrying in 50ms.",
            "restate.invocation.id": "inv_1abc",
            "restate.invocation.target": "Counter/add",
            "restate.invocation.attempt": 2,
            "error": "[500] boom",
        },
        "target": "restate_server.invoker",
    }


def test_compact_lines() -> None:
    assert CompactFormatter().format(_record()) == (
        "2026-12-02T22:00:15.103744Z  WARN restate_server.invoker: Invocation error, retrying"
        ' in 50ms. restate.invocation.id="inv_1abc" restate.invocation.target="Counter/add"'
        ' restate.invocation.attempt=2 error="[500] boom"'
    )


def test_pretty_lines() -> None:
    assert PrettyFormatter().format(_record()).splitlines() == [
        "2026-12-02T22:00:15.103744Z  WARN restate_server.invoker",
        "  Invocation error, retrying in 50ms.",
        "    restate.invocation.id: inv_1abc",
        "    restate.invocation.target: Counter/add",
        "    restate.invocation.attempt: 2",
        "    error: [500] boom",
    ]


def test_colours_only_when_asked_for() -> None:
    assert "\x1b[" in CompactFormatter(colours=True).format(_record())
    stream = io.StringIO()  # not a terminal
    configure_logging("info", "pretty", stream=stream)
    logging.getLogger("restate_server").warning("plain")
    assert "\x1b[" not in stream.getvalue() and "plain" in stream.getvalue()


def test_exceptions_are_part_of_the_message() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        record = _record("failed")
        record.exc_info = __import__("sys").exc_info()
    document = json.loads(JsonFormatter().format(record))
    assert document["fields"]["message"].startswith("failed\nTraceback")
