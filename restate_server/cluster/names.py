"""What a cluster's objects are called in the engine.

Every name carries the cluster name, so that several clusters can share one engine.
JetStream names allow letters, digits, ``-`` and ``_``; other characters of a cluster
name become ``_``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class EngineNames:
    cluster_name: str

    @property
    def _safe(self) -> str:
        return _UNSAFE.sub("_", self.cluster_name)

    @property
    def log_stream(self) -> str:
        """The stream holding every partition's log, a subject per partition."""
        return f"restate_{self._safe}_log"

    @property
    def log_subjects(self) -> str:
        return f"restate.{self._safe}.p.*"

    def partition_subject(self, partition_id: int) -> str:
        return f"restate.{self._safe}.p.{partition_id}"

    @property
    def snapshots_stream(self) -> str:
        """The stream holding partition snapshots: chunks, and a head naming the latest."""
        return f"restate_{self._safe}_snapshots"

    @property
    def snapshot_subjects(self) -> str:
        return f"restate.{self._safe}.snap.>"

    def snapshot_head_subject(self, partition_id: int) -> str:
        return f"restate.{self._safe}.snap.{partition_id}.head"

    def snapshot_data_subject(self, partition_id: int, epoch: int, sequence: int) -> str:
        """One snapshot's chunks: its own subject, purged as a whole once superseded."""
        return f"{self.snapshot_data_subjects(partition_id)[:-1]}e{epoch}s{sequence}"

    def snapshot_data_subjects(self, partition_id: int) -> str:
        """Every chunk subject of the partition's snapshots (a wildcard)."""
        return f"restate.{self._safe}.snap.{partition_id}.data.>"

    @property
    def leases_bucket(self) -> str:
        return f"restate_{self._safe}_leases"

    @property
    def nodes_bucket(self) -> str:
        return f"restate_{self._safe}_nodes"

    @property
    def registry_bucket(self) -> str:
        return f"restate_{self._safe}_registry"


def lease_key(partition_id: int) -> str:
    return f"p{partition_id}"


def snapshot_epoch(data_subject: str) -> int:
    """The leader epoch a chunk subject (``snapshot_data_subject``) was written in."""
    token = data_subject.rsplit(".", 1)[-1]
    try:
        return int(token[1:].split("s", 1)[0])
    except ValueError:
        return -1
