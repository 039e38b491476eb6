"""Discovery: ``GET {uri}/discover`` on an SDK endpoint, checked like the real server does.

The HTTP exchange is injected (``http_get``) so the server can route it through its
HTTP/2 pool (h2c with prior knowledge) or HTTP/1.1, and tests can fake it. Failures
raise ``DiscoveryError`` with the real server's code and message; transient ones
(connection errors, 408/429/5xx) are retried a few times, so a refused connection
still fails within about two seconds.
"""

from __future__ import annotations

import asyncio
import http
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from restate_server.schema import manifest
from restate_server.schema.errors import DiscoveryError, TransportError

if TYPE_CHECKING:
    from restate_server.request_identity import RequestSigner

Headers = list[tuple[str, str]]
# (url, request headers, use_http_11) -> (status, response headers, body)
HttpGet = Callable[[str, Headers, bool], Awaitable[tuple[int, Headers, bytes]]]

# the service protocol versions new deployments may use (the real server's 5..7)
MIN_DISCOVERABLE_PROTOCOL_VERSION = 5
MAX_DISCOVERABLE_PROTOCOL_VERSION = 7
_MAX_PROTOCOL_VERSION_VALUE = 2**31 - 1
# the real server: exponential from 100 ms, factor 2, 4 retries (about 1.5 s in total)
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (0.1, 0.2, 0.4, 0.8)
_RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# TS SDK <= 1.2 advertised a wrong max protocol version; the real server caps it to 1
_TS_SDK_BAD_MAX = tuple(f"restate-sdk-typescript/1.{minor}." for minor in (0, 1, 2))
# the audience of signed discovery requests: the path below the deployment URI
DISCOVER_PATH = "/discover"


class DiscoveryResult(msgspec.Struct, kw_only=True):
    protocol_type: str  # "BidiStream" | "RequestResponse"
    http_version: str  # "HTTP/2.0" | "HTTP/1.1"
    min_protocol_version: int
    max_protocol_version: int
    sdk_version: str | None
    manifest_version: int
    services: list[manifest.Service]


def normalize_uri(uri: str) -> str:
    """The form the real server shows: an empty path becomes ``/``, the rest is kept."""
    parts = urlsplit(uri)
    if parts.path:
        return uri
    rest = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}/{rest}"


def discover_url(uri: str) -> str:
    """``{base}/discover`` with exactly one ``/`` between, query string kept."""
    parts = urlsplit(uri)
    path = parts.path.rstrip("/") + "/discover"
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{path}{query}"


def _format_headers(headers: Sequence[tuple[str, str]]) -> str:
    # Rust's HeaderMap debug form, which the real server prints
    inner = ", ".join(f'"{k.lower()}": "{v}"' for k, v in headers)
    return "{" + inner + "}"


def _status_text(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} <unknown status code>"


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _bad_response(detail: str) -> DiscoveryError:
    return DiscoveryError(f"received a bad response from the SDK: {detail}", code="META0013")


async def _fetch(
    uri: str,
    url: str,
    headers: list[tuple[str, str]],
    use_http_11: bool,
    http_get: HttpGet,
    retry_delays: Sequence[float],
    request_signer: RequestSigner | None = None,
) -> tuple[list[tuple[str, str]], bytes]:
    delays = iter(retry_delays)
    while True:
        attempt_headers = headers
        if request_signer is not None:
            # signed per attempt, as the real server does: a retry gets a fresh token
            attempt_headers = headers + request_signer.headers(DISCOVER_PATH)
        try:
            return await _attempt(uri, url, attempt_headers, use_http_11, http_get)
        except DiscoveryError as error:
            delay = next(delays, None) if error.retryable else None
            if delay is None:
                raise
        await asyncio.sleep(delay)


