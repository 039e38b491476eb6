"""Request identity: only requests signed by the configured Restate servers are served.

With ``publickeyv1_…`` keys configured, discovery and invocation requests must
carry ``x-restate-signature-scheme: v1`` and an EdDSA JWT in ``x-restate-jwt-v1``
whose audience is the request path; otherwise the endpoint answers 401.
"""

from __future__ import annotations

import base64
import importlib
import json
import time
from collections.abc import Callable

from restate_sdk import ed25519

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_PREFIX = "publickeyv1_"
LEEWAY_S = 60


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        index = _B58.find(char)
        if index < 0:
            raise ValueError(f"invalid base58 character {char!r}")
        number = number * 58 + index
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading + raw


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


Check = Callable[[bytes, bytes], bool]


def _verifier(public_key: bytes) -> Check:
    """Verification with ``cryptography`` when it is installed, else in plain Python."""
    try:
        exceptions = importlib.import_module("cryptography.exceptions")
        ed = importlib.import_module("cryptography.hazmat.primitives.asymmetric.ed25519")
    except ImportError:
        return lambda message, signature: ed25519.verify(public_key, message, signature)
    key = ed.Ed25519PublicKey.from_public_bytes(public_key)

    def check(message: bytes, signature: bytes) -> bool:
        try:
            key.verify(signature, message)
        except exceptions.InvalidSignature:
            return False
        return True

    return check


class IdentityVerifier:
    def __init__(self, keys: list[str]) -> None:
        self._keys: dict[str, Check] = {}
        for key in keys:
            self.add_key(key)

    def add_key(self, key: str) -> None:
        if not key.startswith(_PREFIX):
            raise ValueError(f"identity keys start with '{_PREFIX}'")
        raw = _b58decode(key[len(_PREFIX) :])
        if len(raw) != 32:
            raise ValueError("an identity key must be a 32-byte Ed25519 public key")
        self._keys[key] = _verifier(raw)

    def verify(self, headers: dict[str, str], path: str) -> str | None:
        """None when the request may be served, else why it may not."""
        if not self._keys:
            return None
        scheme = headers.get("x-restate-signature-scheme")
        if scheme != "v1":
            return f"request identity: unsupported or missing signature scheme {scheme!r}"
        token = headers.get("x-restate-jwt-v1", "")
        try:
            header_b64, payload_b64, signature_b64 = token.split(".")
            header = json.loads(_b64url(header_b64))
            claims = json.loads(_b64url(payload_b64))
            signature = _b64url(signature_b64)
        except (ValueError, TypeError):
            return "request identity: malformed JWT"
        check = self._keys.get(header.get("kid", ""))
        if check is None or header.get("alg") != "EdDSA":
            return "request identity: unknown key"
        if not check(f"{header_b64}.{payload_b64}".encode(), signature):
            return "request identity: bad signature"
        now = time.time()
        if claims.get("aud") not in (path, [path]) and not _ends_with(claims.get("aud"), path):
            return "request identity: wrong audience"
        if "nbf" in claims and now + LEEWAY_S < float(claims["nbf"]):
            return "request identity: token not yet valid"
        if "exp" in claims and now - LEEWAY_S > float(claims["exp"]):
            return "request identity: token expired"
        return None


def _ends_with(audience: object, path: str) -> bool:
    """Mounted under a prefix, the endpoint sees a longer path than the signed one."""
    return isinstance(audience, str) and path.endswith(audience)
