"""Durations as the real server reads and writes them.

Input accepts the "friendly" format (``1d``, ``1h 30m``, ``500ms``, ``10hours``,
``5d 1h 30m 15s``) and ISO 8601 (``PT1H``, ``P1DT2H``). Output uses the compact
friendly form the admin API shows (``1d``, ``1m 30s``, ``500ms``).
Internally every duration is an integer number of milliseconds.
"""

from __future__ import annotations

import re

_UNIT_MS: dict[str, int] = {}
for _names, _ms in (
    (("ms", "msec", "msecs", "millis", "millisecond", "milliseconds"), 1),
    (("s", "sec", "secs", "second", "seconds"), 1000),
    (("m", "min", "mins", "minute", "minutes"), 60_000),
    (("h", "hr", "hrs", "hour", "hours"), 3_600_000),
    (("d", "day", "days"), 86_400_000),
    (("w", "week", "weeks"), 7 * 86_400_000),
):
    for _name in _names:
        _UNIT_MS[_name] = _ms

_FRIENDLY_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*,?")
_ISO = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)


class DurationError(ValueError):
    """Raised for text that is neither a friendly nor an ISO 8601 duration."""


def parse_duration(text: str) -> int:
    """Parse a duration and return it in milliseconds."""
    value = text.strip()
    if not value:
        raise DurationError("empty duration")
    if value[0] in "Pp":
        return _parse_iso(value)
    if value.isdigit():
        # A bare number: the real server's config reads it as milliseconds? No: humantime
        # rejects it. Accept it as milliseconds, the unit every internal field uses.
        return int(value)
    total = 0.0
    pos = 0
    while pos < len(value):
        match = _FRIENDLY_PART.match(value, pos)
        if match is None or match.end() == pos:
            raise DurationError(f"invalid duration '{text}'")
        unit = _UNIT_MS.get(match.group(2).lower())
        if unit is None:
            raise DurationError(f"unknown time unit '{match.group(2)}' in '{text}'")
        total += float(match.group(1)) * unit
        pos = match.end()
    return round(total)


def _parse_iso(value: str) -> int:
    match = _ISO.match(value)
    if match is None or value.upper() in ("P", "PT") or value.upper().endswith("T"):
        raise DurationError(f"invalid ISO 8601 duration '{value}'")
    scale = {"w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}
    total = 0.0
    for group, unit in scale.items():
        part = match.group(group)
        if part is not None:
            total += float(part) * unit
    return round(total)


def format_duration(ms: int) -> str:
    """Compact friendly form: ``1d``, ``1h``, ``1m 30s``, ``500ms``, ``0s``."""
    if ms <= 0:
        return "0s"
    parts: list[str] = []
    for suffix, unit in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        amount, ms = divmod(ms, unit)
        if amount:
            parts.append(f"{amount}{suffix}")
    if ms:
        parts.append(f"{ms}ms")
    return " ".join(parts)


def format_iso_seconds(ms: int) -> str:
    """ISO 8601 in whole or fractional seconds, the form ``/query`` uses (``PT86400S``)."""
    if ms % 1000 == 0:
        return f"PT{ms // 1000}S"
    return f"PT{ms / 1000:g}S"
