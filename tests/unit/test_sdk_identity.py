"""Request identity checks without sockets: the plain-Python Ed25519 and the JWT rules."""

from __future__ import annotations

from restate_sdk import ed25519
from restate_sdk.identity import IdentityVerifier

# RFC 8032, section 7.1, test 1
SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065"
    "224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_ed25519_rfc8032_vector() -> None:
    assert ed25519.public_key_from_seed(SECRET) == PUBLIC
    assert ed25519.verify(PUBLIC, b"", SIGNATURE)
    assert not ed25519.verify(PUBLIC, b"x", SIGNATURE)
    assert not ed25519.verify(PUBLIC, b"", SIGNATURE[:-1] + b"\x00")


def test_verifier_without_keys_accepts_everything() -> None:
    assert IdentityVerifier([]).verify({}, "/discover") is None


def test_verifier_rejects_unsigned_and_malformed() -> None:
    key = "publickeyv1_" + _b58(PUBLIC)
    verifier = IdentityVerifier([key])
    assert verifier.verify({}, "/discover") is not None
    headers = {"x-restate-signature-scheme": "v1", "x-restate-jwt-v1": "a.b"}
    assert "malformed" in (verifier.verify(headers, "/discover") or "")


def _b58(raw: bytes) -> str:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    number = int.from_bytes(raw, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = alphabet[rem] + out
    return out
