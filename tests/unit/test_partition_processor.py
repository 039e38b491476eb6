"""The processor performs actions only after the batch that produced them is durable."""

from __future__ import annotations

import asyncio
import threading

from restate_server.partition.actions import Action, InvokeAttempt
from restate_server.partition.commands import InvocationRequest, Invoke
from restate_server.partition.processor import PartitionProcessor
from restate_server.partition.state_machine import StateMachine
from restate_server.partition.table import PartitionTable
from restate_server.storage import keys
from restate_server.storage.committer import Committer
from restate_server.storage.db import Store
from restate_server.storage.transaction import Writes
from tests.unit.partition_harness import GREETER


class GatedStore(Store):
    """A store whose writes block until the test opens the gate."""

    def __init__(self, path: str) -> None:
        super().__init__(path, sync_writes=False)
        self.gate = threading.Event()
        self.writes_started = threading.Event()

    def write(self, writes: Writes) -> None:
        self.writes_started.set()
        self.gate.wait(5)
        super().write(writes)

    def write_many(self, batches: list[Writes]) -> None:
        self.writes_started.set()
        self.gate.wait(5)
        super().write_many(batches)


def _request(n: int) -> Invoke:
    invocation_id = n.to_bytes(8, "big") + bytes(16)
    return Invoke(InvocationRequest(invocation_id=invocation_id, target=GREETER, argument=b""))


async def test_actions_wait_for_durability_and_keep_order(tmp_path) -> None:
    store = GatedStore(str(tmp_path / "db"))
    loop = asyncio.get_running_loop()
    committer = Committer(store, loop)
    performed: list[Action] = []
    processor = PartitionProcessor(
        0, (0, 1 << 64), store, committer, StateMachine(0, PartitionTable(1)), performed.extend
    )
    store.gate.set()
    await processor.start()
    await asyncio.sleep(0.05)
    store.gate.clear()
    store.writes_started.clear()

    for n in range(1, 6):
        processor.submit(_request(n))
    await asyncio.to_thread(store.writes_started.wait, 5)
    await asyncio.sleep(0.05)
    assert performed == []  # nothing happens before the write is durable
    # the in-flight batch is visible to reads of later groups, but not yet in the store
    first_id = (1).to_bytes(8, "big") + bytes(16)
    assert store.get(keys.invocation_status(first_id)) is None

    store.gate.set()
    for _ in range(100):
        if len(performed) == 5:
            break
        await asyncio.sleep(0.01)
    started = [a.invocation_id[:8] for a in performed if isinstance(a, InvokeAttempt)]
    assert started == [n.to_bytes(8, "big") for n in range(1, 6)]
    assert store.get(keys.invocation_status(first_id)) is not None

    await processor.stop()
    committer.close()
    store.close()


async def test_submit_and_wait_resolves_after_commit(tmp_path) -> None:
    store = Store(str(tmp_path / "db"), sync_writes=False)
    committer = Committer(store, asyncio.get_running_loop())
    processor = PartitionProcessor(
        0, (0, 1 << 64), store, committer, StateMachine(0, PartitionTable(1)), lambda _: None
    )
    await processor.start()
    await asyncio.wait_for(processor.submit_and_wait(_request(7)), 5)
    assert store.get(keys.invocation_status((7).to_bytes(8, "big") + bytes(16))) is not None
    await processor.stop()
    committer.close()
    store.close()
