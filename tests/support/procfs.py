"""What /proc says about a process we started (Linux)."""

from __future__ import annotations


def _status_mb(pid: int, field: str) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return float("nan")


def rss_mb(pid: int) -> float:
    """Resident memory in MiB (NaN if the process is gone)."""
    return _status_mb(pid, "VmRSS:")


def anon_rss_mb(pid: int) -> float:
    """Resident anonymous memory in MiB: what the process allocated (heap, stacks),
    without the pages of mapped files (shared libraries), which count in VmRSS as the
    process first touches them and depend on what else has read those files."""
    return _status_mb(pid, "RssAnon:")


def file_rss_mb(pid: int) -> float:
    """Resident pages of mapped files (shared libraries' code and data) in MiB."""
    return _status_mb(pid, "RssFile:")
