"""The node's metrics when its partitions run in worker processes.

A scrape of the node address asks every connected worker for its families (the same
plain snapshots a single process merges from its components) and merges them: the
samples of equal labels add up, so the node reads as one process. A worker that is
restarting is missing from that scrape; its counters start again from zero, which
Prometheus reads as a counter reset of the sum.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import msgspec

from restate_server.metrics.families import Family, merge
from restate_server.workers.link import PeerLink, call_connected

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_S = 5.0
METHOD = "metrics"
_decoder = msgspec.msgpack.Decoder(list[Family])


class WorkerMetrics:
    """``NodeEndpoint``'s metrics: ``await families()`` over the workers' links."""

    def __init__(self, links: Callable[[], Sequence[PeerLink]]) -> None:
        self._links = links

    async def families(self) -> list[Family]:
        reports = []
        for link, answer in await call_connected(self._links(), METHOD, SCRAPE_TIMEOUT_S):
            if isinstance(answer, BaseException):
                log.warning("metrics of %s missing from this scrape: %s", link.name, answer)
                continue
            reports.append(_decoder.decode(answer))
        return merge(reports)
