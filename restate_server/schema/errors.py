"""Errors of registration and schema changes, carrying what the admin API answers.

Each error knows its HTTP status and its Restate error code (``META0003``...) or None.
``str(error)`` is the bare message; the admin layer decorates it with the code the way
the real server does.
"""

from __future__ import annotations


class SchemaError(Exception):
    """A schema change the registry refuses (bad manifest content, breaking change...)."""

    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        if status is not None:
            self.status = status


class NotFoundError(SchemaError):
    """``not found in the schema registry: <what>``, 404 like the real server."""

    status = 404

    def __init__(self, what: str):
        super().__init__(f"not found in the schema registry: {what}")


class DiscoveryError(Exception):
    """Discovery of an endpoint failed; the admin API answers 500.

    ``retryable`` follows the real server: connection problems and 408/429/5xx statuses
    are retried a few times, a bad answer is not.
    """

    status = 500

    def __init__(self, message: str, *, code: str | None = "META0003", retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable


class TransportError(Exception):
    """Raised by an ``http_get`` when the request could not be made.

    ``str()`` is the detail the real server prints after ``error when calling '<uri>': ``.
    """

    def __init__(self, detail: str, *, code: str = "META0003", retryable: bool = True):
        super().__init__(detail)
        self.code = code
        self.retryable = retryable
