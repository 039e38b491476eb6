"""POST /query with the real `restate` CLI 1.7.12: our server against the real server.

Both servers get the same TypeScript services and the same calls; the CLI's output for
each command must then be the same, once ids, times and ports are normalised.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.endpoints import TsEndpoint
from tests.support.http import query_rows
from tests.support.node import NodeTools
from tests.support.server import RealRestateServerProcess, RestateServerProcess

# short, so that invocations waiting on a promise or a timer suspend within a second
ENV = {"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "1s"}

Server = RestateServerProcess | RealRestateServerProcess


def _normalise(text: str) -> str:
    text = re.sub(r"inv_[0-9a-zA-Z]{34}", "inv_X", text)
    text = re.sub(r"dp_[0-9a-zA-Z]{22,27}", "dp_X", text)
    text = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?( ?\+00:00|Z)?", "TIME", text)
    text = re.sub(r"127\.0\.0\.1:\d+", "HOST", text)
    text = re.sub(r"Query took [0-9.]+[mµn]?s", "Query took T", text)
    text = re.sub(r"[0-9A-HJKMNP-TV-Z]{26}", "ULID", text)  # generated idempotency keys
    # relative times and durations: "(3 seconds ago)", "for 16 seconds and 268 ms"
    text = re.sub(r"\([^()]*\b(ago|ms|seconds?|minutes?)\b[^()]*\)", "(DUR)", text)
    text = re.sub(r"for \d+ [a-z]+( and \d+ ms)?", "for DUR", text)
    return re.sub(r"[ \t]+\n", "\n", text)


class Cli:
    def __init__(self, tools: NodeTools, home: Path, srv: Server) -> None:
        self.tools = tools
        self.env = {
            **os.environ,
            "RESTATE_ADMIN_URL": srv.admin_url,
            "RESTATE_INGRESS_URL": srv.ingress_url,
            "HOME": str(home),
            "NO_COLOR": "1",
        }

    def run(self, *args: str) -> tuple[int, str]:
        done = subprocess.run(
            [str(self.tools.restate_cli), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.returncode, done.stdout + done.stderr

    def ok(self, *args: str) -> str:
        code, out = self.run(*args)
        assert code == 0, out
        return out

    def rows(self, sql: str) -> list[dict[str, Any]]:
        out = self.ok("sql", "--json", sql)
        start = out.index("[")  # the rows, then (on the same line) "N rows. Query took..."
        rows, _ = json.JSONDecoder().raw_decode(out[start:])
        return rows  # type: ignore[no-any-return]


def _scenario(srv: Server) -> None:
    srv.call("/Greeter/greet", "A")
    srv.call("/Greeter/fail", "boom")
    srv.call("/Counter/k1/add", 3)
    srv.call("/Counter/k1/add", 4)
    srv.call("/Payment/p1/run/send", {"amount": 5})
    # lists order by creation time, then by id (which differs between servers): no ties
    time.sleep(0.01)
    srv.call("/Sleeper/sleep/send", 60_000)


def _query(srv: Server, sql: str) -> list[dict[str, Any]]:
    return query_rows(srv.admin_url, sql, path="/v4/query")


def _wait_suspended(srv: Server, count: int) -> None:
    deadline = time.monotonic() + 30
    sql = "SELECT COUNT(*) AS n FROM sys_invocation WHERE status = 'suspended'"
    while _query(srv, sql)[0]["n"] < count:
        assert time.monotonic() < deadline, _query(srv, "SELECT target, status FROM sys_invocation")
        time.sleep(0.2)


@pytest.fixture
def both(
    tools: NodeTools,
    tmp_path: Path,
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> tuple[Cli, Cli]:
    endpoint = ts_endpoint()
    ours, real = server(env=ENV), real_server(env=ENV)
    for srv in (ours, real):
        srv.register(endpoint.url)
        _scenario(srv)
    for srv in (ours, real):
        _wait_suspended(srv, 2)
    home = tmp_path / "cli-home"
    home.mkdir()
    return Cli(tools, home, ours), Cli(tools, home, real)


def _same(ours: Cli, real: Cli, *args: str) -> str:
    code_ours, out_ours = ours.run(*args)
    code_real, out_real = real.run(*args)
    assert code_ours == code_real, (out_ours, out_real)
    assert _normalise(out_ours) == _normalise(out_real)
    return out_ours


def test_cli_reads_the_same_as_from_the_real_server(both: tuple[Cli, Cli]) -> None:
    ours, real = both
    table = _same(ours, real, "sql", "SELECT target, status FROM sys_invocation ORDER BY target")
    assert "Payment/p1/run  suspended" in table and "6 rows." in table
    _same(
        ours,
        real,
        "sql",
        "--json",
        "SELECT name, ty, revision, public FROM sys_service ORDER BY name",
    )
    jsonl = _same(ours, real, "sql", "--jsonl", "SELECT key, value_utf8 FROM state ORDER BY key")
    assert '"value_utf8":"7"' in jsonl
    assert "count  7" in _same(ours, real, "kv", "get", "Counter", "k1")
    listed = _same(ours, real, "invocations", "list")
    assert "Payment/p1/run" in listed and "Sleeper/sleep" in listed
    _same(ours, real, "invocations", "list", "--all")
    _same(ours, real, "invocations", "list", "--service", "Greeter", "--all")
    # (without a service, the CLI lists them in GET /services order, which differs)
    assert "Payment workflow" in ours.ok("services", "status")
    _same(ours, real, "services", "status", "Counter")
    _same(ours, real, "services", "status", "Payment")


def test_describe_shows_a_suspended_invocation_with_its_journal(both: tuple[Cli, Cli]) -> None:
    ours, real = both
    sql = "SELECT id FROM sys_invocation WHERE target = 'Payment/p1/run'"
    outputs = []
    for cli in (ours, real):
        [row] = cli.rows(sql)
        outputs.append(cli.ok("invocations", "describe", row["id"]))
    assert _normalise(outputs[0]) == _normalise(outputs[1])
    described = outputs[0]
    assert "suspended" in described
    for entry in (
        "Command: Input",
        "Command: SetState key status",
        "Command: Run [reserve]",
        "Notification: Run",
        "Command: GetPromise key approval",
    ):
        assert entry in described, described


def test_errors_and_read_only_refusals(both: tuple[Cli, Cli]) -> None:
    ours, real = both
    code, out = ours.run("sql", "SELECT nope FROM sys_invocation")
    assert code == 1 and "Datafusion error: Schema error: No field named nope." in out
    _same(ours, real, "sql", "SELECT nope FROM sys_invocation")
    _same(ours, real, "sql", "SELEC 1")
    for statement, refusal in (
        ("CREATE TABLE x (a int)", "DDL not supported: CreateMemoryTable"),
        ("INSERT INTO sys_service VALUES ('a', 1, true, 'service', 'dp')", "DML not supported"),
        ("COPY (SELECT 1) TO '/tmp/restate-query-copy.csv'", "DML not supported: COPY"),
        # the real server accepts SET (and changes its session for everyone); we refuse it
        ("SET datafusion.execution.batch_size = 1", "Statement not supported: SetVariable"),
    ):
        code, out = ours.run("sql", statement)
        assert code == 1 and refusal in out and "400 Bad Request" in out, out
    assert not Path("/tmp/restate-query-copy.csv").exists()
