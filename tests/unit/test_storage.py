"""Storage: read-your-writes transactions over in-flight batches, savepoints, key ranges."""

from __future__ import annotations

from restate_server.partition.table import PartitionTable
from restate_server.storage import keys
from restate_server.storage.db import Store
from restate_server.storage.transaction import Transaction


def test_transaction_reads_through_in_flight_layers(tmp_path) -> None:
    store = Store(str(tmp_path / "db"), sync_writes=False)
    store.write({b"a": b"1", b"b": b"1"})
    layer1 = {b"a": b"2", b"c": b"2"}
    layer2 = {b"a": None, b"d": b"3"}
    txn = Transaction(store, [layer1, layer2])
    assert txn.get(b"a") is None  # deleted by the newest layer
    assert txn.get(b"b") == b"1"
    assert txn.get(b"c") == b"2"
    txn.put(b"e", b"4")
    assert txn.scan_prefix(b"") == [(b"b", b"1"), (b"c", b"2"), (b"d", b"3"), (b"e", b"4")]
    store.close()


def test_savepoint_rollback_restores_only_the_failed_command(tmp_path) -> None:
    store = Store(str(tmp_path / "db"), sync_writes=False)
    txn = Transaction(store)
    txn.put(b"keep", b"1")
    txn.savepoint()
    txn.put(b"keep", b"2")
    txn.put(b"new", b"x")
    txn.delete(b"other")
    txn.rollback()
    assert txn.writes == {b"keep": b"1"}
    store.close()


def test_prefix_end_and_scans(tmp_path) -> None:
    assert keys.prefix_end(b"a\xff") == b"b"
    store = Store(str(tmp_path / "db"), sync_writes=False)
    prefix = keys.state_prefix(5, "Counter", "k")
    other = keys.state_prefix(5, "Counter", "k2")
    store.write({prefix + b"x": b"1", prefix + b"y": b"2", other + b"x": b"3"})
    assert [k[len(prefix) :] for k, _ in store.scan_prefix(prefix)] == [b"x", b"y"]
    store.close()


def test_partition_table_covers_the_key_space() -> None:
    for count in (1, 3, 24):
        table = PartitionTable(count)
        previous_end = 0
        for pid in range(count):
            start, end = table.range_of(pid)
            assert start == previous_end
            assert table.partition_of(start) == pid
            assert table.partition_of(end - 1) == pid
            previous_end = end
        assert previous_end == 1 << 64


def test_first_in_prefix_sees_in_flight_writes_and_deletes(tmp_path) -> None:
    store = Store(str(tmp_path / "db"), sync_writes=False)
    store.write({b"p1": b"a", b"p2": b"b", b"p3": b"c", b"q1": b"x"})
    txn = Transaction(store, [{b"p1": None}])
    assert txn.first_in_prefix(b"p") == (b"p2", b"b")
    txn.put(b"p0", b"new")
    assert txn.first_in_prefix(b"p") == (b"p0", b"new")
    txn.delete(b"p0")
    txn.delete(b"p2")
    assert txn.first_in_prefix(b"p") == (b"p3", b"c")
    txn.put(b"p3", b"changed")
    assert txn.first_in_prefix(b"p") == (b"p3", b"changed")
    assert txn.first_in_prefix(b"z") is None
    store.close()


def test_range_reads_match_a_plain_model_under_random_layers(tmp_path) -> None:
    """scan_range/first_in_range (bisecting sorted layer keys) against a dict model:
    random puts and deletes in the store, in in-flight layers and in the transaction,
    with savepoints rolled back, interleaved with range reads."""
    import random

    rng = random.Random(7)
    store = Store(str(tmp_path / "db"), sync_writes=False)
    key_space = [bytes([1, a, b]) for a in range(4) for b in range(12)]

    def random_writes(count: int) -> dict[bytes, bytes | None]:
        return {
            rng.choice(key_space): (None if rng.random() < 0.4 else bytes([rng.randrange(256)]))
            for _ in range(count)
        }

    for _round in range(30):
        model: dict[bytes, bytes] = {}
        base = random_writes(20)
        store.write(base)
        for key in key_space:
            value = store.get(key)
            if value is not None:
                model[key] = value
        layers = [random_writes(15) for _ in range(rng.randrange(4))]
        for layer in layers:  # oldest first
            for key, value in layer.items():
                if value is None:
                    model.pop(key, None)
                else:
                    model[key] = value
        txn = Transaction(store, layers)
        for _step in range(40):
            action = rng.random()
            key = rng.choice(key_space)
            if action < 0.3:
                value = bytes([rng.randrange(256)])
                txn.put(key, value)
                model[key] = value
            elif action < 0.45:
                txn.delete(key)
                model.pop(key, None)
            elif action < 0.55:
                txn.savepoint()
                txn.put(rng.choice(key_space), b"x")
                txn.delete(rng.choice(key_space))
                txn.rollback()
            else:
                start, end = sorted(rng.sample(key_space, 2))
                expected = sorted((k, v) for k, v in model.items() if start <= k < end)
                assert txn.scan_range(start, end) == expected
                assert txn.first_in_range(start, end) == (expected[0] if expected else None)
        store.write({k: None for k in key_space})
