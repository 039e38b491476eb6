"""Value kinds of configuration fields: how each is read and how it is written back.

Values arrive typed from the TOML file, or as text from environment variables and
command-line flags. Text is wrapped in :class:`Text` so that, like the real server
(figment), ``RESTATE_DEFAULT_NUM_PARTITIONS=8`` reads as the integer 8 while a TOML
``node-name = 123`` is a type error. A field's kind is attached with ``Annotated``:
``Annotated[int, Duration()]``. Converters raise ``ValueError`` with a short reason;
the loader adds the key path and where the value came from.
"""

from __future__ import annotations

import ipaddress
import math
import re
from urllib.parse import urlsplit, urlunsplit

from restate_server.durations import DurationError, format_duration, parse_duration


class Text(str):
    """A value given as text (environment variable, CLI flag) rather than typed TOML."""


_INT_TEXT = re.compile(r"^[+-]?\d+$")
_FLOAT_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _describe(value: object) -> str:
    if isinstance(value, Text):
        return f"'{value}'"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string '{value}'"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def to_int(value: object, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, Text) and _INT_TEXT.match(value.strip()):
        number = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise ValueError(f"expected an integer, found {_describe(value)}")
    if minimum is not None and number < minimum:
        raise ValueError(f"must be at least {minimum}, found {number}")
    if maximum is not None and number > maximum:
        raise ValueError(f"must be at most {maximum}, found {number}")
    return number


def to_float(value: object) -> float:
    if isinstance(value, Text) and _FLOAT_TEXT.match(value.strip()):
        return float(value.strip())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"expected a number, found {_describe(value)}")


def to_bool(value: object) -> bool:
    # Exactly "true"/"false" from text: the real server rejects "yes", "1" and "True".
    if isinstance(value, Text) and value.strip() in ("true", "false"):
        return value.strip() == "true"
    if isinstance(value, bool):
        return value
    raise ValueError(f"expected a boolean (true or false), found {_describe(value)}")


def to_str(value: object) -> str:
    if isinstance(value, str):
        return str(value)
    raise ValueError(f"expected a string, found {_describe(value)}")


class Kind:
    """Base of the field kinds; plain ``int``/``float``/``bool``/``str`` need none."""

    def convert(self, value: object) -> object:
        raise NotImplementedError

    def encode(self, value: object) -> object | None:
        """The TOML value to dump, or None to leave the key out."""
        return value


class Duration(Kind):
    """Friendly (``1m 30s``) or ISO 8601 (``PT90S``) text, held as milliseconds."""

    def __init__(self, *, nonzero: bool = False) -> None:
        self.nonzero = nonzero

    def convert(self, value: object) -> int:
        if not isinstance(value, str):
            raise ValueError(
                f"expected a duration string such as '10s', '1m 30s' or 'PT10S', "
                f"found {_describe(value)}"
            )
        text = value.strip()
        if text.lstrip("+-").isdigit():
            # The real server rejects unit-less numbers; guessing a unit would hide mistakes.
            raise ValueError(f"duration '{text}' needs a unit, e.g. '{text}ms' or '{text}s'")
        try:
            ms = parse_duration(text)
        except DurationError as exc:
            raise ValueError(str(exc)) from None
        if self.nonzero and ms == 0:
            raise ValueError("duration cannot be zero")
        return ms

    def encode(self, value: object) -> object | None:
        return None if value is None else format_duration(int(value))  # type: ignore[call-overload]


_BYTE_UNITS: dict[str, int] = {"": 1, "b": 1}
for _exp, _letter in enumerate("kmgtpe", start=1):
    _BYTE_UNITS[_letter] = _BYTE_UNITS[_letter + "b"] = 1000**_exp
    _BYTE_UNITS[_letter + "i"] = _BYTE_UNITS[_letter + "ib"] = 1024**_exp
_BYTES_TEXT = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$")


def parse_byte_size(text: str) -> int:
    """``32 MiB``, ``10MB`` (decimal), ``1.5 GiB``, ``2048``: the real server's byte counts."""
    match = _BYTES_TEXT.match(text.strip())
    unit = _BYTE_UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(f"expected a byte count such as '32 MiB' or '10MB', found '{text}'")
    return round(float(match.group(1)) * unit)


def format_byte_size(size: int) -> str:
    """Binary units with one decimal, as the real server dumps them (``32.0 MiB``)."""
    if size < 1024:
        return f"{size} B"
    exp = min(int(math.log(size, 1024)), 6)
    return f"{size / 1024**exp:.1f} {'KMGTPE'[exp - 1]}iB"


