"""SDK endpoints as real processes, serving h2c on a loopback port.

- ``TsEndpoint``: an ES module using ``@restatedev/restate-sdk`` 1.17.2, run with Node 22.
- ``PyEndpoint``: an ASGI module using the official ``restate`` SDK 1.2.0, run with hypercorn.

Both are ready when ``GET /discover`` (HTTP/2 prior knowledge) answers 200. The test
services (``tests/e2e/*_services``) record side effects in ``SIDE_EFFECTS_FILE`` and wait for
gate files in ``GATE_DIR``; every endpoint gets its own pair under its work dir, with
``side_effects()`` and ``open_gate(tag)`` to read and drive them.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support.http import Response, discover
from tests.support.node import NodeTools, find_node_tools
from tests.support.ports import LOOPBACK, free_port
from tests.support.procs import ManagedProcess

START_TIMEOUT = 15.0
HYPERCORN_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "hypercorn.toml"


class _SdkEndpoint:
    kind = "endpoint"

    def __init__(
        self,
        work_dir: Path,
        port: int | None,
        env: Mapping[str, str] | None,
        name: str | None,
        start_timeout: float,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.port = port or free_port()
        self.name = name or f"{self.kind}-endpoint-{self.port}"
        self.start_timeout = start_timeout
        self.side_effects_file = self.work_dir / f"{self.name}.side-effects.txt"
        self.gate_dir = self.work_dir / f"{self.name}.gates"
        self.env = {
            "PORT": str(self.port),
            "SIDE_EFFECTS_FILE": str(self.side_effects_file),
            "GATE_DIR": str(self.gate_dir),
            **(env or {}),
        }
        self.process: ManagedProcess  # set by subclasses

    @property
    def url(self) -> str:
        """The deployment URI to register."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float | None = None) -> _SdkEndpoint:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.gate_dir.mkdir(parents=True, exist_ok=True)
        self.process.start()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        self.process.wait_until(
            lambda: discover(self.port, timeout=2.0).status == 200,
            self.start_timeout if timeout is None else timeout,
            f"GET {self.url}/discover over h2c",
            interval=0.1,
        )

    def discover(self) -> Response:
        return discover(self.port)

    def stop(self, grace: float | None = None) -> int | None:
        return self.process.stop(grace)

    def kill9(self) -> int | None:
        return self.process.kill9()

    def restart(self, *, kill: bool = False, timeout: float | None = None) -> _SdkEndpoint:
        """Same port, same side-effects file and gates (in-memory state is lost)."""
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start(timeout)

    def is_running(self) -> bool:
        return self.process.is_running()

    def log_tail(self, lines: int = 80) -> str:
        return self.process.log_tail(lines)

    # ---- side effects and gates (see the test services) --------------------------------

    def side_effects(self) -> list[str]:
        """Lines appended by ``ctx.run`` steps so far, e.g. ``["t1 step1", "t1 step2"]``."""
        try:
            return self.side_effects_file.read_text().splitlines()
        except FileNotFoundError:
            return []

    def wait_for_side_effect(self, line: str, timeout: float = 15.0) -> None:
        """Wait until ``line`` (e.g. ``"t1 step2"``) is in the side-effects file."""
        self.process.wait_until(
            lambda: line in self.side_effects(), timeout, f"side effect {line!r}"
        )

    def wait_at_gate(self, tag: str, timeout: float = 15.0) -> None:
        """Wait until ``threeSteps(tag)`` is inside step3, waiting for its gate.

        The SDKs only start a step after the server acknowledged the previous one, so from
        here on step1 and step2 are journaled: killing the endpoint now loses only step3.
        """
        marker = self.gate_dir / f"{tag}.waiting"
        self.process.wait_until(marker.exists, timeout, f"{tag} waiting at its gate")

    def open_gate(self, tag: str) -> None:
        """Let ``Steps/threeSteps(tag)`` run its step3."""
        self.gate_dir.mkdir(parents=True, exist_ok=True)
        (self.gate_dir / tag).touch()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} port={self.port} {self.process!r}>"


class TsEndpoint(_SdkEndpoint):
    """A TypeScript-SDK endpoint: ``node22 app.mjs`` with ``PORT`` set.

    The app finds the SDK through ``RESTATE_TEST_NODE_MODULES`` (ES modules ignore
    NODE_PATH, so the app resolves it with ``createRequire``).
    """

    kind = "ts"

    def __init__(
        self,
        app_path: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        *,
        work_dir: Path,
        tools: NodeTools | None = None,
        name: str | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        super().__init__(work_dir, port, env, name, start_timeout)
        self.app_path = Path(app_path).resolve()
        self.tools = tools or find_node_tools()
        self.env.setdefault("RESTATE_TEST_NODE_MODULES", str(self.tools.node_modules))
        self.process = ManagedProcess(
            self.name,
            [str(self.tools.node), str(self.app_path)],
            log_dir=self.work_dir,
            env=self.env,
            cwd=self.app_path.parent,
            stop_grace=5.0,
        )


class PyEndpoint(_SdkEndpoint):
    """An official-Python-SDK endpoint: ``python -m hypercorn <module>:app`` on h2c.

    ``module_path`` is the ``.py`` file defining ``app = restate.app([...])``; hypercorn
    runs in that file's directory and imports it by its stem, with ``python`` (default:
    the test runner's interpreter).
    """

    kind = "py"

    def __init__(
        self,
        module_path: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        *,
        work_dir: Path,
        app_name: str = "app",
        name: str | None = None,
        start_timeout: float = START_TIMEOUT,
        python: str | None = None,
    ) -> None:
        super().__init__(work_dir, port, env, name, start_timeout)
        self.module_path = Path(module_path).resolve()
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        argv = [
            python or sys.executable,
            "-m",
            "hypercorn",
            "--bind",
            f"{LOOPBACK}:{self.port}",
            # Serve in this process (no multiprocessing worker), so the process we signal
            # is the one serving and PR_SET_PDEATHSIG covers it.
            "--workers",
            "0",
            # Open bidi streams would otherwise hold a SIGTERM for hypercorn's default 60 s.
            "--graceful-timeout",
            "1",
            # what the README tells users: no per-connection request or stream limits
            "--config",
            str(HYPERCORN_CONFIG),
            f"{self.module_path.stem}:{app_name}",
        ]
        self.process = ManagedProcess(
            self.name,
            argv,
            log_dir=self.work_dir,
            env=self.env,
            cwd=self.module_path.parent,
            stop_grace=5.0,
            # The restate app takes over SIGTERM on its first request (to end its open
            # streams), leaving hypercorn's in-process server running; SIGINT still stops it.
            stop_signal=signal.SIGINT,
        )
