"""One partition's log in the engine: fenced appends and replay.

Every append names the sequence the writer believes is the last one of its partition
(``Nats-Expected-Last-Subject-Sequence``). The engine refuses it when anybody else has
appended since, which is how a deposed leader finds out: its first write after a new
leader's fence record fails with :class:`Fenced`, and nothing of it is stored.

An append whose acknowledgement is lost (the engine's leader died after replicating
it) is sent again with the same message id; the engine answers a repeat within its
duplicate window with the first one's sequence instead of storing it twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import Header
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError

from restate_server.cluster.engine import Engine
from restate_server.cluster.log_records import LogRecord, decode_record, encode_record

# the engine's codes for "the last sequence of that subject is not the one expected"
WRONG_LAST_SEQUENCE = (10071, 10164)
RETRY_PAUSE_S = 0.05


class Fenced(Exception):
    """Another writer appended to the partition's log: this writer is no longer its leader."""


class EngineUnavailable(Exception):
    """The engine did not take the append within the commit timeout (no quorum?)."""


class PartitionLog:
    def __init__(
        self,
        engine: Engine,
        partition_id: int,
        *,
        last_sequence: int,
        writer: str,
        commit_timeout_s: float = 10.0,
    ) -> None:
        self._engine = engine
        self.partition_id = partition_id
        self.subject = engine.names.partition_subject(partition_id)
        self._stream = engine.names.log_stream
        self._writer = writer
        self.last_sequence = last_sequence
        self.commit_timeout_s = commit_timeout_s

    @staticmethod
    async def tail(engine: Engine, partition_id: int) -> int:
        """The sequence of the partition's last record (0: none yet)."""
        subject = engine.names.partition_subject(partition_id)
        try:
            message = await engine.js.get_last_msg(engine.names.log_stream, subject)
        except NotFoundError:
            return 0
        return message.seq or 0

    async def append(self, record: LogRecord) -> int:
        """Store ``record`` after ``last_sequence``; its sequence once a quorum holds it."""
        expected = self.last_sequence
        headers = {
            Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: str(expected),
            # one id per (writer, position): a resend of this very append is a duplicate
            Header.MSG_ID.value: f"{self.partition_id}:{self._writer}:{expected}",
        }
        payload = encode_record(record)
        deadline = time.monotonic() + self.commit_timeout_s
        while True:
            try:
                ack = await self._engine.js.publish(
                    self.subject, payload, stream=self._stream, headers=dict(headers)
                )
                break
            except APIError as exc:
                if exc.err_code in WRONG_LAST_SEQUENCE:
                    raise Fenced(
                        f"partition {self.partition_id}: the log moved past {expected}"
                    ) from exc
                if exc.code is not None and exc.code < 500:
                    raise  # a request the engine will never take: a bug, not an outage
                error: Exception = exc
            except (TimeoutError, NatsTimeout, NoRespondersError, NoStreamResponseError) as exc:
                error = exc
            except NatsError as exc:  # the connection is being re-established
                error = exc
            if time.monotonic() + RETRY_PAUSE_S > deadline:
                raise EngineUnavailable(
                    f"partition {self.partition_id}: no quorum took the append within "
                    f"{self.commit_timeout_s:.0f} s ({type(error).__name__})"
                ) from error
            await asyncio.sleep(RETRY_PAUSE_S)
        self.last_sequence = ack.seq
        return ack.seq

    async def records(self, after: int, until: int) -> AsyncIterator[tuple[int, LogRecord]]:
        """The records with sequences in (``after``, ``until``], in order."""
        js = self._engine.js
        sequence = after + 1
        while sequence <= until:
            try:
                message = await js.get_msg(
                    self._stream, seq=sequence, subject=self.subject, next=True
                )
            except NotFoundError:
                return
            found = message.seq or 0
            if found > until:
                return
            yield found, decode_record(message.data or b"")
            sequence = found + 1
