"""Errors of the HTTP/2 client."""

from __future__ import annotations


class H2Error(ConnectionError):
    """Base of the client's errors (a ConnectionError, so callers can treat it as I/O)."""


class H2ConnectionError(H2Error):
    """The connection failed or closed; every stream on it fails with this."""


class H2StreamReset(H2Error):
    """The peer (or we) reset the stream."""

    def __init__(self, message: str, error_code: int = 0) -> None:
        super().__init__(message)
        self.error_code = error_code


class H2ConnectTimeout(H2ConnectionError):
    pass


class H2StreamRefused(H2Error):
    """The peer did not process the stream (GOAWAY below its id, or REFUSED_STREAM):
    the request may be sent again, at once, on another connection (RFC 9113, 8.7)."""
