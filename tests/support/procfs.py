"""What /proc says about a process we started (Linux)."""

from __future__ import annotations


def rss_mb(pid: int) -> float:
    """Resident memory in MiB (NaN if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return float("nan")
