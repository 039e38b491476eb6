"""Timestamps and elapsed times for people (``--time-format human|iso8601|rfc2822``)."""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime, timedelta

TIME_FORMATS = ("human", "iso8601", "rfc2822")

_FRACTION = re.compile(r"\.(\d+)")


def parse_timestamp(text: str) -> datetime | None:
    """RFC 3339 from the admin API (nanoseconds) or ``/query`` (milliseconds, ``Z``)."""
    if not text:
        return None
    value = text.strip().replace("Z", "+00:00").replace(" ", "T", 1)
    # Python keeps microseconds: cut nanoseconds down to six digits
    value = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value, count=1)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _offset(dt: datetime) -> str:
    offset = dt.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def format_date(dt: datetime | None, style: str = "human") -> str:
    """A date as deployments show it: ``Wed 02 Dec 2026 00:01:20 +00:00``."""
    if dt is None:
        return "-"
    local = dt.astimezone()
    if style == "iso8601":
        return local.isoformat()
    if style == "rfc2822":
        return email.utils.format_datetime(local)
    return local.strftime("%a %d %b %Y %H:%M:%S ") + _offset(local)


def format_instant(dt: datetime | None, style: str = "human") -> str:
    """An instant as invocations show it: ``2026-12-02 00:01:26.208 +00:00``."""
    if dt is None:
        return "-"
    local = dt.astimezone()
    if style == "iso8601":
        return local.isoformat(timespec="milliseconds")
    if style == "rfc2822":
        return email.utils.format_datetime(local)
    return (
        local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d} " + _offset(local)
    )


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" + ("" if count == 1 else "s")


def human_span(span: timedelta) -> str:
    """``2 minutes, 29 seconds and 542 ms``; ``0 ms`` for nothing."""
    total_ms = max(0, int(span.total_seconds() * 1000))
    days, rest = divmod(total_ms, 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, ms = divmod(rest, 1000)
    parts = []
    if days:
        parts.append(_plural(days, "day"))
    if hours:
        parts.append(_plural(hours, "hour"))
    if minutes:
        parts.append(_plural(minutes, "minute"))
    if seconds:
        parts.append(_plural(seconds, "second"))
    if ms or not parts:
        parts.append(f"{ms} ms")
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def ago(dt: datetime | None, now: datetime | None = None) -> str:
    """``17 seconds ago``, ``3 minutes ago``; ``in 5 seconds`` for the future."""
    if dt is None:
        return "-"
    now = now or datetime.now(UTC)
    delta = now - dt
    future = delta.total_seconds() < 0
    seconds = abs(int(delta.total_seconds()))
    for size, unit in ((86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size:
            text = _plural(seconds // size, unit)
            break
    else:
        return "now"
    return f"in {text}" if future else f"{text} ago"


def since(dt: datetime | None, now: datetime | None = None) -> timedelta:
    if dt is None:
        return timedelta(0)
    return (now or datetime.now(UTC)) - dt
