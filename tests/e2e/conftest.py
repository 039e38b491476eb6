"""Fixtures for end-to-end tests with real processes.

    def test_x(server, ts_endpoint):
        ep = ts_endpoint()                      # TS SDK test services, started, on a free port
        srv = server()                          # our server, started, tmp base dir
        srv.register(ep.url)
        assert srv.call("/Greeter/greet", "A").json() == "Hello, A!"

Factories (each call starts one more process; all of them are stopped at teardown):

- ``ts_endpoint(app_path=TS_APP, *, port=None, env=None, name=None, start=True) -> TsEndpoint``
- ``py_endpoint(module_path=PY_APP, *, port=None, env=None, name=None, start=True,
  python=None) -> PyEndpoint``
- ``sdk_endpoint(*, env=None, name="sdk", ...) -> PyEndpoint``: the same services on restate_sdk
- ``endpoint``: the test services, parametrized over the TS SDK, the official SDK and ours
- ``server(*, env=None, base_dir=None, name=None, start=True, **kw) -> RestateServerProcess``
- ``real_server(*, env=None, base_dir=None, name=None, start=True, **kw)
  -> RealRestateServerProcess``

Servers: ``admin_url``, ``ingress_url``, ``register(uri, **opts)``, ``call(path, body, headers)``,
``stop()``, ``kill9()``, ``restart(kill=False)`` (same base dir and ports), ``log_tail()``.
Endpoints: ``url`` (to register), ``discover()``, ``stop()``, ``kill9()``, ``start()``,
``restart(kill=False)`` (same port), and for ``Steps/threeSteps``: ``side_effects()``,
``wait_for_side_effect(line)``, ``wait_at_gate(tag)``, ``open_gate(tag)``.

Everything lives in ``e2e_dir`` (``<tmp_path>/e2e``): logs, side-effects files, gates,
server base dirs. When a test fails, the tail of every log is added to its report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.node import NodeTools, NodeToolsMissing, ensure_node_tools
from tests.support.server import RealRestateServerProcess, RestateServerProcess

E2E_DIR = Path(__file__).resolve().parent
TS_APP = E2E_DIR / "ts_services" / "app.mjs"
PY_APP = E2E_DIR / "py_services" / "app.py"
# PY_APP on our restate_sdk instead of the official SDK (the module imports TEST_SDK)
SDK_ENV = {"TEST_SDK": "restate_sdk"}

_STARTED_KEY = pytest.StashKey["_Started"]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On failure, attach the tail of every process log to the report (shown with it)."""
    report = yield
    started = item.stash.get(_STARTED_KEY, None)
    if report.failed and report.when in ("setup", "call") and started is not None:
        report.sections.append(("process logs", started.log_tails()))
    return report


class _Started:
    """Everything one test started, stopped in reverse order at teardown."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, item: Any) -> Any:
        self.items.append(item)
        return item

    def log_tails(self, lines: int = 80) -> str:
        parts = []
        for item in self.items:
            parts.append(f"----- {item.name}: last lines of {item.process.log_path} -----")
            parts.append(item.log_tail(lines))
        return "\n".join(parts)

    def teardown(self) -> None:
        errors: list[str] = []
        for item in reversed(self.items):
            try:
                item.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(f"stopping {item!r}: {exc!r}")
        if errors:
            raise RuntimeError("; ".join(errors))


@pytest.fixture(scope="session")
def tools() -> NodeTools:
    """Node 22, the TS SDK and the real restate-server/CLI; installs them if missing."""
    try:
        return ensure_node_tools()
    except NodeToolsMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def e2e_dir(tmp_path: Path) -> Path:
    """Per-test work dir: process logs, side-effects files, gates, server base dirs."""
    path = tmp_path / "e2e"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def _started(request: pytest.FixtureRequest) -> Iterator[_Started]:
    started = _Started()
    request.node.stash[_STARTED_KEY] = started
    try:
        yield started
    finally:
        started.teardown()


@pytest.fixture
def ts_endpoint(tools: NodeTools, e2e_dir: Path, _started: _Started) -> Callable[..., TsEndpoint]:
    def start(
        app_path: Path = TS_APP,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        start: bool = True,
    ) -> TsEndpoint:
        ep = _started.add(TsEndpoint(app_path, port, env, work_dir=e2e_dir, tools=tools, name=name))
        return ep.start() if start else ep

    return start


@pytest.fixture
def py_endpoint(e2e_dir: Path, _started: _Started) -> Callable[..., PyEndpoint]:
    def start(
        module_path: Path = PY_APP,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        start: bool = True,
        python: str | None = None,
    ) -> PyEndpoint:
        ep = _started.add(
            PyEndpoint(module_path, port, env, work_dir=e2e_dir, name=name, python=python)
        )
        return ep.start() if start else ep

    return start


@pytest.fixture
def sdk_endpoint(py_endpoint: Callable[..., PyEndpoint]) -> Callable[..., PyEndpoint]:
    """Like ``py_endpoint``, with the test services on our restate_sdk."""

    def start(*, env: Mapping[str, str] | None = None, name: str = "sdk", **kw: Any) -> PyEndpoint:
        return py_endpoint(PY_APP, env={**SDK_ENV, **(env or {})}, name=name, **kw)

    return start


@pytest.fixture(params=["ts", "py", "sdk"])
def endpoint(
    request: pytest.FixtureRequest,
    ts_endpoint: Callable[..., TsEndpoint],
    py_endpoint: Callable[..., PyEndpoint],
    sdk_endpoint: Callable[..., PyEndpoint],
) -> TsEndpoint | PyEndpoint:
    """The test services, started, on the TypeScript SDK, the official Python SDK and ours."""
    if request.param == "ts":
        return ts_endpoint()
    if request.param == "py":
        return py_endpoint()
    return sdk_endpoint()


def _base_dir(e2e_dir: Path, name: str, base_dir: Path | None) -> Path:
    return Path(base_dir) if base_dir is not None else e2e_dir / f"{name}-data"


@pytest.fixture
def server(e2e_dir: Path, _started: _Started) -> Callable[..., RestateServerProcess]:
    """Factory for our server; ``restart()``/``kill9()`` keep the same base dir and ports."""
    count = 0

    def start(
        *,
        env: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
        name: str | None = None,
        start: bool = True,
        **kwargs: Any,
    ) -> RestateServerProcess:
        nonlocal count
        count += 1
        name = name or f"our-server-{count}"
        srv = _started.add(
            RestateServerProcess(
                _base_dir(e2e_dir, name, base_dir), e2e_dir, env=env, name=name, **kwargs
            )
        )
        return srv.start() if start else srv

    return start


@pytest.fixture
def real_server(
    tools: NodeTools, e2e_dir: Path, _started: _Started
) -> Callable[..., RealRestateServerProcess]:
    """Factory for the real restate-server 1.7.12, same interface as ``server``."""
    count = 0

    def start(
        *,
        env: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
        name: str | None = None,
        start: bool = True,
        **kwargs: Any,
    ) -> RealRestateServerProcess:
        nonlocal count
        count += 1
        name = name or f"real-server-{count}"
        srv = _started.add(
            RealRestateServerProcess(
                _base_dir(e2e_dir, name, base_dir),
                e2e_dir,
                tools=tools,
                env=env,
                name=name,
                **kwargs,
            )
        )
        return srv.start() if start else srv

    return start
