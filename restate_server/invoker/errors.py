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
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retry_after_ms = retry_after_ms
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


class AttemptAborted(Exception):
    """The partition stopped the attempt (kill, completion elsewhere, newer epoch)."""
