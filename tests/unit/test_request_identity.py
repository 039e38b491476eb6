"""Request identity: the server's signer (key file, JWT, cache) and where it is wired in."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from restate_sdk import ed25519 as pure_ed25519
from restate_sdk.identity import IdentityVerifier
from restate_server.config import load_config
from restate_server.logs.fields import FIELDS
from restate_server.request_identity import (
    JWT_HEADER,
    SCHEME_HEADER,
    RequestIdentityKeyError,
    RequestSigner,
    base58_encode,
    load_request_signer,
    signer_from_pem,
)
from restate_server.schema.discovery import discover
from restate_server.server import request_signer_of

# the test vector of the real server (crates/service-client/src/request_identity/v1.rs)
PRIVATE_KEY = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIPe++4ZTPQDF81otpoU/mOGHC2vOAVp9WbiCblvn3nXO
-----END PRIVATE KEY-----"""
PUBLIC_KEY = b"""-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAj5BTvH+WJo0QGHm2hdLOuk6P7szKgTQxmpnnmZe/DcU=
-----END PUBLIC KEY-----"""
KID = "publickeyv1_AfQwmwfgEZhrWpvv8N52SHpRtZqGGaFr4AZN6qtYWSiY"
ONE_KEY = "Only one private key in PEM format is expected"

