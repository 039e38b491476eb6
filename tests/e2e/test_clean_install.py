"""What `pip install .` gives a stranger: a fresh virtualenv, the project without test
extras, and the server and SDK working from it.

Each install is of a copy of the source tree (the files git tracks, as a clean clone has
them) into a new virtualenv, with nothing from the test environment on its path. The
first has no extras and runs `restate-server` against a real TypeScript SDK endpoint; the
second has only the `sdk` extra and serves the README's example services.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.readme import readme_curls, run_curl
from tests.support.server import RestateServerProcess

ROOT = Path(__file__).resolve().parents[2]
TEST_ONLY_PACKAGES = {"pytest", "restate-sdk", "ruff", "mypy", "pyyaml"}
SDK_EXTRA = {"hypercorn", "pydantic"}


def _copy_source_tree(destination: Path) -> Path:
    """The tracked files (and new, not ignored ones) of the working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _clean_install(where: Path, requirement: str) -> Path:
    """A new virtualenv under ``where`` with ``pip install <requirement>`` run in a copy
    of the source tree; returns the venv."""
    source = _copy_source_tree(where / "src")
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", requirement]
    with open(where / "pip-install.log", "wb") as log:
        done = subprocess.run(pip, cwd=source, stdout=log, stderr=subprocess.STDOUT)
    assert done.returncode == 0, f"pip install {requirement} failed: {where / 'pip-install.log'}"
    return venv


def _installed(venv: Path) -> set[str]:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        check=True,
    ).stdout
    return {p["name"].lower() for p in json.loads(out)}


def _import_every_module(venv: Path, package: str) -> None:
    """Import each module of ``package`` from the venv, lazily imported ones included,
    from a directory where the source tree is not importable."""
    code = (
        "import importlib, pkgutil, sys\n"
        "pkg = importlib.import_module(sys.argv[1])\n"
        "assert not pkg.__file__.startswith(sys.argv[2]), pkg.__file__\n"
        "for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "    if not m.name.endswith('.__main__'):\n"
        "        importlib.import_module(m.name)\n"
    )
    argv = [str(venv / "bin" / "python"), "-c", code, package, str(ROOT)]
    done = subprocess.run(argv, cwd=venv, capture_output=True, text=True)
    assert done.returncode == 0, f"{package} does not import from a clean install:\n{done.stderr}"


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _clean_install(tmp_path_factory.mktemp("plain"), ".")


@pytest.fixture(scope="module")
def sdk_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _clean_install(tmp_path_factory.mktemp("sdk"), ".[sdk]")


def test_plain_install_serves_a_typescript_endpoint(
    plain_venv: Path,
    server: Callable[..., RestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> None:
    assert not _installed(plain_venv) & (TEST_ONLY_PACKAGES | SDK_EXTRA)
    _import_every_module(plain_venv, "restate_server")
    srv = server(command=[str(plain_venv / "bin" / "restate-server")])
    endpoint = ts_endpoint()
    assert srv.register(endpoint.url).status == 201
    assert srv.call("/Greeter/greet", "clean").json() == "Hello, clean!"
    assert srv.call("/Counter/c1/add", 2).json() == 2
    srv.restart()
    assert srv.call("/Counter/c1/add", 3).json() == 5


def test_sdk_extra_serves_the_example_services(
    plain_venv: Path,
    sdk_venv: Path,
    server: Callable[..., RestateServerProcess],
    py_endpoint: Callable[..., PyEndpoint],
) -> None:
    installed = _installed(sdk_venv)
    assert installed >= SDK_EXTRA and not installed & TEST_ONLY_PACKAGES
    _import_every_module(sdk_venv, "restate_sdk")
    examples = sdk_venv.parent / "src" / "examples" / "services.py"
    endpoint = py_endpoint(examples, name="examples", python=str(sdk_venv / "bin" / "python"))
    srv = server(command=[str(plain_venv / "bin" / "restate-server")])
    addresses = {
        "localhost:9070": srv.admin_url.removeprefix("http://"),
        "localhost:8080": srv.ingress_url.removeprefix("http://"),
        "http://127.0.0.1:9080": endpoint.url,
    }
    answers = [run_curl(a, addresses) for a in readme_curls("Write services with `restate_sdk`")]
    register, greet, add, run, approve, attach = answers
    assert register.status == 201, register.text()
    assert greet.json() == "Hello, World!"
    assert add.json() == 5
    assert run.status == 202, run.text()
    assert approve.status == 200, approve.text()
    assert attach.json() == {"status": "completed", "amount": 42}
