"""Locate the Node-side test tools installed by ``scripts/install-test-deps.sh``.

They live in ``<repo>/.tools/node`` (or ``$RESTATE_TEST_TOOLS_DIR``): Node 22 (the ``node``
npm package ships the binary), the TypeScript SDK, the real restate-server and the real CLI.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-test-deps.sh"

# Keep in sync with scripts/install-test-deps.sh (PACKAGES).
PINNED_PACKAGES: dict[str, str] = {
    "node": "22.23.3",
    "@restatedev/restate-sdk": "1.17.2",
    "@restatedev/restate-server": "1.7.12",
    "@restatedev/restate": "1.7.12",
}


class NodeToolsMissing(RuntimeError):
    """The Node-side test tools are not installed (or not at the pinned versions)."""


def tools_dir() -> Path:
    override = os.environ.get("RESTATE_TEST_TOOLS_DIR")
    return Path(override) if override else REPO_ROOT / ".tools" / "node"


def _npm_platform() -> str:
    """The suffix npm's platform packages use, e.g. ``linux-x64``."""
    system = platform.system().lower()
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return f"{system}-{arch}"


@dataclass(frozen=True)
class NodeTools:
    root: Path
    node_modules: Path
    node: Path  # the Node 22 binary
    restate_server: Path  # the native restate-server binary (not the node shim)
    restate_cli: Path  # the native restate CLI binary

    def node_version(self) -> str:
        out = subprocess.run(
            [str(self.node), "--version"], capture_output=True, text=True, timeout=30, check=True
        )
        return out.stdout.strip()


def installed_version(node_modules: Path, package: str) -> str | None:
    try:
        data = json.loads((node_modules / package / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = data.get("version")
    return version if isinstance(version, str) else None


def _missing(reason: str) -> NodeToolsMissing:
    return NodeToolsMissing(
        f"Node test tools not usable: {reason}.\n"
        f"Run `{INSTALL_SCRIPT.relative_to(REPO_ROOT)}` (installs Node 22, the TypeScript SDK, "
        f"the real restate-server and CLI into {tools_dir()})."
    )


def _native_binary(node_modules: Path, package: str, binary: str) -> Path:
    """The platform binary that the package's ``bin`` shim would spawn.

    Running it directly keeps signals exact: the shim is a node process that forwards only
    some signals, and a SIGKILL to the shim would leave the real binary orphaned.
    """
    preferred = node_modules / "@restatedev" / f"{package}-{_npm_platform()}" / "bin" / binary
    if preferred.is_file():
        return preferred
    found = sorted((node_modules / "@restatedev").glob(f"{package}-*/bin/{binary}"))
    if found:
        return found[0]
    raise _missing(f"no {binary} binary for {_npm_platform()} under {node_modules}/@restatedev")


def find_node_tools() -> NodeTools:
    """Return the installed tools, or raise ``NodeToolsMissing`` saying how to install them."""
    root = tools_dir()
    node_modules = root / "node_modules"
    if not node_modules.is_dir():
        raise _missing(f"{node_modules} does not exist")
    for package, version in PINNED_PACKAGES.items():
        got = installed_version(node_modules, package)
        if got != version:
            raise _missing(f"{package} is {got or 'not installed'}, expected {version}")
    node = node_modules / "node" / "bin" / "node"
    if not os.access(node, os.X_OK):
        raise _missing(f"{node} is not an executable")
    return NodeTools(
        root=root,
        node_modules=node_modules,
        node=node,
        restate_server=_native_binary(node_modules, "restate-server", "restate-server"),
        restate_cli=_native_binary(node_modules, "restate", "restate"),
    )


def install_node_tools(timeout: float = 900.0) -> None:
    """Run the install script (idempotent); raise ``NodeToolsMissing`` if it fails."""
    try:
        result = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise _missing(f"{INSTALL_SCRIPT.name} did not finish within {timeout:.0f}s") from exc
    if result.returncode != 0:
        raise _missing(
            f"{INSTALL_SCRIPT.name} failed with exit code {result.returncode}:\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )


def ensure_node_tools() -> NodeTools:
    """The installed tools, installing them first if they are missing."""
    try:
        return find_node_tools()
    except NodeToolsMissing:
        install_node_tools()
        return find_node_tools()
