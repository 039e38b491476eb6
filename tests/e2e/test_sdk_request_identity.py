"""Request identity: our SDK serves only requests signed by the configured server key
(the real restate-server signs with an Ed25519 key; unsigned requests get 401)."""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from restate_sdk.ed25519 import public_key_from_seed
from tests.support.endpoints import PyEndpoint
from tests.support.server import RealRestateServerProcess, RestateServerProcess

APP = Path(__file__).resolve().parent / "sdk_identity" / "app.py"
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# PKCS#8 wrapping of a raw Ed25519 private key seed
_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")


def _b58encode(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _B58[rem] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def _key_pair(directory: Path) -> tuple[Path, str]:
    seed = os.urandom(32)
    pem = directory / "identity.pem"
    body = base64.encodebytes(_PKCS8_PREFIX + seed).decode()
    pem.write_text(f"-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\n")
    return pem, "publickeyv1_" + _b58encode(public_key_from_seed(seed))


def test_signed_requests_only(
    e2e_dir: Path,
    py_endpoint: Callable[..., PyEndpoint],
    real_server: Callable[..., RealRestateServerProcess],
    server: Callable[..., RestateServerProcess],
) -> None:
    pem, public_key = _key_pair(e2e_dir)
    endpoint = py_endpoint(APP, env={"IDENTITY_KEY": public_key}, name="identity", start=False)
    endpoint.wait_ready = lambda timeout=None: endpoint.process.wait_until(  # type: ignore[method-assign]
        lambda: _status(f"{endpoint.url}/health") == 200, 15, "health"
    )
    endpoint.start()
    assert _status(f"{endpoint.url}/discover") == 401  # unsigned

    signed = real_server(env={"RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE": str(pem)})
    assert signed.register(endpoint.url).status == 201
    assert signed.call("/Greeter/greet", "signed").json() == "Hello, signed!"

    unsigned = server()
    assert unsigned.register(endpoint.url, check=False).status >= 400


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0
