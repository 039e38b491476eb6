"""Durations as the admin API writes them ("friendly": ``1d 12h``, ``1m 30s``, ``500ms``).

Input is friendly (``90s``, ``5d 1h 30m 15s``, ``10hours``) or ISO 8601 (``PT1H30M``); the
CLI normalises it to the friendly form before sending it, as the real CLI does (``90s`` is
sent as ``1m 30s``; days are the largest unit).
"""

from __future__ import annotations

import re

_UNITS_MS: dict[str, float] = {}
for _names, _ms in (
    (("ns", "nsec", "nanos", "nanosecond", "nanoseconds"), 1e-6),
    (("us", "µs", "usec", "micros", "microsecond", "microseconds"), 1e-3),
    (("ms", "msec", "millis", "millisecond", "milliseconds"), 1.0),
    (("s", "sec", "secs", "second", "seconds"), 1000.0),
    (("m", "min", "mins", "minute", "minutes"), 60_000.0),
    (("h", "hr", "hrs", "hour", "hours"), 3_600_000.0),
    (("d", "day", "days"), 86_400_000.0),
    (("w", "week", "weeks"), 7 * 86_400_000.0),
):
    for _name in _names:
        _UNITS_MS[_name] = _ms

_FRIENDLY_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zµ]+)\s*,?", re.IGNORECASE)
_ISO = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)
_ISO_MS = {"w": 7 * 86_400_000.0, "d": 86_400_000.0, "h": 3_600_000.0, "m": 60_000.0, "s": 1000.0}


class DurationError(ValueError):
    pass


def parse_duration_ms(text: str) -> int:
    """Milliseconds of a friendly or ISO 8601 duration."""
    value = text.strip()
    if not value:
        raise DurationError("empty duration")
    if value[0] in "pP":
        match = _ISO.match(value)
        if match is None or value.upper() in ("P", "PT"):
            raise DurationError(f"invalid ISO 8601 duration {text!r}")
        total = sum(float(n) * _ISO_MS[u] for u, n in match.groupdict().items() if n is not None)
        return round(total)
    total = 0.0
    pos = 0
    while pos < len(value):
        match = _FRIENDLY_PART.match(value, pos)
        if match is None or match.end() == pos:
            raise DurationError(f"invalid duration {text!r} (e.g. 5d 1h 30m 15s, or PT1H)")
        unit = match.group(2).lower()
        if unit not in _UNITS_MS:
            raise DurationError(f"unknown unit {match.group(2)!r} in duration {text!r}")
        total += float(match.group(1)) * _UNITS_MS[unit]
        pos = match.end()
    return round(total)


def format_duration_ms(ms: int) -> str:
    """``1d 12h``, ``1m 30s``, ``500ms``; ``0s`` for zero."""
    if ms <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    if ms:
        parts.append(f"{ms}ms")
    return " ".join(parts)


def normalize_duration(text: str) -> str:
    """What the CLI sends for a duration the user typed."""
    return format_duration_ms(parse_duration_ms(text))