async def _attempt(
    uri: str, url: str, headers: list[tuple[str, str]], use_http_11: bool, http_get: HttpGet
) -> tuple[list[tuple[str, str]], bytes]:
    try:
        status, response_headers, body = await http_get(url, headers, use_http_11)
    except TransportError as exc:
        raise DiscoveryError(
            f"error when calling '{uri}': {exc}", code=exc.code, retryable=exc.retryable
        ) from None
    except OSError as exc:
        raise DiscoveryError(
            f"error when calling '{uri}': {describe_transport_error(exc, use_http_11)}",
            retryable=True,
        ) from None
    if 200 <= status < 300:
        return response_headers, body
    text = body.decode("utf-8", "replace")
    shown = _format_headers(response_headers)
    if status == 404:
        raise DiscoveryError(
            "got status code '404'. Make sure the provided URI has the correct path where the "
            f"Restate SDK endpoint is mounted. Response headers: {shown}. Body: {text}"
        )
    raise DiscoveryError(
        f"got status code '{_status_text(status)}'. Response headers: {shown}. Body: {text}",
        retryable=status in _RETRYABLE_STATUSES,
    )


def describe_transport_error(exc: BaseException, use_http_11: bool) -> str:
    """The real server's wording for a request that did not get an answer."""
    if isinstance(exc, OSError) and exc.errno is not None:
        # asyncio puts the address into strerror; the real server prints the libc text
        cause = f"{os.strerror(exc.errno)} (os error {exc.errno})"
    elif isinstance(exc, TimeoutError):
        cause = "operation timed out"
    else:
        cause = str(exc) or type(exc).__name__
    if use_http_11:
        return (
            "unable to reach the remote endpoint.\nReason: client error (Connect) caused by: "
            f"tcp connect error caused by: {cause}"
        )
    return f"h2 pool connection error: {cause}"


