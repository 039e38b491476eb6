"""Errors of the protocol codec."""

from __future__ import annotations


class ProtocolError(Exception):
    """Bytes that do not form a valid message; ``code`` is the protocol error code (571)."""

    def __init__(self, message: str, code: int = 571) -> None:
        super().__init__(message)
        self.code = code


class InvalidIdError(ValueError):
    """An id string that does not parse; the message matches the real server's wording."""
