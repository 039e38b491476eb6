"""How an attempt can fail: everything here is retried under the retry policy."""

from __future__ import annotations


class AttemptError(Exception):
    """A failed attempt, with what ``sys_invocation.last_failure`` should show."""

    def __init__(
        self,
        message: str,
        *,
        code: int = 500,
        retry_after_ms: int | None = None,
        reached_sdk: bool = True,
        related_command_index: int | None = None,
        related_command_name: str | None = None,
        related_command_type: int | None = None,
        stacktrace: str | None = None,
        behavior: int = 0,
        refused: bool = False,
        doc_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        # bounded: an SDK's next_retry_delay or a retry-after header can say anything, and
        # the retry time must stay a timestamp (/query's next_retry_at)
        self.retry_after_ms = (
            min(retry_after_ms, MAX_RETRY_DELAY_MS) if retry_after_ms is not None else None
        )
        # a failure before the SDK saw the attempt does not count as a retry of the code
        self.reached_sdk = reached_sdk
        self.related_command_index = related_command_index
        self.related_command_name = related_command_name
        self.related_command_type = related_command_type
        self.stacktrace = stacktrace
        # V7 ErrorMessage.behavior: 0 retry, 1 pause now, 2 fail the invocation now
        self.behavior = behavior
        # the deployment never processed the request (HTTP/2 refused stream): resend at once
        self.refused = refused
        # the real server's documented error code (``sys_invocation.last_failure_error_code``)
        self.doc_code = doc_code if doc_code is not None else sdk_doc_code(code)

    def drop_frames(self) -> AttemptError:
        """Forget the tracebacks of this error and of what caused it: kept as the task's
        last failure, they held the frames of the attempt and of the task's loop, and so
        the task itself, in a reference cycle (left to a collector that rarely runs)."""
        error: BaseException | None = self
        for _ in range(8):  # a chain is one or two long; bounded all the same
            if error is None:
                break
            error.__traceback__ = None
            error = error.__cause__ or error.__context__
        return self


MAX_RETRY_DELAY_MS = 365 * 24 * 3600 * 1000

# restate error codes the real server files failures under (RT0001 ...)
ABORT_TIMEOUT = "RT0001"
MESSAGE_TOO_LARGE = "RT0003"
SDK_ERROR = "RT0007"
UNREACHABLE = "RT0010"
PROTOCOL = "RT0012"
BAD_PROTOCOL_VERSION = "RT0015"
JOURNAL_MISMATCH = "RT0016"


def sdk_doc_code(code: int) -> str | None:
    """The code of a failure that carries only an invocation error code (an SDK's
    ErrorMessage; a journal mismatch or protocol violation from anywhere)."""
    if code == 570:
        return JOURNAL_MISMATCH
    if code == 571:
        return PROTOCOL
    return None


class AttemptAborted(Exception):
    """The partition stopped the attempt (kill, completion elsewhere, newer epoch)."""
