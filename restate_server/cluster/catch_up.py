"""Bring a partition's local store up to the end of its log.

A new leader, or a node restarting after losing the unsynced tail of its store, applies
every record after the last sequence its store includes. Records are physical writes,
so applying one is one batch; the sequence is written in the same batch, so a crash in
the middle of catching up resumes where it stopped.
"""

from __future__ import annotations

from restate_server.cluster.log_committer import applied_sequence, log_sequence_key
from restate_server.cluster.log_records import CommitRecord
from restate_server.cluster.partition_log import PartitionLog
from restate_server.storage import keys
from restate_server.storage.db import Store
from restate_server.storage.transaction import Writes


async def catch_up(partition_log: PartitionLog, store: Store, until: int) -> int:
    """Apply the records up to sequence ``until``; the last sequence the store includes,
    which also becomes the log's expected position for the next append."""
    partition_id = partition_log.partition_id
    sequence_key = log_sequence_key(partition_id)
    applied = applied_sequence(store, partition_id)
    async for sequence, record in partition_log.records(applied, until):
        writes: Writes = dict(record.writes) if isinstance(record, CommitRecord) else {}
        writes[sequence_key] = keys.encode_u64(sequence)
        store.write(writes)
        applied = sequence
    partition_log.last_sequence = max(applied, until)
    return applied
