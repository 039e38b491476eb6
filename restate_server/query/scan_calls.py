"""What the supervisor asks a worker while it runs a query, and what comes back.

A query opens one read view in every worker that leads a partition it scans
(``query_open``), pulls each partition scan page by page (``query_next``: a page is an
Arrow IPC stream of a few batches) and closes the views when it ends
(``query_close``). All three travel as fabric ``Call``s, msgpack-encoded.
"""

from __future__ import annotations

from typing import Any

import msgspec

from restate_server.query.hints import ScanHints
from restate_server.query.partition_scan import ScanRequest

OPEN = "query_open"
NEXT = "query_next"
CLOSE = "query_close"


class OpenView(msgspec.Struct, frozen=True):
    query: int
    # partition id -> the key ranges of it the query's scans read
    ranges: dict[int, list[tuple[bytes, bytes]]]


class NextPage(msgspec.Struct, frozen=True):
    query: int
    # one partition scan of the query; its first page starts it
    cursor: int
    table: str
    partition_id: int
    request: ScanRequest


class Page(msgspec.Struct, frozen=True):
    # an Arrow IPC stream (schema and batches); empty when the scan had no more rows
    stream: bytes
    done: bool


class CloseView(msgspec.Struct, frozen=True):
    query: int


_PORTABLE = (str, int, float, bool, bytes, type(None))


def portable(request: ScanRequest) -> ScanRequest:
    """``request`` with only the hints that arrive unchanged (msgpack turns other
    literals, such as decimals, into strings). A dropped hint only widens the scan, and
    the engine applies every predicate itself."""
    hints = request.hints

    def keep(values: dict[str, frozenset[Any]]) -> dict[str, frozenset[Any]]:
        return {
            column: found
            for column, found in values.items()
            if all(type(v) in _PORTABLE for v in found)
        }

    allowed, excluded = keep(hints.allowed), keep(hints.excluded)
    if len(allowed) == len(hints.allowed) and len(excluded) == len(hints.excluded):
        return request
    return msgspec.structs.replace(request, hints=ScanHints(allowed, excluded, hints.limit))


encode = msgspec.msgpack.encode
open_decoder = msgspec.msgpack.Decoder(OpenView)
next_decoder = msgspec.msgpack.Decoder(NextPage)
page_decoder = msgspec.msgpack.Decoder(Page)
close_decoder = msgspec.msgpack.Decoder(CloseView)
