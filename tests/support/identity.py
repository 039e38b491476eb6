"""Request identity in tests: key pairs for servers, and endpoints that only serve signed requests.

The key material is made here independently of the server's signer (the PKCS#8 bytes by
hand, the public key with restate_sdk's pure-Python ed25519), so a test that the server
and an SDK agree also checks the server's encoding.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from restate_sdk.ed25519 import public_key_from_seed
from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.http import get, h2c_get
from tests.support.ports import LOOPBACK

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# PKCS#8 wrapping of a raw Ed25519 private key seed (what `openssl genpkey` writes)
_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")


def b58encode(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _B58[rem] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def key_pair(directory: Path, name: str = "identity.pem") -> tuple[Path, str]:
    """A fresh ed25519 private key as a PEM file, and its ``publickeyv1_…`` key id."""
    seed = os.urandom(32)
    pem = directory / name
    body = base64.encodebytes(_PKCS8_PREFIX + seed).decode()
    pem.write_text(f"-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\n")
    return pem, "publickeyv1_" + b58encode(public_key_from_seed(seed))


def health_status(port: int, *, http1: bool = False) -> int:
    """``GET /health`` (0 when nothing answers); the SDKs serve it unsigned."""
    try:
        if http1:
            return get(f"http://{LOOPBACK}:{port}/health", timeout=2.0).status
        return h2c_get(LOOPBACK, port, "/health", timeout=2.0).status
    except OSError:
        return 0


def ready_on_health(endpoint: TsEndpoint | PyEndpoint, *, http1: bool = False) -> None:
    """Make ``endpoint.start()`` wait for ``/health``: its unsigned ``/discover`` gets 401."""

    def wait_ready(timeout: float | None = None) -> None:
        endpoint.process.wait_until(
            lambda: health_status(endpoint.port, http1=http1) == 200,
            endpoint.start_timeout if timeout is None else timeout,
            f"GET {endpoint.url}/health",
            interval=0.1,
        )

    endpoint.wait_ready = wait_ready  # type: ignore[method-assign]
