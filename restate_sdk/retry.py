"""Retry settings: the server-side policy of a service/handler, and ``ctx.run`` options."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")


@dataclass
class InvocationRetryPolicy:
    """How the server retries failed attempts (sent in discovery, manifest v4)."""

    initial_interval: timedelta | None = None
    exponentiation_factor: float | None = None
    max_interval: timedelta | None = None
    max_attempts: int | None = None
    on_max_attempts: Literal["pause", "kill"] | None = None


@dataclass
class RunOptions(Generic[T]):
    """Options of ``ctx.run_typed``: how often the side effect is retried.

    With no retry field set, failures follow the invocation's retry policy. When a
    bound is hit, ``run`` raises a :class:`TerminalError` carrying the last error.
    """

    serde: Any = None
    type_hint: Any = None
    max_attempts: int | None = None
    max_duration: timedelta | None = None
    initial_retry_interval: timedelta | None = None
    max_retry_interval: timedelta | None = None
    retry_interval_factor: float | None = None

    @property
    def has_retry_bounds(self) -> bool:
        return self.max_attempts is not None or self.max_duration is not None

    def next_delay(self, attempt: int) -> timedelta:
        """Delay before retry number ``attempt`` (1-based)."""
        initial = self.initial_retry_interval or timedelta(milliseconds=50)
        factor = self.retry_interval_factor or 2.0
        ceiling = self.max_retry_interval or timedelta(seconds=10)
        return min(initial * (factor ** max(0, attempt - 1)), ceiling)
