"""Errors a handler raises or sees, and the SDK's internal control flow."""

from __future__ import annotations

from datetime import timedelta


class TerminalError(Exception):
    """Ends the invocation with this failure; never retried.

    Awaiting a failed call, awakeable, promise or ``run`` raises it too.
    """

    def __init__(
        self,
        message: str,
        status_code: int = 500,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        # None when there is none, as in the official SDK (also for a received failure)
        self.metadata = metadata


class RetryableError(Exception):
    """Fail this attempt and let the server retry it (optionally after ``retry_after``)."""

    def __init__(
        self, message: str, status_code: int = 500, retry_after: timedelta | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after


class SdkInternalBaseException(BaseException):
    """Unwinds a handler for SDK control flow; user code must not catch it."""


class SuspendedException(SdkInternalBaseException):
    """The attempt suspends: what the handler awaits is not there yet."""


class SdkInternalException(SdkInternalBaseException):
    """The attempt must end with a protocol error (e.g. a journal mismatch)."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        related_command_index: int | None = None,
        related_command_type: int | None = None,
        related_command_name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.related_command_index = related_command_index
        self.related_command_type = related_command_type
        self.related_command_name = related_command_name


def is_internal_exception(error: BaseException) -> bool:
    return isinstance(error, SdkInternalBaseException)


JOURNAL_MISMATCH = 570
PROTOCOL_VIOLATION = 571
CANCELLED_CODE = 409
