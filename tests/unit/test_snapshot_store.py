"""SnapshotStore against an in-memory stand-in of the engine's stream API, for the
failures a real engine does not produce on demand: acknowledgements lost after the
write went through."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from nats.js.api import Header
from nats.js.errors import APIError, NotFoundError

from restate_server.cluster.names import EngineNames, snapshot_epoch
from restate_server.cluster.snapshots import CHUNK_BYTES, SnapshotStore

PARTITION = 3


@dataclass
class _Stream:
    messages: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    last: int = 0
    ids: dict[str, int] = field(default_factory=dict)


class FakeJetStream:
    """Streams keyed by name, with expected-last-subject-sequence, message-id
    deduplication, purges by subject and sequence, and direct gets."""

    def __init__(self, names: EngineNames) -> None:
        self.streams = {names.snapshots_stream: _Stream(), names.log_stream: _Stream()}
        # (subject prefix, how many publishes): their write goes in, the answer is lost
        self.lose_answers: dict[str, int] = {}
        self.lost_answer: Exception = TimeoutError("the answer was lost")

    async def publish(
        self, subject: str, payload: bytes, stream: str, headers: dict[str, str] | None = None
    ) -> Any:
        s = self.streams[stream]
        headers = headers or {}
        msg_id = headers.get(Header.MSG_ID.value)
        if msg_id in s.ids:
            return SimpleNamespace(seq=s.ids[msg_id], duplicate=True)
        expected = headers.get(Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value)
        if expected is not None and int(expected) != self._last_of(s, subject):
            raise APIError(code=400, err_code=10071, description="wrong last sequence")
        s.last += 1
        s.messages[s.last] = (subject, payload)
        if msg_id:
            s.ids[msg_id] = s.last
        for prefix, left in list(self.lose_answers.items()):
            if subject.startswith(prefix) and left:
                self.lose_answers[prefix] = left - 1
                raise self.lost_answer
        return SimpleNamespace(seq=s.last, duplicate=False)

    def _last_of(self, s: _Stream, subject: str) -> int:
        return max((q for q, (subj, _) in s.messages.items() if subj == subject), default=0)

    async def get_last_msg(self, stream: str, subject: str) -> Any:
        s = self.streams[stream]
        seq = self._last_of(s, subject)
        if not seq:
            raise NotFoundError(code=404)
        return SimpleNamespace(seq=seq, subject=subject, data=s.messages[seq][1])

    async def get_msg(self, stream: str, seq: int, subject: str, next: bool) -> Any:
        s = self.streams[stream]
        for q in sorted(s.messages):
            if q >= seq and s.messages[q][0] == subject:
                return SimpleNamespace(seq=q, subject=subject, data=s.messages[q][1])
        raise NotFoundError(code=404)

    async def purge_stream(self, name: str, subject: str, seq: int | None = None) -> bool:
        s = self.streams[name]
        for q, (subj, _) in list(s.messages.items()):
            if fnmatch.fnmatchcase(subj, subject.replace(">", "*")) and (seq is None or q < seq):
                del s.messages[q]
        return True

    async def stream_info(self, name: str, subjects_filter: str) -> Any:
        s = self.streams[name]
        pattern = subjects_filter.replace(">", "*")
        subjects: dict[str, int] = {}
        for subj, _ in s.messages.values():
            if fnmatch.fnmatchcase(subj, pattern):
                subjects[subj] = subjects.get(subj, 0) + 1
        return SimpleNamespace(state=SimpleNamespace(subjects=subjects))


def _store() -> tuple[SnapshotStore, FakeJetStream]:
    names = EngineNames("unit")
    js = FakeJetStream(names)
    return SnapshotStore(SimpleNamespace(js=js, names=names)), js  # type: ignore[arg-type]


def test_a_lost_chunk_answer_resends_it_without_a_second_copy() -> None:
    store, js = _store()
    names = EngineNames("unit")
    js.lose_answers[names.snapshot_data_subject(PARTITION, 1, 10)] = 1
    blob = bytes(range(256)) * (CHUNK_BYTES // 128)  # two chunks

    async def run() -> bytes:
        assert await store.save(PARTITION, 1, 10, blob)
        found = await store.latest(PARTITION)
        assert found is not None and found[0].chunks == 2
        return await store.load(found[0])

    assert asyncio.run(run()) == blob


def test_a_head_whose_answer_was_lost_is_kept_with_its_chunks() -> None:
    store, js = _store()
    names = EngineNames("unit")
    js.lose_answers[names.snapshot_head_subject(PARTITION)] = 1

    async def run() -> None:
        assert await store.save(PARTITION, 1, 10, b"state at 10")
        found = await store.latest(PARTITION)
        assert found is not None and found[0].sequence == 10
        assert await store.load(found[0]) == b"state at 10"

    asyncio.run(run())


def test_a_save_that_fails_after_its_head_went_in_leaves_the_chunks() -> None:
    store, js = _store()
    names = EngineNames("unit")
    # the head is written, then the engine answers with an error the save gives up on
    js.lose_answers[names.snapshot_head_subject(PARTITION)] = 1
    js.lost_answer = APIError(code=503, err_code=10008, description="temporarily unavailable")

    async def run() -> None:
        with contextlib.suppress(APIError):
            await store.save(PARTITION, 1, 10, b"state at 10")
        found = await store.latest(PARTITION)
        assert found is not None
        assert await store.load(found[0]) == b"state at 10"  # its chunks are still there

    asyncio.run(run())


def test_a_chunk_subject_names_its_epoch_and_falls_under_the_partitions_wildcard() -> None:
    names = EngineNames("unit")
    subject = names.snapshot_data_subject(PARTITION, 12, 345)
    assert snapshot_epoch(subject) == 12
    assert fnmatch.fnmatchcase(subject, names.snapshot_data_subjects(PARTITION).replace(">", "*"))
    assert snapshot_epoch("restate.unit.snap.3.data.garbage") == -1
