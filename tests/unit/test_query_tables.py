"""/query tables over records written by the partition state machine (no sockets)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from restate_server.partition.commands import AttemptEnded
from restate_server.protocol import messages as pm
from restate_server.protocol.ids import workflow_invocation_id
from restate_server.query.errors import QueryFailed
from restate_server.query.in_flight import InvokerState
from restate_server.schema.model import Deployment, ServiceSchema
from restate_server.storage.records import Target
from tests.unit.fake_schema import FakeSchema
from tests.unit.partition_harness import GREETER, Harness, counter, id_str
from tests.unit.query_support import arrow_table, empty_view, engine, json_rows, view_of

GROUND_TRUTH = Path(__file__).resolve().parents[1] / "data/ground-truth"
DAY = 86_400_000


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(str(tmp_path / "db"), FakeSchema())
    yield harness
    harness.close()


def _retained(h: Harness, target: Target, **kw: object) -> bytes:
    invocation_id, _ = h.invoke(target, completion_retention_ms=DAY, journal_retention_ms=DAY, **kw)
    return invocation_id


def test_information_schema_is_the_real_servers() -> None:
    truth = json.loads((GROUND_TRUTH / "sql-information-schema-columns.json").read_text())["rows"]
    rows = json_rows(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "ORDER BY table_name, ordinal_position",
        empty_view(),
    )
    assert rows == truth


def test_cli_column_probes_count_like_the_real_server() -> None:
    table = arrow_table(
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'sys_journal' "
        "AND column_name IN ('version', 'entry_json', 'appended_at')",
        empty_view(),
    )
    assert table.schema.field(0).name == "count(*)"
    assert str(table.schema.field(0).type) == "int64" and not table.schema.field(0).nullable
    assert table.column(0).to_pylist() == [3]


def test_invocation_status_rows_and_derived_status(h: Harness) -> None:
    done = _retained(h, GREETER, idempotency_key="key-1")
    h.end(done, b'"hi"')
    failed = _retained(h, GREETER)
    h.sdk(failed, pm.OutputCommandMessage(failure=pm.Failure(code=418, message="boom")))
    h.apply(AttemptEnded(failed, h.status(failed).epoch))
    running = _retained(h, counter("k"))
    queued = _retained(h, counter("k"))
    sleeping = _retained(h, GREETER)
    h.sdk(sleeping, pm.SleepCommandMessage(wake_up_time=h.now + 60_000, result_completion_id=1))
    h.suspend(sleeping, [1])
    backing_off = _retained(h, counter("other"))
    ready = _retained(h, counter("third"))
    invoker = {
        running: InvokerState(in_flight=True, retry_count=1, last_start_at=h.now),
        backing_off: InvokerState(
            in_flight=False,
            retry_count=3,
            next_retry_at=h.now + 500,
            last_failure="[500 Internal] transient",
            last_attempt_server="restate-sdk-typescript/1.17.2",
        ),
    }
    view = view_of(h.store, invoker=invoker)
    raw = {r["id"]: r for r in json_rows("SELECT * FROM sys_invocation_status", view)}
    assert raw[id_str(done)]["status"] == "completed"
    assert raw[id_str(done)]["completion_result"] == "success"
    assert raw[id_str(done)]["idempotency_key"] == "key-1"
    assert raw[id_str(done)]["completion_retention"] == "PT86400S"
    assert raw[id_str(failed)]["completion_failure"] == "[418] boom"
    assert raw[id_str(queued)]["status"] == "inboxed" and "journal_size" not in raw[id_str(queued)]
    assert raw[id_str(sleeping)]["status"] == "suspended"
    assert raw[id_str(sleeping)]["suspended_waiting_for_completions"] == [1]
    assert raw[id_str(sleeping)]["suspended_waiting_future_json"] == (
        '{"Unknown":[{"Single":{"CompletionId":1}},{"Single":{"SignalIndex":1}}]}'
    )
    assert raw[id_str(running)]["target"] == "Counter/k/add"
    assert raw[id_str(running)]["target_service_ty"] == "virtual_object"
    assert raw[id_str(running)]["journal_size"] == 1
    assert raw[id_str(running)]["journal_commands_size"] == 1
    assert raw[id_str(running)]["created_using_restate_version"] == "1.7.12"
    assert raw[id_str(running)]["partition_key"] == int.from_bytes(running[:8], "big")

    derived = {
        r["id"]: r for r in json_rows("SELECT * FROM sys_invocation ORDER BY created_at", view)
    }
    assert derived[id_str(done)]["status"] == "completed"
    assert derived[id_str(queued)]["status"] == "pending"
    assert derived[id_str(sleeping)]["status"] == "suspended"
    assert derived[id_str(running)]["status"] == "running"
    assert derived[id_str(running)]["retry_count"] == 1
    assert derived[id_str(backing_off)]["status"] == "backing-off"
    assert derived[id_str(backing_off)]["last_failure"] == "[500 Internal] transient"
    assert derived[id_str(backing_off)]["next_retry_at"]
    assert derived[id_str(ready)]["status"] == "ready"
    assert "partition_key" not in derived[id_str(ready)]
    counts = json_rows(
        "SELECT status, COUNT(*) AS n FROM sys_invocation GROUP BY status ORDER BY status", view
    )
    assert {r["status"]: r["n"] for r in counts} == {
        "backing-off": 1,
        "completed": 2,
        "pending": 1,
        "ready": 1,
        "running": 1,
        "suspended": 1,
    }


def test_cli_invocation_queries(h: Harness) -> None:
    first = _retained(h, counter("q1"))
    second = _retained(h, counter("q1"))
    view = view_of(h.store)
    ids = json_rows(
        "SELECT id FROM sys_invocation inv WHERE inv.target_service_name IN ('Counter') AND "
        "inv.target_service_key IN ('q1') AND status IN ('pending') "
        "ORDER BY inv.created_at DESC, inv.id LIMIT 100",
        view,
    )
    assert ids == [{"id": id_str(second)}]
    # the derived table's alias leaks out of the sub-query, as in DataFusion
    count = arrow_table(
        "SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000) "
        "WHERE inv.status != 'completed'",
        view_of(h.store),
    )
    assert count.schema.field(0).name == "count(Int64(1))"
    assert count.column(0).to_pylist() == [2]
    details = json_rows(
        f"""SELECT inv.id, inv.target, inv.status, inv.created_at,
            inv.modified_at as state_modified_at, inv.retry_count as num_retries,
            dp.id IS NOT NULL as pinned_deployment_exists
        FROM sys_invocation inv
        LEFT JOIN sys_deployment dp ON dp.id = inv.pinned_deployment_id
        WHERE inv.id = '{id_str(first)}' AND inv.id in ('{id_str(first)}')""",
        view_of(h.store),
    )
    [row] = details
    assert row["id"] == id_str(first) and row["target"] == "Counter/q1/add"
    assert row["pinned_deployment_exists"] is False and "num_retries" not in row
    assert row["created_at"].endswith("Z")
    selected = json_rows(
        "SELECT id, target FROM sys_invocation_status WHERE "
        "((target = 'Counter/q1' AND target_service_ty = 'service') OR "
        "(target LIKE 'Counter/q1/%' AND target_service_ty != 'service')) "
        "AND status != 'completed' LIMIT 500",
        view_of(h.store),
    )
    assert sorted(r["id"] for r in selected) == sorted([id_str(first), id_str(second)])
    oldest = json_rows(
        "SELECT target_service_name, target_handler_name, 'pending' as status, "
        "COUNT(1) as num_invocations, MIN(created_at) as oldest_at, "
        "FIRST_VALUE(id ORDER BY created_at ASC) as oldest_invocation "
        "FROM sys_invocation_status WHERE status == 'inboxed' AND target_service_name IN "
        "('Counter') GROUP BY target_service_name, target_handler_name",
        view_of(h.store),
    )
    assert oldest[0]["oldest_invocation"] == id_str(second)
    assert oldest[0]["num_invocations"] == 1


def test_state_rows_hex_values(h: Harness) -> None:
    target = counter("k1")
    invocation_id = _retained(h, target)
    h.sdk(invocation_id, pm.SetStateCommandMessage(key=b"count", value=b"7"))
    h.sdk(invocation_id, pm.SetStateCommandMessage(key=b"last", value=b'{"at":"x"}'))
    other = _retained(h, counter("k2"))
    h.sdk(other, pm.SetStateCommandMessage(key=b"count", value=b"\xff"))
    rows = json_rows(
        "select key, value from state where service_name = 'Counter' and service_key = 'k1' ;",
        view_of(h.store),
    )
    assert rows == [
        {"key": "count", "value": "37"},
        {"key": "last", "value": "7b226174223a2278227d"},
    ]
    [binary] = json_rows("SELECT * FROM state WHERE service_key = 'k2'", view_of(h.store))
    assert binary["value"] == "ff" and "value_utf8" not in binary
    assert binary["key_length"] == 5 and binary["value_length"] == 1


def test_journal_rows(h: Harness) -> None:
    invocation_id = _retained(h, counter("k"))
    h.sdk(invocation_id, pm.SetStateCommandMessage(key=b"stage", value=b'"waiting"'))
    h.sdk(invocation_id, pm.RunCommandMessage(result_completion_id=1, name="reserve"))
    h.sdk(invocation_id, pm.SleepCommandMessage(wake_up_time=1_000, result_completion_id=2))
    rows = json_rows(
        f"""SELECT sj.index, sj.entry_type, sj.completed, sj.invoked_id, sj.invoked_target,
            sj.sleep_wakeup_at, sj.name, sj.promise_name, sj.version, sj.entry_json,
            sj.appended_at
        FROM sys_journal sj WHERE sj.id = '{id_str(invocation_id)}'
        ORDER BY index DESC LIMIT 100""",
        view_of(h.store),
    )
    assert [r["index"] for r in rows] == [3, 2, 1, 0]
    assert [r["entry_type"] for r in rows] == [
        "Command: Sleep",
        "Command: Run",
        "Command: SetState",
        "Command: Input",
    ]
    assert all(r["version"] == 2 and "completed" not in r for r in rows)
    assert rows[1]["name"] == "reserve"
    assert json.loads(rows[2]["entry_json"]) == {
        "Command": {"SetState": {"key": "stage", "value": list(b'"waiting"'), "name": ""}}
    }
    assert json.loads(rows[0]["entry_json"]) == {
        "Command": {"Sleep": {"wake_up_time": 1_000, "completion_id": 2, "name": ""}}
    }
    assert rows[3]["appended_at"].endswith("Z")


def test_inbox_locks_and_promises(h: Harness) -> None:
    holder = _retained(h, counter("busy"))
    queued = _retained(h, counter("busy"))
    run_id = workflow_invocation_id("Wf", "w").to_bytes()
    h.invoke(Target("Wf", "run", "w", "workflow", "workflow"), invocation_id=run_id)
    h.sdk(run_id, pm.GetPromiseCommandMessage(key="approval", result_completion_id=1))
    shared, _ = h.invoke(Target("Wf", "signal", "w", "workflow", "shared"))
    h.sdk(
        shared,
        pm.CompletePromiseCommandMessage(
            key="done", completion_value=b'"ok"', result_completion_id=1
        ),
    )
    services = [ServiceSchema(name="Wf", ty="Workflow", revision=1, deployment_id="dp_1")]
    view = view_of(h.store, services=services)
    inbox = json_rows("SELECT * FROM sys_inbox", view)
    assert [(r["service_key"], r["id"]) for r in inbox] == [("busy", id_str(queued))]
    assert "created_at" not in inbox[0]
    locks = json_rows("SELECT * FROM sys_keyed_service_status", view_of(h.store, services=services))
    # workflow keys have no lock record in the real server
    assert [(r["service_key"], r["invocation_id"]) for r in locks] == [("busy", id_str(holder))]
    promises = json_rows("SELECT * FROM sys_promise ORDER BY key", view_of(h.store))
    assert [(p["key"], p["completed"]) for p in promises] == [("approval", False), ("done", True)]
    assert promises[1]["completion_success_value_utf8"] == '"ok"'


def test_registry_tables() -> None:
    deployment = Deployment(
        id="dp_10UDT2TKPXUQpxbRXeXPJfj",
        uri="http://127.0.0.1:39080/",
        protocol_type="BidiStream",
        http_version="HTTP/2.0",
        created_at_ms=1795542414819,
        min_protocol_version=5,
        max_protocol_version=7,
        services={"Signup": 1, "Counter": 1, "Greeter": 1},
    )
    service = ServiceSchema(
        name="Counter", ty="VirtualObject", revision=1, deployment_id=deployment.id
    )
    view = empty_view()
    view.deployments = [deployment]
    view.services = [service]
    # the real server's answer to these queries (cli-capture.jsonl)
    table = arrow_table("SELECT * FROM sys_deployment", view)
    assert table.to_pylist()[0]["services"] == ["Counter", "Greeter", "Signup"]
    assert json_rows("SELECT name, ty, revision, public FROM sys_service", view) == [
        {"name": "Counter", "ty": "virtual_object", "revision": 1, "public": True}
    ]
    [row] = json_rows("SELECT * FROM sys_deployment", view)
    assert row == {
        "id": "dp_10UDT2TKPXUQpxbRXeXPJfj",
        "ty": "http",
        "endpoint": "http://127.0.0.1:39080/",
        "created_at": "2026-11-24T17:46:54.819Z",
        "min_service_protocol_version": 5,
        "max_service_protocol_version": 7,
        "services": ["Counter", "Greeter", "Signup"],
    }


def test_a_query_sees_its_snapshot_only(h: Harness) -> None:
    first = _retained(h, GREETER)
    opener = view_of(h.store)
    later: list[bytes] = []
    # writes landing after the snapshot, before the scans read
    opener.after_snapshot = lambda: later.append(_retained(h, GREETER))
    rows = json_rows(
        "SELECT s.id, count(j.index) AS entries FROM sys_invocation_status s "
        "JOIN sys_journal j ON j.id = s.id GROUP BY s.id",
        opener,
    )
    assert later and rows == [{"id": id_str(first), "entries": 1}]
    # every range the scans read was opened with the snapshot (statuses, journal, and
    # the active-invocation index a whole-partition status scan may read)
    assert len(opener.ranges) == 3


def test_sql_dialect_of_the_cli(h: Harness) -> None:
    _retained(h, GREETER)
    view = view_of(h.store)
    assert json_rows("SELECT COUNT(*) AS n FROM sys_invocation WHERE status == 'running' ;", view)
    rows = json_rows(
        "SELECT sj.index FROM sys_journal sj ORDER BY index DESC LIMIT 1", view_of(h.store)
    )
    assert rows == [{"index": 0}]
    # a table read twice in one plan (each scan reads again)
    joined = json_rows(
        "SELECT COUNT(*) AS n FROM sys_invocation a JOIN sys_invocation b ON a.id = b.id",
        view_of(h.store),
    )
    assert joined == [{"n": 1}]


@pytest.mark.parametrize(
    ("sql", "status", "message"),
    [
        ("CREATE TABLE x (a int)", 400, "DDL not supported: CreateMemoryTable"),
        ("DROP TABLE state", 400, "DDL not supported: DropTable"),
        (
            "INSERT INTO sys_service VALUES ('a', 1, true, 'service', 'dp')",
            400,
            "DML not supported",
        ),
        ("COPY (SELECT 1) TO '/tmp/x.csv'", 400, "DML not supported: COPY"),
        ("SET datafusion.execution.batch_size = 1", 400, "Statement not supported: SetVariable"),
        ("SELEC 1", 400, "SQL error: ParserError"),
        ("SELECT * FROM nope", 500, "table 'restate.public.nope' not found"),
        ("SELECT nope FROM sys_invocation", 500, "No field named nope. Valid fields are"),
        ("SELECT 1; SELECT 2", 500, "only supports a single SQL statement"),
        ("SELECT 1/0", 500, "Divide by zero"),
    ],
)
def test_refusals_and_errors(sql: str, status: int, message: str) -> None:
    with pytest.raises(QueryFailed) as failed:
        json_rows(sql, empty_view())
    assert failed.value.status == status
    assert failed.value.message.startswith("Datafusion error: ")
    assert message in failed.value.message
    assert "Did you mean" not in failed.value.message


def test_memory_limit_bounds_a_query(h: Harness) -> None:
    from restate_server.query.engine import QueryEngine

    for _ in range(20):
        _retained(h, GREETER)
    small = QueryEngine(1024, batch_rows=4)
    with pytest.raises(QueryFailed) as failed:
        json_rows("SELECT * FROM sys_invocation_status", view_of(h.store), small)
    assert "Resources exhausted" in failed.value.message


def test_engine_is_shared_and_reusable() -> None:
    assert engine() is engine()


def test_invoker_state_table(h: Harness) -> None:
    running = _retained(h, GREETER)
    other = _retained(h, counter("k"))
    invoker = {
        running: InvokerState(in_flight=True, retry_count=1, last_start_at=h.now),
        other: InvokerState(
            in_flight=False,
            retry_count=2,
            next_retry_at=h.now + 100,
            last_failure="[500 Internal] boom\nstack",
            last_failure_related_command_type="Command: Run",
        ),
    }
    rows = json_rows(
        "SELECT * FROM sys_invocation_state ORDER BY retry_count",
        view_of(h.store, partitions=4, invoker=invoker),
    )
    assert [r["id"] for r in rows] == [id_str(running), id_str(other)]
    assert rows[0]["in_flight"] is True and rows[1]["in_flight"] is False
    assert rows[1]["last_failure_related_command_type"] == "Command: Run"
    assert rows[1]["partition_key"] == int.from_bytes(other[:8], "big")
    [one] = json_rows(
        f"SELECT id FROM sys_invocation_state WHERE id = '{id_str(other)}'",
        view_of(h.store, partitions=4, invoker=invoker),
    )
    assert one == {"id": id_str(other)}


def test_rows_are_found_whatever_the_partition_count(h: Harness) -> None:
    ids = {id_str(_retained(h, counter(f"k{i}"))) for i in range(12)}
    for partitions in (1, 4, 24):
        opener = view_of(h.store, partitions=partitions)
        found = {r["id"] for r in json_rows("SELECT id FROM sys_invocation_status", opener)}
        assert found == ids
        # per partition its statuses and its active index, each opened with the snapshot
        assert len(opener.ranges) == 2 * partitions
        keyed = json_rows(
            "SELECT COUNT(*) AS n FROM sys_journal WHERE id IN "
            f"({', '.join(repr(i) for i in sorted(ids)[:3])})",
            view_of(h.store, partitions=partitions),
        )
        assert keyed == [{"n": 3}]
