"""Running the real ``restate`` CLI 1.7.12 (from ``.tools/node``) against one server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from tests.support.node import NodeTools


class RealCli:
    """The real CLI pointed at ``server`` (its admin and ingress URLs), with its config
    under ``home`` and no colours."""

    def __init__(self, tools: NodeTools, server: Any, home: Path) -> None:
        self.tools = tools
        self.env = {
            **os.environ,
            "RESTATE_ADMIN_URL": server.admin_url,
            "RESTATE_INGRESS_URL": server.ingress_url,
            "HOME": str(home),
            "NO_COLOR": "1",
        }

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.tools.restate_cli), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def __call__(self, *args: str) -> str:
        """Run it, expect exit 0; what it printed (stdout, then stderr)."""
        done = self.run(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr
