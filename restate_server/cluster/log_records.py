"""What a partition's log holds: commit records of its leader, and fences.

A record is physical: the RocksDB writes (puts, and deletes as ``None``) of one commit
group, as the partition processor hands them to the committer. Replaying records in
order rebuilds the partition's state without running the state machine again, so
replay needs no clock, no random ids and no determinism of the code that made them.
"""

from __future__ import annotations

import msgspec

Writes = dict[bytes, bytes | None]


class CommitRecord(msgspec.Struct, tag="w", array_like=True):
    """The writes of one commit group, written by the leader of ``epoch``."""

    epoch: int
    writes: Writes


class FenceRecord(msgspec.Struct, tag="f", array_like=True):
    """A new leader of ``epoch`` took the partition: no earlier leader may write after."""

    epoch: int
    node: str


LogRecord = CommitRecord | FenceRecord

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(LogRecord)


def encode_record(record: LogRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(data: bytes) -> LogRecord:
    return _decoder.decode(data)
