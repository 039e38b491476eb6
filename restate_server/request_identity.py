"""Request identity: the server signs every request to a deployment with its ed25519 key.

With ``worker.invoker.request-identity-private-key-pem-file`` set, discovery
(``GET /discover``) and every ``POST /invoke/{service}/{handler}`` carry
``x-restate-signature-scheme: v1`` and an EdDSA JWT in ``x-restate-jwt-v1``, as the
real server does. SDKs configured with the key id (``publickeyv1_`` + base58 of the
public key, logged at startup) answer 401 to anything else.

Token layout (byte for byte what the real server produces, since ed25519 signatures
are deterministic): header ``{"typ":"JWT","alg":"EdDSA","kid":…}``, claims
``{"aud","exp","iat","nbf"[,"sub"]}`` with ``aud`` the request path relative to the
deployment (``/discover``, ``/invoke/S/h``), ``sub`` the service key of virtual
objects and workflows, times in whole seconds, ``nbf``/``exp`` = now ∓ leeway.

Signing costs about 40 µs, a tenth of what the server otherwise spends on a short
invocation, so tokens are reused per (path, key) for up to a quarter of the leeway
(15 s of the default 60 s): a reused token still has three quarters of its validity
left and its ``nbf`` lies in the past, so the SDKs' checks (no leeway of their own)
pass. With a leeway under 4 s a token is reused only within its second, where a fresh
signature would give the same bytes. ``cryptography`` is imported only when a key is
loaded.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from restate_server.logs.fields import FIELDS

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = logging.getLogger(__name__)

SCHEME_HEADER = "x-restate-signature-scheme"
JWT_HEADER = "x-restate-jwt-v1"
SCHEME_V1 = "v1"
KID_PREFIX = "publickeyv1_"

# tokens kept per reuse window: plenty for the hot (path, key) pairs; beyond, sign each time
_CACHE_LIMIT = 4096
_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_PEM_BLOCK = re.compile(rb"-----BEGIN ([^-\r\n]*)-----(.*?)-----END \1-----", re.DOTALL)


class RequestIdentityKeyError(Exception):
    """The configured key file cannot be used; the server does not start."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Failed to read request identity private key: {reason}")
        self.reason = reason


def base58_encode(raw: bytes) -> str:
    """Bitcoin-alphabet base58 (the ``bs58`` crate's default), leading zeros as ``1``."""
    number = int.from_bytes(raw, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_B58_ALPHABET[remainder])
    zeros = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pem_blocks(data: bytes) -> list[bytes]:
    """The DER contents of every PEM block in ``data`` (whatever their labels)."""
    blocks = []
    for match in _PEM_BLOCK.finditer(data):
        body = b"".join(match.group(2).split())
        try:
            blocks.append(base64.b64decode(body, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise RequestIdentityKeyError(f"malformed PEM block: {exc}") from None
    return blocks


def _load_ed25519(der: bytes) -> Ed25519PrivateKey:
    try:
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_der_private_key
    except ImportError:
        raise RequestIdentityKeyError(
            "signing requests needs the 'cryptography' package (pip install cryptography)"
        ) from None

    try:
        key = load_der_private_key(der, password=None)
    except TypeError:
        raise RequestIdentityKeyError(
            "the private key is encrypted; an unencrypted PKCS#8 ed25519 key is expected"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise RequestIdentityKeyError(
            "not a PKCS#8 private key (generate one with `openssl genpkey -algorithm ed25519`)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise RequestIdentityKeyError(f"not an ed25519 key (found {type(key).__name__})")
    return key


class RequestSigner:
    """Makes the identity headers of one request; one per server, shared by every attempt."""

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        leeway_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self._key = private_key
        self.leeway_s = leeway_s
        self._clock = clock
        public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.kid = KID_PREFIX + base58_encode(public)
        header = {"typ": "JWT", "alg": "EdDSA", "kid": self.kid}
        self._header_b64 = _b64url(msgspec.json.encode(header))
        # whole seconds a token may be reused after its iat (0: only within its second)
        self.reuse_s = leeway_s // 4
        self._window = -1
        self._cache: dict[tuple[str, str | None], str] = {}

    def token(self, aud: str, sub: str | None = None) -> str:
        """The JWT for a request to ``aud`` (the path below the deployment URI)."""
        now = int(self._clock())
        # aligned windows of reuse_s + 1 seconds: every cached token is at most reuse_s old
        window = now // (self.reuse_s + 1)
        if window != self._window:
            self._window = window
            self._cache = {}
        cached = self._cache.get((aud, sub))
        if cached is not None:
            return cached
        token = self._sign(aud, sub, now)
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[(aud, sub)] = token
        return token

    def _sign(self, aud: str, sub: str | None, now: int) -> str:
        claims: dict[str, str | int] = {
            "aud": aud,
            "exp": now + self.leeway_s,
            "iat": now,
            "nbf": max(0, now - self.leeway_s),
        }
        if sub is not None:
            claims["sub"] = sub
        signing_input = f"{self._header_b64}.{_b64url(msgspec.json.encode(claims))}"
        signature = self._key.sign(signing_input.encode("ascii"))
        return f"{signing_input}.{_b64url(signature)}"

    def headers(self, aud: str, sub: str | None = None) -> list[tuple[str, str]]:
        """``x-restate-signature-scheme`` and ``x-restate-jwt-v1`` for one request."""
        return [(SCHEME_HEADER, SCHEME_V1), (JWT_HEADER, self.token(aud, sub))]


def signer_from_pem(data: bytes, expiration_ms: int) -> RequestSigner:
    """A signer for the one ed25519 PKCS#8 key in ``data``; the leeway in whole seconds."""
    blocks = pem_blocks(data)
    if len(blocks) != 1:
        raise RequestIdentityKeyError(
            f"Only one private key in PEM format is expected, found {len(blocks)}"
        )
    # the real server keeps whole seconds of the (>= 1 s) expiration
    return RequestSigner(_load_ed25519(blocks[0]), max(1, expiration_ms // 1000))


def load_request_signer(path: str, expiration_ms: int) -> RequestSigner:
    """Read the key file configured for the server; logs the key id SDKs must be given."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        reason = f"{exc.strerror or exc} (os error {exc.errno}): {path}"
        raise RequestIdentityKeyError(reason) from None
    signer = signer_from_pem(data, expiration_ms)
    log.info("Loaded request identity key", extra={FIELDS: {"kid": signer.kid, "path": path}})
    return signer
