"""Every command of the real ``restate`` CLI 1.7.12 (http-apis.md §3), run against the real
restate-server 1.7.12 and against ours with the same services and the same workload: each
must exit with the same code and print the same thing once ids, times and durations are
masked. On top of the comparison, what a command must show is asserted on our output
(a suspended invocation's journal, a paused invocation, a busy key with a queue, ...).

The scenario runs once per server and SDK (the test services on the TypeScript SDK, the
official Python SDK and ours); each command is its own test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.http import call, request
from tests.support.node import NodeTools
from tests.support.server import RealRestateServerProcess, RestateServerProcess

HERE = Path(__file__).parent
TS_APP = HERE / "ts_services" / "app.mjs"
PY_APP = HERE / "py_services" / "app.py"
# Suspend soon after a handler starts waiting, so suspended invocations show up quickly.
SERVER_ENV = {"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "1s"}
# A well-formed id that neither server has (from the real server's capture).
UNKNOWN_ID = "inv_1dTsTd1TAKSz7HXxJUCZxDDF5dZM11GktH"
PATCH = '[{"op":"replace","path":"/count","value":42}]'
STATE_SQL = "SELECT service_name, service_key, key FROM state ORDER BY service_key, key"

# Commands whose output lists services, handlers or deployments in the server's hash-map
# order (the real server's changes from run to run): compared as sorted lines.
UNORDERED = {
    "deployments register",
    "deployments register again",
    "deployments list",
    "deployments describe",
    "services list",
    "services describe",
    "services describe object",
    "deployments remove",
    "deployments remove --force",
    # services, and keys within a service, in hash-map order
    "services status",
    "services status Counter",
    # its select has no ORDER BY
    "invocations cancel SERVICE",
}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Outcome:
    """One server's scenario: every command's run and the names of the ids it made."""

    runs: dict[str, Run]
    names: dict[str, str]  # id -> name

    def masked(self, command: str) -> str:
        run = self.runs[command]
        text = f"exit {run.code}\n{run.stdout}\n--- stderr\n{run.stderr}"
        for value, name in self.names.items():
            text = text.replace(value, f"<{name}>")
        return mask(text)


def mask(text: str) -> str:
    """Replace what differs between two runs by placeholders."""
    rules = [
        (r"inv_[0-9A-Za-z]{20,}", "<inv>"),
        (r"dp_[0-9A-Za-z]{20,}", "<dp>"),
        (r"127\.0\.0\.1:\d+", "<host>"),
        (r"\d{4}-\d\d-\d\d[ T][\d:.]+( \+00:00|Z)?", "<time>"),
        (r"[A-Z][a-z]{2} \d\d [A-Z][a-z]{2} \d{4} [\d:]{8} \+00:00", "<time>"),
        (r"\b01[0-9A-HJKMNP-TV-Z]{24}\b", "<ulid>"),  # generated idempotency keys
        (r"(\d+ (days?|hours?|minutes?|seconds?|ms)(, | and )?)+", "<duration>"),
        (r"\d+(\.\d+)?(ms|µs|s)\b", "<duration>"),
        (r"Retried \d+ time", "Retried <n> time"),
        (r" +$", ""),
    ]
    for pattern, replacement in rules:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    return text


class Scenario:
    """Drives one server with the real CLI."""

    def __init__(self, tools: NodeTools, server: Any, endpoint: Any, home: Path) -> None:
        self.tools = tools
        self.server = server
        self.endpoint = endpoint
        self.home = home
        self.runs: dict[str, Run] = {}
        self.names: dict[str, str] = {str(home): "home"}

    def cli(self, *args: str, **env: str) -> Run:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("RESTATE_")}
        full_env.pop("CI", None)
        full_env.update(
            RESTATE_ADMIN_URL=self.server.admin_url,
            RESTATE_INGRESS_URL=self.server.ingress_url,
            HOME=str(self.home),
            NO_COLOR="1",
            COLUMNS="200",
            **env,
        )
        done = subprocess.run(
            [str(self.tools.restate_cli), *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    def run(self, name: str, *args: str, **env: str) -> Run:
        result = self.runs[name] = self.cli(*args, **env)
        return result

    def send(self, name: str, path: str, body: Any) -> str:
        resp = call(self.server.ingress_url, f"{path}/send", body)
        assert resp.status == 202, resp.text()
        invocation_id = str(resp.json()["invocationId"])
        self.names[invocation_id] = name
        time.sleep(0.02)  # distinct creation times: lists order by them
        return invocation_id

    def query(self, sql: str) -> list[dict[str, Any]]:
        resp = request(
            "POST",
            self.server.admin_url + "/query",
            body=json.dumps({"query": sql}).encode(),
            headers={"content-type": "application/json", "accept": "application/json"},
        )
        assert resp.status == 200, resp.text()
        return list(resp.json()["rows"])

    def status(self, invocation_id: str) -> str | None:
        rows = self.query(f"SELECT status FROM sys_invocation WHERE id = '{invocation_id}'")
        return str(rows[0]["status"]) if rows else None

    def wait(self, what: str, probe: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not probe():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.server.name}: timed out waiting for {what}")
            time.sleep(0.1)

    def wait_status(self, invocation_id: str, *statuses: str) -> None:
        self.wait(
            f"{self.names[invocation_id]} to be {'/'.join(statuses)}",
            lambda: self.status(invocation_id) in statuses,
        )

    def count(self, key: str) -> int:
        return int(call(self.server.ingress_url, f"/Counter/{key}/get").json())

    def play(self) -> Outcome:
        self.run("whoami", "whoami")
        self.run("deployments register", "deployments", "register", "--yes", self.endpoint.url)
        self.run(
            "deployments register again", "deployments", "register", "--yes", self.endpoint.url
        )
        deployment = request("GET", self.server.admin_url + "/deployments").json()
        deployment_id = deployment["deployments"][0]["id"]
        self.names[deployment_id] = "deployment"

        # the workload: state, a retained completed call, and every kind of live invocation
        for key, n in (("k1", 7), ("k2", 3)):
            resp = call(self.server.ingress_url, f"/Counter/{key}/add", n)
            assert resp.status == 200, resp.text()
        resp = call(
            self.server.ingress_url, "/Greeter/greet", "x", headers={"idempotency-key": "g1"}
        )
        assert resp.status == 200, resp.text()
        sleeping = self.send("sleeping", "/Sleeper/sleep", 600_000)
        paused = self.send("paused", "/RetryPause/untilGate", "p1")
        busy = self.send("busy", "/Counter/busy/slowAdd", {"ms": 120_000, "n": 1})
        self.wait_status(busy, "running")
        queued = [self.send(f"queued{i}", "/Counter/busy/add", i) for i in (1, 2)]
        to_cancel = self.send("to_cancel", "/Canceller/longSleep", "c1")
        to_kill = self.send("to_kill", "/Canceller/longSleep", "k1")
        for invocation_id in (sleeping, to_cancel, to_kill):
            self.wait_status(invocation_id, "suspended")
        self.wait_status(paused, "paused")
        for invocation_id in queued:
            self.wait_status(invocation_id, "pending")

        self.run("deployments list", "deployments", "list")
        self.run("deployments describe", "deployments", "describe", deployment_id)
        self.run("services list", "services", "list")
        self.run("services describe", "services", "describe", "Greeter")
        self.run("services describe object", "services", "describe", "Counter")
        self.run("services describe unknown", "services", "describe", "Nope")
        self.run("services config view", "services", "config", "view", "Greeter")
        self.run(
            "services config patch",
            *("services", "config", "patch", "Greeter", "--idempotency-retention", "2h"),
            *("--inactivity-timeout", "90s", "--yes"),
        )
        self.run("services config view after patch", "services", "config", "view", "Greeter")
        self.run("services status", "services", "status")
        self.run("services status Counter", "services", "status", "Counter")

        self.run("invocations list", "invocations", "list")
        self.run("invocations list --all", "invocations", "list", "--all")
        for status in ("paused", "suspended", "pending", "running", "completed"):
            self.run(
                f"invocations list --status {status}", "invocations", "list", "--status", status
            )
        self.run("invocations list --service", "invocations", "list", "--service", "Counter")
        self.run(
            "invocations list --handler",
            *("invocations", "list", "--service", "Counter", "--handler", "add"),
        )
        self.run("invocations list --key", "invocations", "list", "--key", "busy")
        self.run(
            "invocations list --deployment",
            *("invocations", "list", "--deployment", deployment_id),
        )
        self.run(
            "invocations list --completion-result",
            *("invocations", "list", "--completion-result", "success"),
        )
        self.run("invocations list --limit", "invocations", "list", "--limit", "2")
        self.run("invocations describe suspended", "invocations", "describe", sleeping)
        self.run("invocations describe paused", "invocations", "describe", paused)
        self.run("invocations describe running", "invocations", "describe", busy)
        self.run("invocations describe pending", "invocations", "describe", queued[0])
        self.run("invocations describe unknown", "invocations", "describe", UNKNOWN_ID)

        self.run("state get", "state", "get", "Counter", "k1")
        self.run("kv get --plain", "kv", "get", "Counter", "k1", "--plain")
        self.run("state get non-keyed", "state", "get", "Greeter", "k1")
        self.run("state patch", "state", "patch", "Counter", "k1", "--patch", PATCH, "--yes")
        self.wait("the patched state", lambda: self.count("k1") == 42)
        self.run("state get after patch", "state", "get", "Counter", "k1")
        editor = self.home / "editor.sh"
        editor.write_text("#!/bin/sh\nsed -i 's/42/43/' \"$1\"\n")
        editor.chmod(0o755)
        self.run("state edit", "state", "edit", "Counter", "k1", "--yes", EDITOR=str(editor))
        self.wait("the edited state", lambda: self.count("k1") == 43)
        self.run("state clear", "state", "clear", "Counter/k2", "--yes")
        self.wait("the cleared state", lambda: self.count("k2") == 0)
        self.run("kv get after clear", "kv", "get", "Counter", "k2")

        self.run("sql", "sql", STATE_SQL)
        self.run("sql --json", "sql", "--json", STATE_SQL)
        self.run("sql --jsonl", "sql", "--jsonl", STATE_SQL)
        self.run(
            "sql group by",
            "sql",
            "SELECT status, COUNT(*) AS n FROM sys_invocation GROUP BY status ORDER BY status",
        )
        self.run("sql unknown column", "sql", "SELECT nope FROM sys_invocation")
        self.run("sql ddl", "sql", "CREATE TABLE t (a INT)")

        self.run("invocations cancel", "invocations", "cancel", to_cancel, "--yes")
        self.run("invocations kill", "invocations", "kill", to_kill, "--yes")
        self.wait_status(to_cancel, "completed")
        self.wait_status(to_kill, "completed")
        self.run("invocations pause", "invocations", "pause", sleeping, "--yes")
        # a suspended invocation stays suspended (both servers pause it when it would wake)
        time.sleep(0.5)
        self.run("invocations list paused after pause", "invocations", "list", "--status", "paused")
        self.run("invocations resume", "invocations", "resume", paused, "--yes")
        self.wait_status(paused, "backing-off", "running", "paused")
        greet = self.query("SELECT id FROM sys_invocation WHERE target = 'Greeter/greet'")[0]["id"]
        self.names[greet] = "greet"
        self.run("invocations restart-as-new", "invocations", "restart-as-new", greet, "--yes")
        self.run("invocations purge", "invocations", "purge", greet, "--yes")
        self.run("invocations cancel SERVICE", "invocations", "cancel", "Counter", "--yes")
        self.run("invocations cancel nothing", "invocations", "cancel", "Greeter", "--yes")

        self.run("deployments remove", "deployments", "remove", deployment_id, "--yes")
        self.run(
            "deployments remove --force",
            *("deployments", "remove", deployment_id, "--force", "--yes"),
        )
        return Outcome(self.runs, self.names)


def _endpoint(sdk: str, work: Path, tools: NodeTools) -> TsEndpoint | PyEndpoint:
    env = {"GATE_DIR": str(work)}
    if sdk == "ts":
        return TsEndpoint(TS_APP, env=env, work_dir=work, tools=tools, name="ts-services")
    if sdk == "sdk":
        env["TEST_SDK"] = "restate_sdk"  # the same module on our SDK
    return PyEndpoint(PY_APP, env=env, work_dir=work, name=f"{sdk}-services")


def _play(which: str, sdk: str, tools: NodeTools, base: Path) -> Outcome:
    work = base / which
    work.mkdir(parents=True)
    endpoint = _endpoint(sdk, work, tools)
    cls = RealRestateServerProcess if which == "real" else RestateServerProcess
    server = cls(work / "data", work, env=SERVER_ENV, name=f"{which}-server")
    endpoint.start()
    try:
        server.start()
        try:
            (work / "home").mkdir()
            return Scenario(tools, server, endpoint, work / "home").play()
        except BaseException:
            print(server.log_tail(120))
            raise
        finally:
            server.stop()
    finally:
        endpoint.stop()


@pytest.fixture(scope="module", params=["ts", "py", "sdk"])
def outcomes(
    request: pytest.FixtureRequest, tools: NodeTools, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Outcome]]:
    base = tmp_path_factory.mktemp(f"cli-parity-{request.param}")
    played = {which: _play(which, request.param, tools, base) for which in ("real", "ours")}
    dump = os.environ.get("CLI_PARITY_DUMP")  # a folder: write both outputs for a look
    if dump:
        for which, outcome in played.items():
            for command in outcome.runs:
                name = command.replace(" ", "_").replace("/", "_")
                Path(dump, f"{name}.{which}").write_text(outcome.masked(command))
    yield played


COMMANDS = [
    "whoami",
    "deployments register",
    "deployments register again",
    "deployments list",
    "deployments describe",
    "services list",
    "services describe",
    "services describe object",
    "services describe unknown",
    "services config view",
    "services config patch",
    "services config view after patch",
    "services status",
    "services status Counter",
    "invocations list",
    "invocations list --all",
    "invocations list --status paused",
    "invocations list --status suspended",
    "invocations list --status pending",
    "invocations list --status running",
    "invocations list --status completed",
    "invocations list --service",
    "invocations list --handler",
    "invocations list --key",
    "invocations list --deployment",
    "invocations list --completion-result",
    "invocations list --limit",
    "invocations describe suspended",
    "invocations describe paused",
    "invocations describe running",
    "invocations describe pending",
    "invocations describe unknown",
    "state get",
    "kv get --plain",
    "state get non-keyed",
    "state patch",
    "state get after patch",
    "state edit",
    "state clear",
    "kv get after clear",
    "sql",
    "sql --json",
    "sql --jsonl",
    "sql group by",
    "sql unknown column",
    "sql ddl",
    "invocations cancel",
    "invocations kill",
    "invocations pause",
    "invocations list paused after pause",
    "invocations resume",
    "invocations restart-as-new",
    "invocations purge",
    "invocations cancel SERVICE",
    "invocations cancel nothing",
    "deployments remove",
    "deployments remove --force",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_same_output_as_the_real_server(outcomes: dict[str, Outcome], command: str) -> None:
    real, ours = outcomes["real"].masked(command), outcomes["ours"].masked(command)
    if command in UNORDERED:
        real, ours = _sorted_lines(real), _sorted_lines(ours)
    assert ours == real


def _sorted_lines(text: str) -> str:
    # a table row's last cell may hold the first of a list ("- Greeter [1]"): its own line
    text = re.sub(r"^(.*\S) +(- \w+ \[\d+\])$", r"\1\n\2", text, flags=re.MULTILINE)
    return "\n".join(sorted(line.strip() for line in text.splitlines()))


def _ours(outcomes: dict[str, Outcome], command: str) -> str:
    return outcomes["ours"].masked(command)


def test_what_the_commands_show_on_ours(outcomes: dict[str, Outcome]) -> None:
    """Not only the same as the real server: what each command is for is there."""
    runs = outcomes["ours"].runs
    failing = {"services describe unknown", "invocations describe unknown"}
    failing |= {"state get non-keyed", "sql unknown column", "sql ddl", "deployments remove"}
    failing |= {"invocations cancel nothing"}
    for command in COMMANDS:
        expected_ok = command not in failing
        assert (runs[command].code == 0) == expected_ok, (command, runs[command])

    assert "is healthy" in _ours(outcomes, "whoami") or "Admin base URL" in _ours(
        outcomes, "whoami"
    )
    # a suspended invocation's journal: its input and its sleep, then "suspended"
    described = _ours(outcomes, "invocations describe suspended")
    assert "Status:           suspended" in described
    assert "#0 [<time>] Command: Input" in described
    assert "#1 [<time>] Command: Sleep until <time>" in described
    assert "└────>> suspended" in described
    # a paused invocation in the list
    paused = _ours(outcomes, "invocations list --status paused")
    assert "<paused>" in paused and "Status:           paused" in paused
    assert "Showing 1/1 invocations." in paused
    # services status: the busy key holds the lock, two invocations queue behind it
    status = _ours(outcomes, "services status Counter")
    assert re.search(r"busy\s+2\s+<busy> \(running\)\s+slowAdd", status), status
    assert re.search(r"add\s+2\s+-\s+-\s+-", status), status
    # state edits and SQL
    assert "count  7" in _ours(outcomes, "state get")
    assert runs["kv get --plain"].stdout.strip() == '{"count":7}'
    assert "count  42" in _ours(outcomes, "state get after patch")
    assert (
        '[{"service_name":"Counter","service_key":"k1","key":"count"}]' in runs["sql --json"].stdout
    )
    assert "DDL not supported" in runs["sql ddl"].stderr
    assert "Cancelled 1 invocations" in runs["invocations cancel"].stdout
    assert "Killed 1 invocations" in runs["invocations kill"].stdout
    assert "Restarted 1 invocations" in runs["invocations restart-as-new"].stdout
    assert "Purged 1 invocations" in runs["invocations purge"].stdout
