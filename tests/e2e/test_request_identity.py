"""Request identity: our server signs discovery and invocations with its ed25519 key.

Endpoints on the TS SDK and the official Python SDK, configured with the server's
``publickeyv1_…`` key, serve our server's requests (discovery, calls, service-to-service
calls, a resumed invocation after a timer, a virtual object whose key is the ``sub``
claim) and refuse a server without the key (401, so registration fails).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.identity import key_pair, ready_on_health
from tests.support.server import RestateServerProcess

KEY_ENV = "RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE"
DEPRECATED_KEY_ENV = "RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE"
# short: the sleep below suspends, and the timer resumes it with a new (signed) request
INACTIVITY = {"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "300ms"}
KEY = "k 1/ü"
KEY_PATH = "k%201%2F%C3%BC"


@pytest.mark.parametrize(("sdk", "key_env"), [("ts", KEY_ENV), ("py", DEPRECATED_KEY_ENV)])
def test_endpoints_with_identity_keys_serve_only_our_signed_requests(
    sdk: str,
    key_env: str,
    e2e_dir: Path,
    ts_endpoint: Callable[..., TsEndpoint],
    py_endpoint: Callable[..., PyEndpoint],
    server: Callable[..., RestateServerProcess],
) -> None:
    pem, kid = key_pair(e2e_dir)
    factory = ts_endpoint if sdk == "ts" else py_endpoint
    endpoint = factory(env={"IDENTITY_KEY": kid}, name=f"{sdk}-signed", start=False)
    ready_on_health(endpoint)
    endpoint.start()
    assert endpoint.discover().status == 401  # unsigned

    signed = server(
        env={key_env: str(pem), "RESTATE_LOG_FORMAT": "compact", **INACTIVITY}, name="signed"
    )
    assert f'Loaded request identity key kid="{kid}"' in signed.log_tail()
    assert signed.register(endpoint.url).status == 201
    assert signed.call("/Greeter/greet", "A").json() == "Hello, A!"
    assert signed.call("/FanOut/greetMany", 2).json() == ["Hello, 0!", "Hello, 1!"]
    assert signed.call("/Sleeper/sleep", 1000).json() == "slept"
    if sdk == "ts":  # (the Python SDK does not log it)
        assert "Invocation suspended" in endpoint.log_tail(200)
    assert signed.call(f"/Counter/{KEY_PATH}/add", 2).json() == 2
    assert signed.call(f"/Counter/{KEY_PATH}/add", 3).json() == 5
    assert signed.call(f"/Counter/{KEY_PATH}/get").json() == 5

    unsigned = server(name="unsigned")
    refused = unsigned.register(endpoint.url, check=False)
    assert refused.status >= 400
    assert "401 Unauthorized" in refused.text()


def test_http11_deployments_are_signed(
    e2e_dir: Path,
    ts_endpoint: Callable[..., TsEndpoint],
    server: Callable[..., RestateServerProcess],
) -> None:
    pem, kid = key_pair(e2e_dir)
    endpoint = ts_endpoint(env={"IDENTITY_KEY": kid, "HTTP1": "1"}, name="ts-h1", start=False)
    ready_on_health(endpoint, http1=True)
    endpoint.start()

    srv = server(env={KEY_ENV: str(pem)})
    assert srv.register(endpoint.url, use_http_11=True).status == 201
    assert srv.call("/Greeter/greet", "h1").json() == "Hello, h1!"
    assert srv.call(f"/Counter/{KEY_PATH}/add", 4).json() == 4
    assert srv.call("/Sleeper/sleep", 300).json() == "slept"
