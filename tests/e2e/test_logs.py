"""Logs as an operator gets them: the configured format on every line, the invocation's
id, target and attempt on the lines about it, and no user data (bodies, keys, state)."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.support.endpoints import TsEndpoint
from tests.support.server import RestateServerProcess

SECRET_BODY = "secret-body-7f3a"
SECRET_KEY = "secret-key-91c2"
SECRET_STATE = 424242


def _json_lines(srv: RestateServerProcess) -> list[dict[str, object]]:
    lines = []
    for line in srv.log_path.read_text().splitlines():
        if not line or line.startswith("====="):  # the test harness's own banners
            continue
        lines.append(json.loads(line))  # every line the server wrote is one JSON document
    return lines


def test_json_logs_carry_invocation_fields_and_no_user_data(
    server: Callable[..., RestateServerProcess], ts_endpoint: Callable[..., TsEndpoint]
) -> None:
    srv = server(env={"RESTATE_LOG_FORMAT": "json", "RESTATE_LOG_FILTER": "debug"})
    srv.register(ts_endpoint().url)
    assert srv.call("/Greeter/greet", SECRET_BODY).json() == f"Hello, {SECRET_BODY}!"
    assert srv.call(f"/Counter/{SECRET_KEY}/add", SECRET_STATE).json() == SECRET_STATE
    flaky = srv.call("/Flaky/failOnce", "tag1")
    assert flaky.json() == 2
    srv.stop()

    lines = _json_lines(srv)
    assert {line["level"] for line in lines} <= {"DEBUG", "INFO", "WARN", "ERROR"}
    ready = [line for line in lines if "ready" in str(line["fields"]["message"])]  # type: ignore[index]
    assert ready and ready[0]["target"] == "restate_server"
    retries = [
        line["fields"]
        for line in lines
        if str(line["fields"]["message"]).startswith("Invocation error, retrying in")  # type: ignore[index]
    ]
    assert len(retries) == 1, retries
    assert retries[0] == {  # type: ignore[comparison-overlap]
        "message": retries[0]["message"],  # type: ignore[index]
        "restate.invocation.id": flaky.headers["x-restate-id"],
        "restate.invocation.target": "Flaky/failOnce",
        "restate.invocation.attempt": 1,
        "error": "[500] failOnce(tag1): transient failure on attempt 1",
    }
    text = srv.log_path.read_text()
    for secret in (SECRET_BODY, SECRET_KEY, str(SECRET_STATE)):
        assert secret not in text, f"{secret} leaked into the log"


def test_compact_format_and_filter(
    server: Callable[..., RestateServerProcess], ts_endpoint: Callable[..., TsEndpoint]
) -> None:
    # the real server's crate name for the invoker turns its lines off
    srv = server(
        env={
            "RESTATE_LOG_FORMAT": "compact",
            "RESTATE_LOG_FILTER": "warn,restate=info,restate_invoker_impl=error",
        }
    )
    srv.register(ts_endpoint().url)
    assert srv.call("/Flaky/failOnce", "tag2").json() == 2
    srv.stop()
    lines = [line for line in srv.log_path.read_text().splitlines() if line.startswith("20")]
    assert any(" INFO restate_server: restate-server ready" in line for line in lines), lines
    assert not any("Invocation error" in line for line in lines), lines