class ByteSize(Kind):
    """A non-zero byte count, held as an int."""

    def convert(self, value: object) -> int:
        if isinstance(value, str) and not value.strip().isdigit():
            size = parse_byte_size(value)
        else:
            size = to_int(value)
        if size <= 0:
            raise ValueError("byte count must be greater than zero")
        return size

    def encode(self, value: object) -> object | None:
        return None if value is None else format_byte_size(int(value))  # type: ignore[call-overload]


class IntRange(Kind):
    def __init__(self, minimum: int, maximum: int | None = None) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def convert(self, value: object) -> int:
        return to_int(value, self.minimum, self.maximum)


class PositiveFloat(Kind):
    def convert(self, value: object) -> float:
        number = to_float(value)
        if not math.isfinite(number) or number <= 0:
            raise ValueError(f"must be a number greater than zero, found {number}")
        return number


class Choice(Kind):
    def __init__(self, *choices: str) -> None:
        self.choices = choices

    def convert(self, value: object) -> str:
        text = to_str(value).strip()
        if text not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}; found '{text}'")
        return text


class MaxAttempts(Kind):
    """A positive attempt count, or ``unlimited`` (alias ``infinite``) held as None."""

    def convert(self, value: object) -> int | None:
        if isinstance(value, str) and value.strip() in ("unlimited", "infinite"):
            return None
        if isinstance(value, str) and not isinstance(value, Text):
            raise ValueError(f"expected a positive integer or 'unlimited', found '{value}'")
        try:
            return to_int(value, minimum=1)
        except ValueError:
            raise ValueError(
                f"expected a positive integer or 'unlimited', found {_describe(value)}"
            ) from None

    def encode(self, value: object) -> object | None:
        return "unlimited" if value is None else value


class IpAddress(Kind):
    def convert(self, value: object) -> str:
        text = to_str(value).strip()
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            raise ValueError(f"expected an IP address, found '{text}'") from None


def parse_bind_address(text: str, default_port: int) -> tuple[str, int]:
    """``0.0.0.0:8080``, ``[::]:8080`` or a bare IP (default port). Host names are
    rejected, as by the real server, which binds only to IP literals."""
    value = text.strip()
    try:
        return str(ipaddress.ip_address(value)), default_port
    except ValueError:
        pass
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else None
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            port_text = None
    try:
        ip = ipaddress.ip_address(host)
        if port_text is None or not port_text.isdigit() or int(port_text) > 65535:
            raise ValueError
        if not value.startswith("[") and ip.version == 6:
            raise ValueError  # an IPv6 address with a port needs brackets
    except ValueError:
        raise ValueError(
            f"expected an IP address with an optional port, such as '0.0.0.0:{default_port}' "
            f"or '[::]:{default_port}', found '{value}'"
        ) from None
    return str(ip), int(port_text)


def format_bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class BindAddress(Kind):
    """Held in canonical ``host:port`` text (``[v6]:port``)."""

    def __init__(self, default_port: int) -> None:
        self.default_port = default_port

    def convert(self, value: object) -> str:
        return format_bind_address(*parse_bind_address(to_str(value), self.default_port))


def normalize_advertised_address(text: str, default_port: int) -> str:
    """An externally reachable base URL: ``http://host:port/``. Like the real server, a
    missing scheme means http with the service's default port, a missing host means
    127.0.0.1, and ``unix:<path>`` is kept as is."""
    value = text.strip()
    if not value:
        raise ValueError("address cannot be empty")
    if value.startswith("unix:"):
        return value
    has_scheme = "://" in value
    parts = urlsplit(value if has_scheme else f"http://{value}")
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"unsupported URI scheme '{parts.scheme}' in '{value}'")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"invalid port in '{value}'") from None
    if not parts.netloc:
        raise ValueError(f"'{value}' has no host or port")
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    if port is None and not has_scheme:
        port = default_port
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


class AdvertisedAddress(Kind):
    def __init__(self, default_port: int) -> None:
        self.default_port = default_port

    def convert(self, value: object) -> str:
        return normalize_advertised_address(to_str(value), self.default_port)


def convert_plain(tp: type, value: object) -> object:
    """Fields without a kind: ``str``, ``int``, ``float``, ``bool``."""
    if tp is bool:
        return to_bool(value)
    if tp is int:
        return to_int(value)
    if tp is float:
        return to_float(value)
    if tp is str:
        return to_str(value)
    raise TypeError(f"no converter for {tp!r}")  # a schema mistake, not a user error
