"""Storage that cannot be used at start: a clear one-line error and a non-zero exit,
nothing written, and a server already running on the same data keeps working."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.support.http import call, request
from tests.support.server import RestateServerProcess


def _exit_of(srv: RestateServerProcess, timeout: float = 20.0) -> int:
    srv.process.start()
    deadline = time.monotonic() + timeout
    while srv.process.is_running():
        assert time.monotonic() < deadline, f"{srv.name} did not exit: {srv.log_tail()}"
        time.sleep(0.05)
    code = srv.process.returncode
    assert code is not None
    return code


def _elsewhere(
    server: Callable[..., RestateServerProcess], tmp_path: Path, base_dir: Path
) -> RestateServerProcess:
    """A server (not started) whose base dir is ``base_dir``, run from ``tmp_path``."""
    return server(
        base_dir=tmp_path / "unused", start=False, env={"RESTATE_BASE_DIR": str(base_dir)}
    )


def test_a_base_dir_that_is_a_file(
    server: Callable[..., RestateServerProcess], tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("x")
    srv = _elsewhere(server, tmp_path, not_a_dir)
    assert _exit_of(srv) == 1
    tail = srv.log_tail()
    assert "cannot start" in tail and "Not a directory" in tail and "Traceback" not in tail
    assert not_a_dir.read_text() == "x"


def test_a_base_dir_that_cannot_be_created(
    server: Callable[..., RestateServerProcess], tmp_path: Path
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    impossible = a_file / "restate-data"  # below a file: mkdir fails (ENOTDIR)
    srv = _elsewhere(server, tmp_path, impossible)
    assert _exit_of(srv) == 1
    tail = srv.log_tail()
    assert "cannot start" in tail and "Traceback" not in tail


def test_a_second_server_on_the_same_data_is_refused(
    server: Callable[..., RestateServerProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = server(base_dir=data, env={"RESTATE_BASE_DIR": str(data)})
    second = server(base_dir=data, start=False, env={"RESTATE_BASE_DIR": str(data)})
    assert _exit_of(second) == 1
    tail = second.log_tail()
    assert "cannot start" in tail and "in use by another process" in tail, tail
    assert "Traceback" not in tail
    # the first one did not notice
    assert request("GET", first.admin_url + "/health").status == 200
    assert call(first.ingress_url, "/NoSuchService/x").status == 404
