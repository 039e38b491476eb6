"""Errors the CLI reports as one line on stderr, with a non-zero exit code."""

from __future__ import annotations


class CliError(Exception):
    """Anything the user should see as ``Error: <message>``."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unreachable(CliError):
    """The server did not answer (refused, timed out, bad address)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"Unable to connect to the Restate server '{url}'. Please make sure that it is "
            f"running and reachable. ({reason})"
        )
        self.url = url
        self.reason = reason


class ApiError(CliError):
    """The server answered with an error status; ``message`` is the server's own."""

    def __init__(self, status: int, reason: str, message: str, url: str) -> None:
        detail = f"HTTP {status} {reason}".rstrip()
        text = f"{message} ({detail} at {url})" if message else f"{detail} at {url}"
        super().__init__(text)
        self.status = status
        self.reason = reason
        self.server_message = message
        self.url = url
