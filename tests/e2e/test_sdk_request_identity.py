"""Request identity: our SDK serves only requests signed by the configured server key
(the real restate-server signs with an Ed25519 key; unsigned requests get 401)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.endpoints import PyEndpoint
from tests.support.identity import health_status, key_pair, ready_on_health
from tests.support.server import RealRestateServerProcess, RestateServerProcess

APP = Path(__file__).resolve().parent / "sdk_identity" / "app.py"


def test_signed_requests_only(
    e2e_dir: Path,
    py_endpoint: Callable[..., PyEndpoint],
    real_server: Callable[..., RealRestateServerProcess],
    server: Callable[..., RestateServerProcess],
) -> None:
    pem, public_key = key_pair(e2e_dir)
    endpoint = py_endpoint(APP, env={"IDENTITY_KEY": public_key}, name="identity", start=False)
    ready_on_health(endpoint)
    endpoint.start()
    assert health_status(endpoint.port) == 200
    assert endpoint.discover().status == 401  # unsigned

    signed = real_server(env={"RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE": str(pem)})
    assert signed.register(endpoint.url).status == 201
    assert signed.call("/Greeter/greet", "signed").json() == "Hello, signed!"

    unsigned = server()
    assert unsigned.register(endpoint.url, check=False).status >= 400