# Tokens the real restate-server 1.7.12 sent with PRIVATE_KEY (recorded at a deployment
# registered as http://127.0.0.1:PORT/mount/): ed25519 is deterministic, so the same
# claims must give the same bytes.
_HEADER = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSIsImtpZCI6InB1YmxpY2tleXYxX0FmUXdtd2ZnRVpocldwdnY4"
    "TjUyU0hwUnRacUdHYUZyNEFaTjZxdFlXU2lZIn0"
)
REAL_SERVER_IAT = 1796161635
REAL_SERVER_TOKENS: list[tuple[str, str | None, str]] = [
    (
        "/discover",
        None,
        f"{_HEADER}.eyJhdWQiOiIvZGlzY292ZXIiLCJleHAiOjE3OTYxNjE2OTUsImlhdCI6MTc5NjE2MTYzNSwibmJm"
        "IjoxNzk2MTYxNTc1fQ.S5OycOk7FgQ-fKsH3EqU4aCllFmPv11DTssD0kJXfHSG5R54KWSBgnb1WTThe2G8sBCTPA"
        "tcBY223DhCQrEGDA",
    ),
    (
        "/invoke/Svc/h",
        None,
        f"{_HEADER}.eyJhdWQiOiIvaW52b2tlL1N2Yy9oIiwiZXhwIjoxNzk2MTYxNjk1LCJpYXQiOjE3OTYxNjE2MzUs"
        "Im5iZiI6MTc5NjE2MTU3NX0.kuGGsI4UoCmX8auqnNpNZLlZtHs35YLfk65gWgv0Inlce2Tsa6m0lBHYbrOu3GO_5"
        "oymrpfA6tsgBvetKxxjDw",
    ),
    (
        "/invoke/Obj/h",
        "k 1/ü",  # a virtual object key: sub is the raw key (the header is percent-encoded)
        f"{_HEADER}.eyJhdWQiOiIvaW52b2tlL09iai9oIiwiZXhwIjoxNzk2MTYxNjk1LCJpYXQiOjE3OTYxNjE2MzUs"
        "Im5iZiI6MTc5NjE2MTU3NSwic3ViIjoiayAxL8O8In0.Yeci-Fo76TpiyWIlgMH6uuOokMVTiOqMBF2GSDAfJiTrxK"
        "TkNGSHZK5wSlkZxfsMoOYZZ6lIFilKKpSE3Y30AA",
    ),
]


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _decode(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _signer(expiration_ms: int = 60_000, now: float = 1_700_000_000.25) -> RequestSigner:
    signer = signer_from_pem(PRIVATE_KEY, expiration_ms)
    signer._clock = FakeClock(now)
    return signer


def _pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# ---- the key file


def test_the_kid_of_the_real_servers_test_vector() -> None:
    assert signer_from_pem(PRIVATE_KEY, 60_000).kid == KID


def test_a_key_written_by_openssl_genpkey(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "key.pem"
    path.write_bytes(b"some comment\r\n" + _pem(key).replace(b"\n", b"\r\n"))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert load_request_signer(str(path), 60_000).kid == "publickeyv1_" + base58_encode(raw)


def test_loading_logs_the_kid(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(PRIVATE_KEY)
    with caplog.at_level(logging.INFO, logger="restate_server.request_identity"):
        load_request_signer(str(path), 60_000)
    (record,) = caplog.records
    assert record.getMessage() == "Loaded request identity key"
    assert getattr(record, FIELDS) == {"kid": KID, "path": str(path)}


def test_base58_keeps_leading_zeros() -> None:
    assert base58_encode(b"") == ""
    assert base58_encode(b"\0\0\x01") == "112"
    assert base58_encode(bytes(range(1, 6))) == "7bWpTW"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            PRIVATE_KEY + b"\n" + PRIVATE_KEY,
            "Only one private key in PEM format is expected, found 2",
        ),
        (b"not a pem file at all\n", "Only one private key in PEM format is expected, found 0"),
        (b"", "Only one private key in PEM format is expected, found 0"),
        (PUBLIC_KEY, "not a PKCS#8 private key"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a PKCS#8"),
        (b"-----BEGIN PRIVATE KEY-----\n#$%&\n-----END PRIVATE KEY-----\n", "malformed PEM"),
    ],
)
def test_key_files_that_are_not_one_ed25519_key(content: bytes, reason: str) -> None:
    with pytest.raises(RequestIdentityKeyError) as info:
        signer_from_pem(content, 60_000)
    assert str(info.value).startswith("Failed to read request identity private key: ")
    assert reason in str(info.value)


def test_a_key_of_another_algorithm_is_refused() -> None:
    with pytest.raises(RequestIdentityKeyError, match="not an ed25519 key"):
        signer_from_pem(_pem(ec.generate_private_key(ec.SECP256R1())), 60_000)


def test_an_encrypted_key_is_refused() -> None:
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(RequestIdentityKeyError, match="encrypted"):
        signer_from_pem(pem, 60_000)


def test_a_missing_key_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(RequestIdentityKeyError, match=r"No such file or directory \(os error 2\)"):
        load_request_signer(str(missing), 60_000)


# ---- the token


@pytest.mark.parametrize(("aud", "sub", "token"), REAL_SERVER_TOKENS)
def test_tokens_are_the_real_servers_bytes(aud: str, sub: str | None, token: str) -> None:
    assert _signer(now=REAL_SERVER_IAT + 0.9).token(aud, sub) == token


def test_headers_and_claims() -> None:
    headers = _signer(now=1_700_000_000.75).headers("/invoke/Greeter/greet")
    assert [name for name, _ in headers] == [SCHEME_HEADER, JWT_HEADER]
    assert headers[0] == ("x-restate-signature-scheme", "v1")
    header, claims, _ = headers[1][1].split(".")
    assert _decode(header) == {"typ": "JWT", "alg": "EdDSA", "kid": KID}
    assert _decode(claims) == {
        "aud": "/invoke/Greeter/greet",
        "exp": 1_700_000_060,
        "iat": 1_700_000_000,
        "nbf": 1_699_999_940,
    }


def test_sub_is_the_key_even_when_empty() -> None:
    signer = _signer()
    assert _decode(signer.token("/invoke/Obj/h", "k1").split(".")[1])["sub"] == "k1"
    assert _decode(signer.token("/invoke/Obj/h", "").split(".")[1])["sub"] == ""
    assert "sub" not in _decode(signer.token("/invoke/Obj/h").split(".")[1])


@pytest.mark.parametrize(("expiration_ms", "leeway"), [(300_000, 300), (1_000, 1), (1_999, 1)])
def test_the_leeway_is_whole_seconds_of_the_expiration(expiration_ms: int, leeway: int) -> None:
    claims = _decode(_signer(expiration_ms).token("/discover").split(".")[1])
    assert claims["exp"] - claims["iat"] == leeway
    assert claims["iat"] - claims["nbf"] == leeway


def test_the_signature_verifies_like_the_sdks_check_it() -> None:
    signer = signer_from_pem(PRIVATE_KEY, 60_000)  # the real clock: the verifier checks times
    headers = dict(signer.headers("/invoke/Obj/h", "k"))
    verifier = IdentityVerifier([KID])
    assert verifier.verify(headers, "/invoke/Obj/h") is None
    assert verifier.verify(headers, "/invoke/Obj/other") == "request identity: wrong audience"
    # the same check without ``cryptography``, on the public key of the real vector
    header, claims, signature = headers[JWT_HEADER].split(".")
    public = serialization.load_pem_public_key(PUBLIC_KEY).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    raw_signature = base64.urlsafe_b64decode(signature + "==")
    assert pure_ed25519.verify(public, f"{header}.{claims}".encode(), raw_signature)
    assert not pure_ed25519.verify(public, f"{header}.{claims}x".encode(), raw_signature)


# ---- reuse


def test_a_token_is_reused_for_a_quarter_of_the_leeway() -> None:
    signer = _signer(now=1_700_000_000.0)  # 1_700_000_000 = 106_250_000 * 16: a window start
    assert signer.reuse_s == 15
    first = signer.token("/invoke/S/h", "a")
    signer._clock.now = 1_700_000_015.999  # type: ignore[attr-defined]
    assert signer.token("/invoke/S/h", "a") is first
    assert signer.token("/invoke/S/h", "b") != first
    assert signer.token("/invoke/S/other", "a") != first
    # still valid at the SDK (no leeway there): nbf in the past, most of exp ahead
    claims = _decode(first.split(".")[1])
    assert claims["nbf"] <= 1_700_000_015 and claims["exp"] - 1_700_000_015 >= 45
    signer._clock.now = 1_700_000_016.0  # type: ignore[attr-defined]
    fresh = signer.token("/invoke/S/h", "a")
    assert _decode(fresh.split(".")[1])["iat"] == 1_700_000_016
    assert signer._sign("/invoke/S/h", "a", 1_700_000_016) == fresh


def test_a_short_leeway_reuses_a_token_within_its_second_only() -> None:
    signer = _signer(expiration_ms=3_000, now=1_700_000_000.0)
    assert signer.reuse_s == 0
    first = signer.token("/discover")
    signer._clock.now = 1_700_000_000.999  # type: ignore[attr-defined]
    assert signer.token("/discover") is first  # the bytes a new signature would give
    assert signer._sign("/discover", None, 1_700_000_000) == first
    signer._clock.now = 1_700_000_001.0  # type: ignore[attr-defined]
    assert _decode(signer.token("/discover").split(".")[1])["iat"] == 1_700_000_001


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("restate_server.request_identity._CACHE_LIMIT", 3)
    signer = _signer()
    for key in "abcdef":
        signer.token("/invoke/O/h", key)
    assert len(signer._cache) == 3
    assert _decode(signer.token("/invoke/O/h", "f").split(".")[1])["sub"] == "f"


# ---- wiring: discovery, startup


async def test_discovery_is_signed_per_attempt() -> None:
    signer = _signer(now=1_700_000_000.5)
    seen: list[dict[str, str]] = []
    manifest = json.dumps(
        {
            "protocolMode": "BIDI_STREAM",
            "minProtocolVersion": 5,
            "maxProtocolVersion": 6,
            "services": [],
        }
    ).encode()
    content_type = "application/vnd.restate.endpointmanifest.v4+json"

    async def http_get(
        url: str, headers: list[tuple[str, str]], use_http_11: bool
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        seen.append(dict(headers))
        signer._clock.now += 16  # type: ignore[attr-defined]  # past the reuse window
        if len(seen) == 1:
            return 503, [], b"busy"
        return 200, [("content-type", content_type)], manifest

    await discover(
        "http://127.0.0.1:9080/mount/",
        http_get=http_get,
        retry_delays=(0.0,),
        request_signer=signer,
    )
    assert len(seen) == 2
    claims = [_decode(h[JWT_HEADER].split(".")[1]) for h in seen]
    assert [c["aud"] for c in claims] == ["/discover", "/discover"]
    assert claims[1]["iat"] == claims[0]["iat"] + 16
    assert all(h[SCHEME_HEADER] == "v1" for h in seen)


async def test_discovery_without_a_key_sends_no_identity() -> None:
    seen: list[dict[str, str]] = []

    async def http_get(
        url: str, headers: list[tuple[str, str]], use_http_11: bool
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        seen.append(dict(headers))
        return 401, [], b"Unauthorized"

    with pytest.raises(Exception, match="401 Unauthorized"):
        await discover("http://127.0.0.1:9080/", http_get=http_get, retry_delays=())
    assert SCHEME_HEADER not in seen[0] and JWT_HEADER not in seen[0]


def test_the_server_reads_the_configured_key(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(PRIVATE_KEY)
    env = {
        "RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE": str(path),
        "RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_EXPIRATION": "5min",
    }
    signer = request_signer_of(load_config(None, env, {}))
    assert signer is not None
    assert (signer.kid, signer.leeway_s) == (KID, 300)
    assert request_signer_of(load_config(None, {}, {})) is None


def test_the_server_does_not_start_with_a_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(PUBLIC_KEY)
    env = {"RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE": str(path)}
    with pytest.raises(RequestIdentityKeyError, match="Failed to read request identity"):
        request_signer_of(load_config(None, env, {}))


def test_without_a_key_cryptography_is_not_imported() -> None:
    code = (
        "import sys\n"
        "from restate_server.config import load_config\n"
        "from restate_server.server import request_signer_of\n"
        "import restate_server.main\n"
        "assert request_signer_of(load_config(None, {}, {})) is None\n"
        "print('cryptography' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
