"""A small filesystem for disk-full tests: a tmpfs mounted in a private mount namespace
that a sleeping holder process keeps alive, so it outlives server restarts and vanishes
with the holder (no mount is left behind on the machine, even if the test dies).

Programs run inside it through ``command()`` (nsenter); the test reaches its files from
outside through ``/proc/<holder>/root``. As root this needs only util-linux; without
root it uses a user namespace (as far as the kernel allows unprivileged ones).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.support.procs import ManagedProcess, ProcessError

_AS_ROOT = os.geteuid() == 0


class SmallDisk:
    def __init__(self, mountpoint: Path, size_mb: int, log_dir: Path) -> None:
        self.mountpoint = Path(mountpoint)
        self.size_mb = size_mb
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        user = [] if _AS_ROOT else ["--user", "--map-root-user"]
        script = 'mount -t tmpfs -o size="$1"m tmpfs "$2" && exec sleep 3600'
        self._holder = ManagedProcess(
            "small-disk",
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                *user,
                "sh",
                "-c",
                script,
                "sh",
                str(size_mb),
                str(self.mountpoint),
            ],
            log_dir=log_dir,
        )

    def start(self, timeout: float = 10.0) -> SmallDisk:
        self._holder.start()
        deadline = time.monotonic() + timeout
        while not os.path.ismount(self.outside(self.mountpoint)):
            if time.monotonic() > deadline or not self._holder.is_running():
                raise ProcessError(f"tmpfs not mounted: {self._holder.log_tail(20)}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._holder.kill9()

    @property
    def _pid(self) -> int:
        pid = self._holder.pid
        assert pid is not None, "the holder is not running"
        return pid

    def outside(self, path: Path) -> Path:
        """Where ``path`` (inside the namespace) is seen from the test's namespace."""
        return Path(f"/proc/{self._holder.pid}/root") / Path(path).relative_to("/")

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run in the namespace that sees the tmpfs."""
        user = [] if _AS_ROOT else ["--user", "--preserve-credentials"]
        return ["nsenter", f"--target={self._pid}", "--mount", *user, "--", *argv]

    def free_bytes(self) -> int:
        stat = os.statvfs(self.outside(self.mountpoint))
        return stat.f_bavail * stat.f_frsize

    @property
    def _filler(self) -> Path:
        return self.outside(self.mountpoint / ".filler")

    def fill(self, leave_bytes: int = 0) -> None:
        """Take all but ``leave_bytes`` of the free space (tmpfs allocates as written)."""
        chunk = b"\0" * (1 << 20)
        with open(self._filler, "ab") as filler:
            while self.free_bytes() > leave_bytes:
                size = min(len(chunk), self.free_bytes() - leave_bytes)
                try:
                    filler.write(chunk[: max(size, 4096)])
                    filler.flush()
                except OSError:
                    break

    def release(self) -> None:
        """Give the space taken by ``fill`` back."""
        self._filler.unlink(missing_ok=True)
