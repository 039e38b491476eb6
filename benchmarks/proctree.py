"""A server's process tree from /proc: a supervisor with its worker children counts in
full (CPU of every process, resident memory of each)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from tests.support.procfs import rss_mb


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now (root first)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_cpu_s(root: int) -> float:
    """User + system seconds of the tree: each live process's own time plus that of its
    children already reaped (cutime/cstime), so a worker that exits mid-run still counts."""
    ticks = 0
    for pid in tree_pids(root):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss(root: int) -> list[dict[str, Any]]:
    """Resident memory of each process of the tree, in MiB."""
    out = []
    for pid in tree_pids(root):
        with contextlib.suppress(OSError):
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            out.append({"pid": pid, "comm": comm, "rss_mb": rss_mb(pid)})
    return out


def tree_rss_mb(root: int) -> float:
    """Resident memory of the whole tree, in MiB."""
    return sum(p["rss_mb"] for p in tree_rss(root))
