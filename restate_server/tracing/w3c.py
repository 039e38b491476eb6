"""W3C Trace Context: the ``traceparent`` header (version 00), parsed and written.

``traceparent: 00-<trace id: 32 hex>-<parent span id: 16 hex>-<flags: 2 hex>``. Parsing
follows the spec's rules for receivers: lowercase hex only, all-zero ids are invalid,
version ``ff`` is invalid, and a later version may carry more fields after the flags.
"""

from __future__ import annotations

from typing import NamedTuple

SAMPLED = 0x01
_HEX = frozenset("0123456789abcdef")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


class TraceParent(NamedTuple):
    trace_id: bytes  # 16 bytes
    span_id: bytes  # 8 bytes: the caller's span, parent of ours
    flags: int

    @property
    def sampled(self) -> bool:
        return bool(self.flags & SAMPLED)


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and _HEX.issuperset(text)


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The parsed header, or None when it is absent or invalid (then it is ignored)."""
    if not value:
        return None
    parts = value.strip().split("-")
    if len(parts) < 4:
        return None
    version, trace_id, span_id, flags = parts[:4]
    if not _is_hex(version, 2) or version == "ff":
        return None
    if version == "00" and len(parts) != 4:
        return None
    if not _is_hex(trace_id, 32) or trace_id == _ZERO_TRACE:
        return None
    if not _is_hex(span_id, 16) or span_id == _ZERO_SPAN:
        return None
    if not _is_hex(flags, 2):
        return None
    return TraceParent(bytes.fromhex(trace_id), bytes.fromhex(span_id), int(flags, 16))


def format_traceparent(trace_id: bytes, span_id: bytes, flags: int) -> str:
    """Version 00; only the sampled flag is passed on (as the real server does)."""
    return f"00-{trace_id.hex()}-{span_id.hex()}-{flags & SAMPLED:02x}"
