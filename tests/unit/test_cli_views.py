"""How our CLI describes invocation rows, journal entries and service status rows."""

from __future__ import annotations

from datetime import UTC, datetime

from restate_cli.commands.service_status import active_keys, summarize
from restate_cli.invocation_view import deployment_text, entry_line, error_text, status_text

NOW = datetime(2026, 11, 24, 17, 48, 0, tzinfo=UTC)


def test_status_texts() -> None:
    running = {
        "status": "running",
        "last_start_at": "2026-11-24T17:47:49.022Z",
        "target_service_ty": "service",
    }
    assert status_text(running, NOW) == "running  (10 seconds and 978 ms)"
    suspended = {
        "status": "suspended",
        "state_modified_at": "2026-11-24T17:47:30.000Z",
        "target_service_ty": "workflow",
    }
    assert status_text(suspended, NOW) == (
        "suspended  (30 seconds ago. The key will not be released until this invocation is "
        "complete)"
    )
    backing_off = {
        "status": "backing-off",
        "num_retries": 5,
        "last_start_at": "2026-11-24T17:47:50.000Z",
        "next_retry_at": "2026-11-24T17:48:08.000Z",
    }
    assert status_text(backing_off, NOW) == (
        "backing-off  (10 seconds. Retried 5 time(s). Next retry in 8 seconds)"
    )
    failed = {
        "status": "completed",
        "completion_result": "failure",
        "completion_failure": "[409] x",
    }
    assert status_text(failed, NOW) == "completed with failure"
    assert error_text(failed) == "[409] x"
    assert status_text({"status": "weird"}, NOW) == "unknown"


def test_deployment_texts() -> None:
    assert deployment_text(
        {
            "status": "running",
            "pinned_deployment_id": "dp_1",
            "pinned_deployment_exists": True,
            "last_attempt_server": "restate-sdk-typescript/1.17.2",
        }
    ) == ("dp_1 [required] using restate-sdk-typescript/1.17.2")
    assert (
        deployment_text(
            {
                "status": "suspended",
                "pinned_deployment_id": "dp_1",
                "pinned_deployment_exists": False,
            }
        )
        == "dp_1 [ZOMBIE]"
    )
    assert deployment_text({"status": "pending"}) is None


def test_journal_entry_lines() -> None:
    set_state = {
        "index": 1,
        "entry_type": "Command: SetState",
        "name": "",
        "appended_at": "2026-11-24T17:47:42.082Z",
        "entry_json": '{"Command":{"SetState":{"key":"stage","value":[34],"name":""}}}',
    }
    assert entry_line(set_state, "human", NOW).endswith("] Command: SetState key stage")
    run = {
        "index": 2,
        "entry_type": "Command: Run",
        "name": "reserve",
        "entry_json": '{"Command":{"Run":{"completion_id":1,"name":"reserve"}}}',
    }
    assert entry_line(run, "human", NOW) == "#2 Command: Run [reserve]"
    sleep = {
        "index": 1,
        "entry_type": "Command: Sleep",
        "name": "",
        "entry_json": '{"Command":{"Sleep":{"wake_up_time":1795542490000,'
        '"completion_id":1,"name":""}}}',
    }
    assert "left)" in entry_line(sleep, "human", NOW)
    output = {
        "index": 3,
        "entry_type": "Command: Output",
        "name": "",
        "entry_json": '{"Command":{"Output":{"result":{"Failure":{"code":409,'
        '"message":"failed: x"}},"name":""}}}',
    }
    assert entry_line(output, "human", NOW) == "#3 Command: Output failure [409] failed: x"
    call = {
        "index": 1,
        "entry_type": "Command: Call",
        "name": "",
        "entry_json": '{"Command":{"Call":{"request":{"invocation_id":"inv_1x",'
        '"invocation_target":{"VirtualObject":{"name":"Counter","key":"k1",'
        '"handler":"add"}}},"name":""}}}',
    }
    assert entry_line(call, "human", NOW) == "#1 Command: Call Counter/k1/add inv_1x"
    # entry_json is optional (older servers, or ours): the type alone is fine
    assert (
        entry_line({"index": 0, "entry_type": "Command: Input", "entry_json": None}, "human", NOW)
        == "#0 Command: Input"
    )


def test_service_status_summary_and_keys() -> None:
    services = [
        {"name": "Counter", "ty": "VirtualObject", "handlers": [{"name": "add"}, {"name": "get"}]},
    ]
    inboxed = [
        {
            "target_service_name": "Counter",
            "target_handler_name": "add",
            "status": "pending",
            "num_invocations": 2,
        }
    ]
    grouped = [
        {
            "target_service_name": "Counter",
            "target_handler_name": "add",
            "status": "completed",
            "num_invocations": 7,
            "oldest_at": "2026-11-24T17:46:55.872Z",
            "oldest_invocation": "inv_old",
        },
        {
            "target_service_name": "Counter",
            "target_handler_name": "add",
            "status": "running",
            "num_invocations": 1,
            "oldest_at": "2026-11-24T17:47:41.974Z",
            "oldest_invocation": "inv_run",
        },
    ]
    summary = summarize(services, inboxed, grouped)
    assert [entry["handler"] for entry in summary] == ["add", "get"]
    assert summary[0]["counts"]["pending"] == 2 and summary[0]["counts"]["running"] == 1
    assert summary[0]["oldest_non_suspended"]["id"] == "inv_old"
    assert summary[1]["oldest_non_suspended"] is None
    keys = active_keys(
        [{"service_name": "Counter", "service_key": "q1", "num_pending": 2}],
        [
            {
                "service_name": "Counter",
                "service_key": "q1",
                "invocation_status": "completed",
                "invocation_holding_lock": "inv_done",
            },
            {
                "service_name": "Counter",
                "service_key": "q1",
                "invocation_status": "running",
                "invocation_holding_lock": "inv_run",
            },
            {
                "service_name": "Counter",
                "service_key": "k9",
                "invocation_status": "completed",
                "invocation_holding_lock": "inv_k9",
            },
        ],
        limit=5,
    )
    assert [
        (k["service_key"], k["invocation_holding_lock"], k.get("num_pending"))
        for k in keys["Counter"]
    ] == [("q1", "inv_run", 2), ("k9", "inv_k9", None)]
