"""A child process owned by a test: log file, readiness waits, stop / kill -9 / restart.

Every process is started in its own session (so its own process group, pgid == pid), and
only that group is ever signalled: children it forks (hypercorn workers, the real server's
helpers) go down with it, and nothing else on the machine is touched.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

DEFAULT_STOP_GRACE = 5.0
_POLL_INTERVAL = 0.05

# Live processes, so an interpreter exit (e.g. a test run aborted with Ctrl-C) kills them.
_live: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()


class ProcessError(RuntimeError):
    """A managed process failed to start, exited early or did not become ready in time."""


def _kill_live_at_exit() -> None:
    for proc in list(_live):
        with contextlib.suppress(Exception):
            proc.kill9()


atexit.register(_kill_live_at_exit)


def _die_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGKILL it when the test runner dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except Exception:
        pass


class ManagedProcess:
    """One child process, restartable with the same argv/env/cwd.

    Output (stdout and stderr) goes to ``log_path``; each start appends a banner line, so
    one file shows the whole life of the process across restarts.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        inherit_env: bool = True,
        stop_grace: float = DEFAULT_STOP_GRACE,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.stop_signal = stop_signal
        self.argv = [str(a) for a in argv]
        self.cwd = Path(cwd) if cwd is not None else None
        self.stop_grace = stop_grace
        self.log_path = Path(log_dir) / f"{name}.log"
        base = dict(os.environ) if inherit_env else {}
        if env:
            base.update(env)
        self.env = base
        self.starts = 0
        self._popen: subprocess.Popen[bytes] | None = None

    # ---- state -------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> ManagedProcess:
        if self.is_running():
            raise ProcessError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            banner = f"\n===== start #{self.starts} of {self.name}: {' '.join(self.argv)}\n"
            log.write(banner.encode())
            log.flush()
            # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so only use it
            # from the main thread (pytest's), whose end means the test run is over.
            in_main_thread = threading.current_thread() is threading.main_thread()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent if in_main_thread else None,
            )
        _live.add(self)
        return self

    def _signal_group(self, sig: signal.Signals) -> None:
        """Send ``sig`` to this process's own group (pgid == pid, see start_new_session)."""
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)

    def stop(self, grace: float | None = None) -> int | None:
        """SIGTERM (or ``stop_signal``) the group, SIGKILL it after ``grace`` seconds.

        Returns the exit code.
        """
        if self._popen is None:
            return None
        grace = self.stop_grace if grace is None else grace
        if self._popen.poll() is None:
            self._signal_group(self.stop_signal)
            try:
                self._popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                sig = self.stop_signal.name
                self._note(f"did not stop within {grace:.1f}s after {sig}; sending SIGKILL")
                self._signal_group(signal.SIGKILL)
                self._popen.wait(timeout=10)
        # Leftover members of the group (children of a leader that already exited).
        self._signal_group(signal.SIGKILL)
        _live.discard(self)
        self._note(f"stopped (exit code {self._popen.returncode})")
        return self._popen.returncode

    def kill9(self) -> int | None:
        """SIGKILL the whole group at once (a crash) and reap it. Returns the exit code."""
        if self._popen is None:
            return None
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout=10)
        _live.discard(self)
        self._note(f"killed with SIGKILL (exit code {self._popen.returncode})")
        return self._popen.returncode

    def restart(self, *, kill: bool = False) -> ManagedProcess:
        """Stop (gracefully, or with SIGKILL when ``kill``) and start again, same settings."""
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start()

    # ---- readiness ---------------------------------------------------------------------

    def wait_until(
        self,
        ready: Callable[[], bool],
        timeout: float,
        what: str,
        interval: float | None = None,
    ) -> None:
        """Poll ``ready()`` (every ``interval`` s, default 50 ms) until it is true; fail
        early if the process exits."""
        interval = _POLL_INTERVAL if interval is None else interval
        deadline = time.monotonic() + timeout
        while True:
            if self._popen is None:
                raise ProcessError(f"{self.name} was never started")
            code = self._popen.poll()
            if code is not None:
                raise ProcessError(
                    f"{self.name} exited with code {code} while waiting for {what}\n"
                    f"--- last lines of {self.log_path} ---\n{self.log_tail()}"
                )
            try:
                if ready():
                    return
            except Exception:
                pass
            if time.monotonic() >= deadline:
                raise ProcessError(
                    f"{self.name} not ready after {timeout:.1f}s: {what}\n"
                    f"--- last lines of {self.log_path} ---\n{self.log_tail()}"
                )
            time.sleep(interval)

    def wait_http_ok(self, url: str, timeout: float, expect_status: int = 200) -> None:
        """Wait until ``GET url`` (HTTP/1.1) answers ``expect_status``."""
        self.wait_until(lambda: http_status(url) == expect_status, timeout, f"GET {url}")

    # ---- logs --------------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def _note(self, message: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"\n===== harness: {message}\n")

    def __repr__(self) -> str:
        state = "running" if self.is_running() else f"exited {self.returncode}"
        return f"<ManagedProcess {self.name} pid={self.pid} {state}>"


# No proxies for loopback checks, whatever the environment says.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """Status of ``GET url``, or None if nothing answered."""
    try:
        with _opener.open(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except (OSError, ValueError, http.client.HTTPException):
        return None
