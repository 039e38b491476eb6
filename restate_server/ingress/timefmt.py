"""Timestamp formats of the ingress answers."""

from __future__ import annotations

import datetime as dt


def rfc3339_nanos(ms: int) -> str:
    """``2026-11-24T17:47:06.095000000Z`` (executionTime of delayed sends)."""
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}000000Z"


def rfc3339_millis_offset(ms: int) -> str:
    """``2026-11-25T17:45:28.481+00:00`` (the idempotency-expires header)."""
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+00:00"
