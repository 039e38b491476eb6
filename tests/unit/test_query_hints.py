"""Scan hints read off DataFusion's optimized plans of the real CLI's statements."""

from __future__ import annotations

from restate_server.partition.table import PartitionTable
from restate_server.protocol.ids import InvocationId, partition_key_for_key
from restate_server.query.catalog import TABLES, partitions_to_scan, ranges_to_read
from restate_server.query.hints import ScanHints, merge_scans
from tests.unit.query_support import engine

ID = "inv_13LDyKBxySeZ30yZLODEII9Eqj5rfUJMu4"
OTHER = "inv_1dTsTd1TAKSz0iRyabEh9voFPwuijPWg8J"


def reads(sql: str):  # type: ignore[no-untyped-def]
    return engine().plan(sql)


def test_describe_reads_one_invocation() -> None:
    found = reads(f"SELECT id FROM sys_invocation inv WHERE inv.id = '{ID}' LIMIT 1")
    hints = found["sys_invocation"].hints
    assert hints.values("id") == {ID} and hints.limit == 1
    journal = reads(
        f"SELECT sj.index, sj.entry_type FROM sys_journal sj WHERE sj.id = '{ID}' "
        "ORDER BY index DESC LIMIT 100"
    )["sys_journal"]
    assert journal.hints.values("id") == {ID}
    # the only partition that owns it, and only its journal
    table = PartitionTable(24)
    pk = InvocationId.from_str(ID).partition_key
    assert partitions_to_scan(TABLES["sys_journal"], journal.hints, table) == [
        table.partition_of(pk)
    ]
    [(start, _end)] = ranges_to_read({"sys_journal": journal}, table)
    assert start == b"J" + InvocationId.from_str(ID).to_bytes()


def test_details_query_with_long_in_list_and_join() -> None:
    ids = ",".join(f"'{i}'" for i in [ID, OTHER, ID, OTHER, ID])
    found = reads(
        f"""SELECT inv.id, dp.id IS NOT NULL as pinned_deployment_exists
        FROM sys_invocation inv LEFT JOIN sys_deployment dp ON dp.id = inv.pinned_deployment_id
        WHERE status != 'completed' AND inv.id in ({ids})
        ORDER BY inv.created_at DESC, inv.id"""
    )
    hints = found["sys_invocation"].hints
    assert hints.values("id") == {ID, OTHER}
    assert hints.excluded["status"] == {"completed"}
    assert "sys_deployment" in found


def test_list_filters_and_the_count_query() -> None:
    hints = reads(
        "SELECT id FROM sys_invocation inv WHERE inv.target_service_name IN ('Counter') AND "
        "inv.target_service_key IN ('q1') AND status IN ('pending') "
        "ORDER BY inv.created_at DESC, inv.id LIMIT 100"
    )["sys_invocation"].hints
    assert hints.values("target_service_name") == {"Counter"}
    assert hints.values("target_service_key") == {"q1"}
    assert hints.values("status") == {"pending"}
    # no limit: the scan is sorted first
    assert hints.limit is None
    count = reads(
        "SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000) "
        "WHERE status != 'completed'"
    )["sys_invocation"]
    # the filter sits above the limit: it gives no hint, the limit does
    assert count.hints.limit == 50000 and not count.hints.excluded
    assert count.filter_columns == frozenset()


def test_state_of_one_key() -> None:
    found = reads(
        "select key, value from state where service_name = 'Counter' and service_key = 'k1' ;"
    )["state"]
    assert found.hints.values("service_name") == {"Counter"}
    assert found.hints.values("service_key") == {"k1"}
    table = PartitionTable(24)
    [partition] = partitions_to_scan(TABLES["state"], found.hints, table)
    assert partition == table.partition_of(partition_key_for_key("Counter", "k1"))
    [(start, _end)] = ranges_to_read({"state": found}, table)
    assert start.startswith(b"V") and start.endswith(b"Counter\x00\x02k1")


def test_predicates_it_does_not_understand_give_no_hint() -> None:
    found = reads(
        "SELECT id FROM sys_invocation WHERE lower(target_service_name) = 'x' "
        "OR id = 'inv_13LDyKBxySeZ30yZLODEII9Eqj5rfUJMu4'"
    )["sys_invocation"]
    assert found.hints.allowed == {} and found.hints.excluded == {}


def test_a_table_scanned_twice_gets_hints_true_for_both() -> None:
    found = reads(
        f"SELECT a.id FROM sys_invocation a JOIN sys_invocation b ON a.id = b.id "
        f"WHERE a.id = '{ID}' AND b.target_service_name = 'X'"
    )["sys_invocation"]
    assert found.scans == 2
    # the optimizer copies the id equality to both sides; the name only holds for one
    assert found.hints.values("id") == {ID}
    assert found.hints.values("target_service_name") is None


def test_filter_columns_cover_pushed_predicates() -> None:
    found = reads("SELECT id FROM sys_invocation_status WHERE status = 'invoked'")
    assert found["sys_invocation_status"].filter_columns == {"status"}


def test_merge_keeps_what_every_scan_allows() -> None:
    a = ScanHints({"id": frozenset({"x"})}, {"status": frozenset({"completed", "paused"})}, 5)
    b = ScanHints({"id": frozenset({"y"})}, {"status": frozenset({"completed"})}, None)
    merged = merge_scans([a, b])
    assert merged.values("id") == {"x", "y"}
    assert merged.excluded["status"] == {"completed"}
    assert merged.limit is None


def test_information_schema_reads_no_table() -> None:
    assert reads("SELECT COUNT(*) FROM information_schema.columns") == {}