async def discover(
    uri: str,
    *,
    use_http_11: bool = False,
    additional_headers: dict[str, str] | None = None,
    http_get: HttpGet | None = None,
    cluster_name: str = "localcluster",
    retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
    request_signer: RequestSigner | None = None,
) -> DiscoveryResult:
    """Fetch and check the manifest of the endpoint at ``uri`` (a normalised base URI)."""
    if http_get is None:
        http_get = default_http_get
    headers = [("accept", manifest.MANIFEST_ACCEPT), ("x-restate-cluster-name", cluster_name)]
    headers.extend((additional_headers or {}).items())
    response_headers, body = await _fetch(
        uri, discover_url(uri), headers, use_http_11, http_get, retry_delays, request_signer
    )

    content_type = _header(response_headers, "content-type")
    if content_type is None:
        raise _bad_response(
            "No content type header was specified. Expected one of "
            f"'\"{manifest.MANIFEST_ACCEPT}\"' content type."
        )
    manifest_version = manifest.MANIFEST_CONTENT_TYPES.get(content_type)
    if manifest_version is None:
        raise _bad_response(
            f'Bad content type header: "{content_type}". Expected one of '
            f"'\"{manifest.MANIFEST_ACCEPT}\"'"
        )
    try:
        endpoint = manifest.decode_manifest(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DiscoveryError(
            f"received a bad response from the SDK that cannot be decoded: {exc}. "
            f"Discovery response: {body.decode('utf-8', 'replace')}",
            code=None,
        ) from None

    if endpoint.protocol_mode is None:
        raise _bad_response("missing protocol mode")
    protocol_type = "BidiStream" if endpoint.protocol_mode == "BIDI_STREAM" else "RequestResponse"
    min_version, max_version = endpoint.min_protocol_version, endpoint.max_protocol_version
    if min_version > _MAX_PROTOCOL_VERSION_VALUE:
        raise _bad_response(f"min protocol version must be in [1, {_MAX_PROTOCOL_VERSION_VALUE}]")
    if max_version > _MAX_PROTOCOL_VERSION_VALUE:
        raise _bad_response(f"max protocol version must be in [1, {_MAX_PROTOCOL_VERSION_VALUE}]")
    if min_version > max_version:
        raise _bad_response(
            "Expected min protocol version to be <= max protocol version. Received min "
            f"protocol version '{min_version}', max protocol version '{max_version}'"
        )
    sdk_version = _header(response_headers, "x-restate-server")
    if sdk_version is not None and sdk_version.startswith(_TS_SDK_BAD_MAX):
        max_version = 1
    if not (
        min_version <= MAX_DISCOVERABLE_PROTOCOL_VERSION
        and max_version >= MIN_DISCOVERABLE_PROTOCOL_VERSION
    ):
        raise DiscoveryError(
            f"unsupported service protocol versions: [{min_version}, {max_version}]. Supported "
            f"versions by this runtime are [{MIN_DISCOVERABLE_PROTOCOL_VERSION}, "
            f"{MAX_DISCOVERABLE_PROTOCOL_VERSION}]. Please upgrade the SDK and try registering "
            "again.",
            code="META0012",
        )
    # h2c with prior knowledge unless HTTP/1.1 was asked for; https goes through the
    # HTTP/1.1 client here (no ALPN h2 in the default client)
    http_version = "HTTP/1.1" if use_http_11 or urlsplit(uri).scheme == "https" else "HTTP/2.0"
    return DiscoveryResult(
        protocol_type=protocol_type,
        http_version=http_version,
        min_protocol_version=min_version,
        max_protocol_version=max_version,
        sdk_version=sdk_version,
        manifest_version=manifest_version,
        services=endpoint.services,
    )


# --- the default HTTP exchange

_REQUEST_TIMEOUT_S = 10.0


async def default_http_get(
    url: str,
    headers: list[tuple[str, str]],
    use_http_11: bool,
    *,
    h2_pool: Any = None,
    timeout: float = _REQUEST_TIMEOUT_S,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """GET over HTTP/1.1 (aiohttp) or h2c with prior knowledge (``restate_server.http2``)."""
    parts = urlsplit(url)
    if use_http_11 or parts.scheme != "http":
        return await asyncio.wait_for(_http1_get(url, headers), timeout)
    return await asyncio.wait_for(_h2c_get(url, headers, h2_pool), timeout)


async def _http1_get(
    url: str, headers: list[tuple[str, str]]
) -> tuple[int, list[tuple[str, str]], bytes]:
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.get(
                url,
                headers=headers,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                allow_redirects=False,
            ) as response,
        ):
            body = await response.read()
            return response.status, list(response.headers.items()), body
    except aiohttp.ClientConnectorError as exc:
        raise TransportError(describe_transport_error(exc.os_error, True)) from exc
    except aiohttp.ClientResponseError as exc:
        # the answer is not HTTP/1.1 (a bad status line or headers): asking again will not
        # help, and the parser's message quotes what it got (kilobytes of it)
        raise TransportError(
            "the endpoint's answer is not HTTP/1.1 "
            f"({_first_line(exc.message)}); server possibly supports only HTTP/2",
            retryable=False,
        ) from exc
    except aiohttp.ClientError as exc:
        raise TransportError(str(exc) or type(exc).__name__) from exc


def _first_line(text: str, limit: int = 80) -> str:
    line = text.strip().split("\n", 1)[0].rstrip(":")
    return line if len(line) <= limit else line[:limit] + "..."


async def _h2c_get(
    url: str, headers: list[tuple[str, str]], h2_pool: Any
) -> tuple[int, list[tuple[str, str]], bytes]:
    if h2_pool is None:
        # no shared pool given: a pool of its own for this one request (discovery is rare)
        from restate_server.http2 import H2Pool

        own_pool = H2Pool()
        try:
            return await _h2c_get(url, headers, own_pool)
        finally:
            await own_pool.close()
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        stream = await h2_pool.open_stream(origin, "GET", path, headers)
        stream.end()
        status, response_headers = await stream.response()
        chunks = []
        while chunk := await stream.read():
            chunks.append(chunk)
        return status, list(response_headers), b"".join(chunks)
    except TransportError:
        raise
    except Exception as exc:
        if _looks_like_http11_only(exc):
            raise TransportError(
                "server possibly supports only HTTP1.1, consider discovery with --use-http1.1.",
                code="META0014",
                retryable=False,
            ) from exc
        if isinstance(exc, OSError):
            raise
        raise TransportError(f"h2 pool connection error: {exc}") from exc


def _looks_like_http11_only(exc: BaseException) -> bool:
    """An HTTP/1.1 server answers the h2 preface with text the h2 parser rejects."""
    seen: BaseException | None = exc
    while seen is not None:
        name = type(seen).__name__
        text = str(seen)
        if name in ("FrameTooLargeError", "ProtocolError") or "FRAME_SIZE" in text:
            return True
        if "HTTP/1." in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
