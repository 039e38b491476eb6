"""Protocol modes end to end: suspension on inactivity, HTTP/1.1 request/response,
the experimental V7 protocol, and the server process lifecycle."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections.abc import Callable

import pytest

from tests.e2e.conftest import TS_APP
from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.server import RestateServerProcess

Endpoint = TsEndpoint | PyEndpoint


def test_inactive_invocation_suspends_and_resumes_on_its_timer(
    server: Callable[..., RestateServerProcess], endpoint: Endpoint
) -> None:
    srv = server(env={"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "200ms"})
    assert srv.register(endpoint.url).status == 201
    started = time.monotonic()
    resp = srv.call("/Sleeper/sleep", 1500)
    assert resp.status == 200, resp.text()
    assert resp.json() == "slept"
    assert time.monotonic() - started >= 1.5
    # Suspended while sleeping: killing the endpoint then does not matter.
    resp = srv.call("/Sleeper/sleep/send", 1500)
    invocation_id = resp.json()["invocationId"]
    time.sleep(0.6)
    endpoint.kill9()
    endpoint.start()
    resp = srv.call(f"/restate/invocation/{invocation_id}/attach", method="GET")
    assert resp.status == 200 and resp.json() == "slept"


class Http1TsEndpoint(TsEndpoint):
    """The TS test services on HTTP/1.1 (``http1Handler``, REQUEST_RESPONSE)."""

    def wait_ready(self, timeout: float | None = None) -> None:
        def ready() -> bool:
            request = urllib.request.Request(
                f"{self.url}/discover",
                headers={"accept": "application/vnd.restate.endpointmanifest.v4+json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=2) as resp:
                    return resp.status == 200
            except OSError:
                return False

        self.process.wait_until(ready, timeout or self.start_timeout, "HTTP/1.1 discovery")


def test_http11_request_response_endpoint(
    server: Callable[..., RestateServerProcess], tools, e2e_dir, _started
) -> None:
    endpoint = _started.add(
        Http1TsEndpoint(TS_APP, env={"HTTP1": "1"}, work_dir=e2e_dir, tools=tools, name="ts-h1")
    )
    endpoint.start()
    srv = server()
    reg = srv.register(endpoint.url, use_http_11=True)
    assert reg.status == 201, reg.text()
    deployment = srv_get_json(srv, f"/deployments/{reg.json()['id']}")
    assert deployment["protocol_type"] == "RequestResponse"
    assert deployment["http_version"] == "HTTP/1.1"
    assert srv.call("/Greeter/greet", "h1").json() == "Hello, h1!"
    assert srv.call("/Counter/h1/add", 2).json() == 2
    assert srv.call("/Counter/h1/add", 3).json() == 5
    # every await ends the attempt with a suspension; the server re-invokes at once
    endpoint.open_gate("h1steps")
    assert srv.call("/Steps/threeSteps", "h1steps").json() == "done h1steps"
    assert endpoint.side_effects() == ["h1steps step1", "h1steps step2", "h1steps step3"]
    assert srv.call("/Sleeper/sleep", 300).json() == "slept"


def srv_get_json(srv: RestateServerProcess, path: str) -> dict:
    with urllib.request.urlopen(srv.admin_url + path, timeout=10) as resp:
        return json.loads(resp.read())


def test_experimental_protocol_v7(
    server: Callable[..., RestateServerProcess], endpoint: Endpoint
) -> None:
    srv = server(env={"RESTATE_EXPERIMENTAL_ENABLE_PROTOCOL_V7": "true"})
    assert srv.register(endpoint.url).status == 201
    assert srv.call("/Greeter/greet", "v7").json() == "Hello, v7!"
    assert srv.call("/Counter/v7/add", 4).json() == 4
    endpoint.open_gate("v7steps")
    assert srv.call("/Steps/threeSteps", "v7steps").json() == "done v7steps"
    assert srv.call("/Sleeper/sleep", 200).json() == "slept"


def test_server_logs_where_it_listens_and_stops_on_sigterm(
    server: Callable[..., RestateServerProcess],
) -> None:
    srv = server()
    log = srv.log_tail()
    assert f"ingress on 127.0.0.1:{srv.ingress_port}" in log
    assert f"admin on 127.0.0.1:{srv.admin_port}" in log
    assert srv.stop() == 0  # SIGTERM: a clean exit
    srv.start()
    srv.process.stop_signal = signal.SIGINT
    assert srv.stop() == 0


@pytest.mark.parametrize("module", ["py", "sdk"])
def test_http11_request_response_python_endpoints(
    module: str,
    server: Callable[..., RestateServerProcess],
    py_endpoint: Callable[..., PyEndpoint],
    sdk_endpoint: Callable[..., PyEndpoint],
) -> None:
    endpoint = py_endpoint() if module == "py" else sdk_endpoint(name="sdk-h1")
    srv = server()
    reg = srv.register(endpoint.url, use_http_11=True)
    assert reg.status == 201, reg.text()
    deployment = srv_get_json(srv, f"/deployments/{reg.json()['id']}")
    assert deployment["protocol_type"] == "RequestResponse"
    assert srv.call("/Greeter/greet", "h1").json() == "Hello, h1!"
    assert srv.call("/Counter/h1/add", 2).json() == 2
    endpoint.open_gate("h1py")
    assert srv.call("/Steps/threeSteps", "h1py").json() == "done h1py"
    assert srv.call("/Sleeper/sleep", 200).json() == "slept"
    assert srv.call("/FanOut/greetMany", 5).json() == [f"Hello, {i}!" for i in range(5)]
