"""Whether the workers' stores can take new work, as the supervisor's admin API sees it.

A single server's admin API reads its committer's ``unavailable`` (set while the disk is
full) before every write. The supervisor has no partition store of its own, so before
an admin write it asks every connected worker (``storage`` call): admin writes are rare
and one round trip per worker is cheap next to a deployment's discovery.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from restate_server.workers.link import PeerLink, call_connected

METHOD = "storage"
ASK_TIMEOUT_S = 5.0


class WorkerStorage:
    """``AdminState.storage`` of the supervisor: ``unavailable`` as of the last refresh."""

    def __init__(self, links: Callable[[], Sequence[PeerLink]]) -> None:
        self._links = links
        self.unavailable: str | None = None

    async def refresh(self) -> None:
        answers = await call_connected(self._links(), METHOD, ASK_TIMEOUT_S)
        # a worker that cannot answer is restarting: its store is no reason to refuse
        reasons = [a.decode() for _, a in answers if isinstance(a, bytes) and a]
        self.unavailable = reasons[0] if reasons else None
