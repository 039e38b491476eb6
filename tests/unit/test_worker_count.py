"""How many worker processes the server runs: ``[py.worker] processes`` and its default,
chosen from the cores the process may use (affinity and a container's CPU quota)."""

from __future__ import annotations

import os
from pathlib import Path

from restate_server.config.cores import quota_cores, usable_cores
from restate_server.config.model import WorkerProcessOptions


def test_the_default_is_one_process_on_small_machines_and_a_worker_per_core_above() -> None:
    auto = WorkerProcessOptions()
    assert auto.processes == 0
    assert [auto.resolved_processes(24, cores) for cores in (1, 2, 3)] == [1, 1, 1]
    assert [auto.resolved_processes(24, cores) for cores in (4, 8, 16)] == [4, 8, 16]
    # never more workers than partitions
    assert auto.resolved_processes(24, 64) == 24
    assert auto.resolved_processes(2, 8) == 2


def test_an_explicit_count_wins() -> None:
    assert WorkerProcessOptions(processes=1).resolved_processes(24, 16) == 1
    assert WorkerProcessOptions(processes=3).resolved_processes(24, 2) == 3
    assert WorkerProcessOptions(processes=40).resolved_processes(24, 2) == 24


def test_a_container_quota_limits_the_cores() -> None:
    assert quota_cores("max 100000") is None
    assert quota_cores("200000 100000") == 2
    assert quota_cores("150000 100000") == 2  # 1.5 cores: two processes can use them
    assert quota_cores("50000 100000") == 1
    assert quota_cores("garbage") is None


def test_usable_cores_reads_the_quota(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")
    assert usable_cores(str(cpu_max)) == 1
    cpu_max.write_text("max 100000\n")
    assert usable_cores(str(cpu_max)) == affinity
    assert usable_cores(str(tmp_path / "missing")) == affinity
