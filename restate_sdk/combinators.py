"""Waiting for several durable futures; the order of completion is replayed exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from restate_sdk.context import RestateDurableFuture


def _engine(futures: tuple[RestateDurableFuture[Any], ...]) -> Any:
    return futures[0]._engine


async def gather(*futures: RestateDurableFuture[Any]) -> list[RestateDurableFuture[Any]]:
    """Wait for all; returns the futures (await each one for its value or error)."""
    pending = [f for f in futures if not f.done()]
    while pending:
        done = await _engine(futures).wait_any(pending)
        pending = [f for f in pending if f is not done and not f.done()]
    return list(futures)


async def select(**futures: RestateDurableFuture[Any]) -> list[Any]:
    """Wait for the first to complete; returns ``[name, value]``."""
    items = tuple(futures.values())
    first = await _engine(items).wait_any(list(items))
    name = next(n for n, f in futures.items() if f is first)
    return [name, first.value()]


async def as_completed(
    *futures: RestateDurableFuture[Any],
) -> AsyncIterator[RestateDurableFuture[Any]]:
    """Yield the futures in the order they complete."""
    pending = list(futures)
    while pending:
        first = await _engine(futures).wait_any(pending)
        pending = [f for f in pending if f is not first]
        yield first


async def wait_completed(
    *futures: RestateDurableFuture[Any],
) -> tuple[list[RestateDurableFuture[Any]], list[RestateDurableFuture[Any]]]:
    """Wait until at least one completes: (completed, pending)."""
    await _engine(futures).wait_any(list(futures))
    done = [f for f in futures if f.done()]
    return done, [f for f in futures if not f.done()]
