"""Retry schedule of failed attempts: exponential backoff with jitter, as the real server."""

from __future__ import annotations

import random

import msgspec


class RetryPolicy(msgspec.Struct, frozen=True):
    initial_interval_ms: int = 500
    exponentiation_factor: float = 2.0
    max_interval_ms: int = 60_000
    # including the first attempt; None = unlimited
    max_attempts: int | None = 70
    # "pause" keeps the invocation for a manual resume; "kill" fails it with the last error
    on_max_attempts: str = "pause"

    def delay_ms(self, retry: int, rng: random.Random | None = None) -> int | None:
        """Delay before retry number ``retry`` (1-based), or None when attempts ran out."""
        if self.max_attempts is not None and retry >= self.max_attempts:
            return None
        base = self.initial_interval_ms * (self.exponentiation_factor ** (retry - 1))
        base = min(base, self.max_interval_ms)
        jitter = max(3.0, base * 0.3 * (rng or random).random())
        return int(base + jitter)
