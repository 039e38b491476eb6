"""What an attempt replays: the committed journal and (eager) state of an invocation.

The invoker only reads storage; it sees what the partition has committed.
Entries committed later reach it as notifications carrying their index.
"""

from __future__ import annotations

from typing import NamedTuple

from restate_server.storage import keys
from restate_server.storage.db import Store
from restate_server.storage.records import JournalEntry, Target, decode_journal_entry


class AttemptInput(NamedTuple):
    entries: list[JournalEntry]
    state: list[tuple[bytes, bytes]] | None  # None: not sent eagerly (partial state)


def read_journal(store: Store, invocation_id: bytes) -> list[JournalEntry]:
    return [
        decode_journal_entry(raw)
        for _, raw in store.scan_prefix(keys.journal_prefix(invocation_id))
    ]


def read_state(store: Store, invocation_id: bytes, target: Target) -> list[tuple[bytes, bytes]]:
    assert target.key is not None
    prefix = keys.state_prefix(int.from_bytes(invocation_id[:8], "big"), target.service, target.key)
    size = len(prefix)
    return [(key[size:], value) for key, value in store.scan_prefix(prefix)]


def read_attempt_input(
    store: Store,
    invocation_id: bytes,
    target: Target,
    eager_state: bool,
    journal: list[JournalEntry] | None = None,
) -> AttemptInput:
    entries = journal if journal is not None else read_journal(store, invocation_id)
    state = (
        read_state(store, invocation_id, target) if eager_state and target.key is not None else None
    )
    return AttemptInput(entries, state)
