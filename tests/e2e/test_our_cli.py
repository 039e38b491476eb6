"""Our ``restate`` CLI (restate_cli) end to end, as a subprocess, against the real
restate-server 1.7.12 and against our server, with the TS test services.

Every flow runs on both servers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.endpoints import TsEndpoint
from tests.support.http import call
from tests.support.server import RealRestateServerProcess, RestateServerProcess

Server = RestateServerProcess | RealRestateServerProcess


def _cli_argv() -> list[str]:
    script = Path(sys.executable).parent / "restate"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "restate_cli"]


@dataclass
class Result:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (
            f"restate {' '.join(self.args)} -> exit {self.code}\n--- stdout\n{self.stdout}"
            f"\n--- stderr\n{self.stderr}"
        )


@dataclass
class Cli:
    """Runs our CLI against one server; ``which`` is ``real`` or ``ours``."""

    which: str
    server: Server
    endpoint: TsEndpoint
    home: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTATE_") and k != "CI"}
        env.update(
            {
                "RESTATE_ADMIN_URL": self.server.admin_url,
                "RESTATE_INGRESS_URL": self.server.ingress_url,
                "HOME": str(self.home),
                "NO_COLOR": "1",
                "COLUMNS": "400",
            }
        )
        env.update(self.extra_env)
        return env

    def run(self, *args: str, ok: bool = True, timeout: float = 60, **env: str) -> Result:
        done = subprocess.run(
            [*_cli_argv(), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        result = Result(args, done.returncode, done.stdout, done.stderr)
        if ok:
            assert result.code == 0, str(result)
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*_cli_argv(), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )

    def json(self, *args: str) -> Any:
        return self.run(*args, "--json").json()

    def send(self, path: str, body: Any) -> str:
        """``/send`` through the ingress; the invocation id."""
        resp = call(self.server.ingress_url, f"{path}/send", body)
        assert resp.status == 202, resp.text()
        return str(resp.json()["invocationId"])

    def wait_for(
        self, what: str, probe: Callable[[], Any], timeout: float = 30.0, interval: float = 0.3
    ) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}")

    def invocation(self, invocation_id: str) -> dict[str, Any] | None:
        result = self.run("invocations", "describe", invocation_id, "--json", ok=False)
        return result.json()["invocation"] if result.code == 0 else None

    def wait_status(self, invocation_id: str, status: str, timeout: float = 30.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            row = self.invocation(invocation_id)
            return row if row and row.get("status") == status else None

        return self.wait_for(f"{invocation_id} {status}", probe, timeout)


@pytest.fixture(params=["real", "ours"])
def cli(
    request: pytest.FixtureRequest,
    real_server: Callable[..., RealRestateServerProcess],
    server: Callable[..., RestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
    tmp_path: Path,
) -> Iterator[Cli]:
    srv: Server = real_server() if request.param == "real" else server()
    yield Cli(request.param, srv, ts_endpoint(), tmp_path)


def _register(cli: Cli) -> str:
    result = cli.run("deployments", "register", cli.endpoint.url, "--yes")
    assert "[OK]: DEPLOYMENT:" in result.stdout
    assert "SERVICES THAT WILL BE ADDED" in result.stdout
    listed = cli.json("deployments", "list")["deployments"]
    assert len(listed) == 1
    return str(listed[0]["id"])


# ---- deployments and services --------------------------------------------------------------


def test_whoami_deployments_and_services(cli: Cli) -> None:
    who = cli.run("whoami")
    assert "is healthy" in who.stdout and "1.7.12" in who.stdout
    assert cli.json("whoami")["max_admin_api_version"] == 4

    deployment_id = _register(cli)
    again = cli.run("deployments", "register", cli.endpoint.url, "--yes")
    assert f"Deployment already exists with id {deployment_id}" in again.stdout
    assert cli.json("deployments", "register", cli.endpoint.url, "--yes")["already_exists"]
    forced = cli.run("dp", "register", cli.endpoint.url, "--yes", "--force")
    assert "SERVICES THAT WILL BE UPDATED" in forced.stdout and "Revision: 1 -> 2" in forced.stdout

    listed = cli.run("dp", "list")
    assert deployment_id in listed.stdout and "- Greeter [2]" in listed.stdout
    assert cli.json("dp", "ls")["deployments"][0]["status"] == "Active"
    described = cli.run("deployments", "describe", deployment_id)
    assert "Bidirectional Stream" in described.stdout and "Revision: 2 [Latest]" in described.stdout
    assert cli.json("dp", "get", deployment_id)["id"] == deployment_id

    services = cli.run("services", "list")
    assert "[public]" in services.stdout and "virtual object" in services.stdout
    names = {s["name"] for s in cli.json("svc", "ls")["services"]}
    assert {"Greeter", "Counter", "Payment", "RetryPause"} <= names
    greeter = cli.run("svc", "describe", "Greeter")
    assert "greet" in greeter.stdout and "application/json" in greeter.stdout
    assert cli.json("svc", "describe", "Counter")["service"]["ty"] == "VirtualObject"

    view = cli.run("services", "config", "view", "Payment")
    assert "Workflow retention time:" in view.stdout
    cli.run(
        "services", "config", "patch", "Greeter",
        "--idempotency-retention", "2h", "--inactivity-timeout", "90s", "--yes",
    )  # fmt: skip
    config = cli.json("services", "config", "view", "Greeter")
    assert config["idempotency_retention"] == "2h"
    assert config["inactivity_timeout"] == "1m 30s"

    missing = cli.run("svc", "describe", "Nope", ok=False)
    assert missing.code == 1
    assert missing.stderr.strip().count("\n") == 0
    assert "The requested service 'Nope' does not exist" in missing.stderr
    down = cli.run("svc", "list", ok=False, RESTATE_ADMIN_URL="http://127.0.0.1:1")
    assert down.code == 1 and "Unable to connect" in down.stderr
    assert cli.run("state", "get", "Greeter", "x", ok=False).code == 1


def test_services_status(cli: Cli) -> None:
    _register(cli)
    assert call(cli.server.ingress_url, "/Counter/s1/add", 1).json() == 1
    status = cli.run("services", "status", "Counter")
    assert "Summary" in status.stdout and "Active Keys" in status.stdout
    assert "Recent Invocations" in status.stdout
    report = cli.json("services", "status", "Counter")
    add = next(e for e in report["summary"] if e["handler"] == "add")
    assert add["oldest_non_suspended"]["status"] == "completed"
    assert [k["service_key"] for k in report["active_keys"]["Counter"]] == ["s1"]
    assert cli.run("services", "status").code == 0


# ---- invocations (need /query) -----------------------------------------------------------


def test_invocation_lifecycle(cli: Cli) -> None:
    deployment_id = _register(cli)

    # a suspended invocation and its journal
    cli.run("svc", "config", "patch", "Sleeper", "--inactivity-timeout", "1s", "--yes")
    sleeping = cli.send("/Sleeper/sleep", 600_000)
    row = cli.wait_status(sleeping, "suspended")
    assert row["target"] == "Sleeper/sleep"
    described = cli.run("invocations", "describe", sleeping)
    assert "Command: Sleep" in described.stdout and "suspended" in described.stdout
    listed = cli.run("invocations", "list", "--status", "suspended")
    assert sleeping in listed.stdout and "Showing 1/1 invocations" in listed.stderr

    # a paused invocation (RetryPause pauses after two failed attempts)
    paused = cli.send("/RetryPause/untilGate", "g1")
    cli.wait_status(paused, "paused")
    paused_list = cli.json("invocations", "list", "--status", "paused")
    assert [r["id"] for r in paused_list] == [paused]
    watch = cli.run("invocations", "watch", "--once")
    assert paused in watch.stdout and sleeping in watch.stdout and "paused" in watch.stdout
    assert {r["id"] for r in cli.json("invocations", "watch", "--once")} >= {paused, sleeping}
    cli.endpoint.open_gate("g1")
    resumed = cli.run("invocations", "resume", "RetryPause/untilGate", "--yes")
    assert "[OK]: Resumed 1 invocations" in resumed.stdout
    assert cli.wait_status(paused, "completed")["completion_result"] == "success"

    # cancel the sleeping one
    cancelled = cli.run("invocations", "cancel", sleeping, "--yes")
    assert "[OK]: Cancelled 1 invocations" in cancelled.stdout
    done = cli.wait_status(sleeping, "completed")
    assert done["completion_result"] == "failure"

    # pause, then kill, one that fails forever
    stuck = cli.send("/Canceller/stuck", "s1")
    cli.wait_for("stuck retrying", lambda: (cli.invocation(stuck) or {}).get("num_retries"))
    cli.run("invocations", "pause", stuck, "--yes")
    cli.wait_status(stuck, "paused")
    killed = cli.json("invocations", "kill", "Canceller/stuck", "--yes")
    assert killed["invocations"][0]["ok"]
    cli.wait_status(stuck, "completed")
    nothing = cli.run("invocations", "cancel", "Canceller", "--yes", ok=False)
    assert nothing.code == 1 and "No invocations found" in nothing.stderr

    # restart-as-new and purge of a completed one
    greeted = call(cli.server.ingress_url, "/Greeter/greet", "CLI")
    greeted_id = greeted.headers["x-restate-id"]
    restarted = cli.json("invocations", "restart-as-new", greeted_id, "--yes")
    new_id = restarted["invocations"][0]["new_invocation_id"]
    assert new_id and new_id != greeted_id
    cli.wait_status(new_id, "completed")
    purged = cli.run("invocations", "purge", greeted_id, "--yes")
    assert "[OK]: Purged 1 invocations" in purged.stdout
    gone = cli.run("invocations", "describe", greeted_id, ok=False)
    assert gone.code == 1 and "not found" in gone.stderr

    # sql: table, --json (the real CLI's array, no newline after it), --jsonl, errors
    query = f"SELECT id, target, status FROM sys_invocation WHERE id = '{new_id}'"
    table = cli.run("sql", query)
    assert "ID" in table.stdout and "TARGET" in table.stdout and new_id in table.stdout
    assert "1 rows. Query took" in table.stderr
    as_json = cli.run("sql", "--json", query)
    assert as_json.json() == [{"id": new_id, "target": "Greeter/greet", "status": "completed"}]
    assert not as_json.stdout.endswith("\n")
    lines = cli.run("sql", "--jsonl", "SELECT name, ty FROM sys_service").stdout.splitlines()
    assert {"name": "Counter", "ty": "virtual_object"} in [json.loads(x) for x in lines]
    bad = cli.run("sql", "SELECT nope FROM sys_invocation", ok=False)
    assert bad.code == 1 and bad.stderr.startswith("Error: ")

    # removing the deployment: refused while it is active, done with --force
    refused = cli.run("deployments", "remove", deployment_id, "--yes", ok=False)
    assert refused.code == 1 and "--force" in refused.stderr
    cli.run("deployments", "remove", deployment_id, "--force", "--yes")
    cli.wait_for("deployment removed", lambda: cli.json("dp", "list")["deployments"] == [])


def test_journal_follow_until_completion(cli: Cli) -> None:
    _register(cli)
    invocation_id = cli.send("/Steps/threeSteps", "f1")
    cli.endpoint.wait_at_gate("f1")
    follower = cli.popen("invocations", "journal", invocation_id, "--follow", "--interval", "0.3")
    try:
        time.sleep(1.5)
        assert follower.poll() is None, "journal --follow ended before the invocation did"
        cli.endpoint.open_gate("f1")
        stdout, stderr = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, stderr
    assert "Command: Run [step1]" in stdout and "Command: Run [step3]" in stdout
    assert "Command: Output" in stdout
    assert stdout.rstrip().endswith("completed")
    lines = cli.run("invocations", "journal", invocation_id, "--json").json()["journal"]
    assert [e["index"] for e in lines] == list(range(len(lines)))


# ---- state (needs /query) ----------------------------------------------------------------


def test_state_get_patch_edit_clear(cli: Cli, tmp_path: Path) -> None:
    _register(cli)
    assert call(cli.server.ingress_url, "/Counter/k1/add", 5).json() == 5
    assert cli.run("state", "get", "Counter", "k1", "--plain").stdout.strip() == '{"count":5}'
    table = cli.run("kv", "get", "Counter", "k1")
    assert "count" in table.stdout and "5" in table.stdout

    cli.run(
        "state", "patch", "Counter", "k1", "--yes",
        "--patch", '[{"op": "replace", "path": "/count", "value": 42}]',
    )  # fmt: skip
    cli.wait_for(
        "patched state",
        lambda: call(cli.server.ingress_url, "/Counter/k1/get", None).json() == 42,
    )
    assert cli.json("state", "get", "Counter", "k1")["state"] == {"count": 42}

    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/42/7/" "$1"\n')
    editor.chmod(0o755)
    cli.run("state", "edit", "Counter", "k1", "--yes", EDITOR=str(editor), VISUAL=str(editor))
    cli.wait_for(
        "edited state",
        lambda: call(cli.server.ingress_url, "/Counter/k1/get", None).json() == 7,
    )

    cleared = cli.run("state", "clear", "Counter/k1", "--yes")
    assert "Counter/k1" in cleared.stdout and "[count]" in cleared.stdout
    cli.wait_for(
        "cleared state",
        lambda: cli.run("state", "get", "Counter", "k1", "--plain").stdout.strip() == "{}",
    )
    nothing = cli.run("state", "clear", "Counter/k1", "--yes", ok=False)
    assert nothing.code == 1 and "No state found" in nothing.stderr
