"""How many cores this process may use: its CPU affinity, and a container's CPU quota
(cgroup v2 ``cpu.max``), which the affinity does not show (``docker run --cpus 2`` on a
16-core host still lists 16 cores)."""

from __future__ import annotations

import math
import os

CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"


def quota_cores(cpu_max: str) -> int | None:
    """The cores a ``cpu.max`` line (``"<quota> <period>"`` or ``"max <period>"``)
    allows, rounded up; None without a quota."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def usable_cores(cpu_max_path: str = CGROUP_CPU_MAX) -> int:
    cores = len(os.sched_getaffinity(0))
    try:
        with open(cpu_max_path) as f:
            quota = quota_cores(f.read())
    except OSError:
        quota = None
    return min(cores, quota) if quota is not None else cores
