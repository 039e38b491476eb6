"""The admin API client: version negotiation, JSON requests, and ``/query`` in both forms.

Like the real CLI it asks ``GET /version`` first and then sends everything under
``/v{n}``, ``n`` the highest admin API version both sides speak (4 for 1.7.x). It is
synchronous (one request at a time) and uses only the standard library.
"""

from __future__ import annotations

import http.client
import json
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from restate_cli import __version__
from restate_cli.errors import ApiError, CliError, Unreachable

SUPPORTED_API_VERSIONS = (2, 3, 4)
USER_AGENT = f"restate-cli-py/{__version__}"
JSON_TYPE = "application/json"
ARROW_TYPE = "application/vnd.apache.arrow.stream"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes
    url: str

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise CliError(f"{self.url} answered {self.status} with invalid JSON: {exc}") from exc


@dataclass(frozen=True)
class ServerVersion:
    """``GET /version``; ``api_prefix`` is ``/v4`` (or empty when it could not be told)."""

    version: str | None
    min_admin_api_version: int | None
    max_admin_api_version: int | None
    ingress_endpoint: str | None
    api_prefix: str
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[dict[str, Any]]


def error_message(response: HttpResponse) -> str:
    """The server's ``message`` (JSON errors), else its text body."""
    if not response.body:
        return ""
    if response.content_type.startswith(JSON_TYPE):
        try:
            body = json.loads(response.body)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return body["message"]
    return response.body.decode(errors="replace").strip()


def _choose_api_version(server_min: int | None, server_max: int | None) -> int | None:
    if server_max is None:
        return None
    candidates = [
        v
        for v in SUPPORTED_API_VERSIONS
        if v <= server_max and (server_min is None or v >= server_min)
    ]
    return max(candidates) if candidates else None


class AdminClient:
    def __init__(
        self,
        base_url: str,
        *,
        auth_token: str | None = None,
        connect_timeout: float = 3.0,
        request_timeout: float = 13.0,
        insecure: bool = False,
    ) -> None:
        parts = urlsplit(base_url if "://" in base_url else f"http://{base_url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"invalid admin URL {base_url!r}")
        self.base_url = base_url
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._base_path = parts.path.rstrip("/")
        self._auth_token = auth_token
        self._connect_timeout = connect_timeout
        self._request_timeout = request_timeout
        self._insecure = insecure
        self._version: ServerVersion | None = None

    @property
    def display_url(self) -> str:
        return f"{self._scheme}://{self._host}:{self._port}{self._base_path}/"

    # ---- transport ----------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            context = ssl.create_default_context()
            if self._insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._connect_timeout, context=context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)

    def raw_request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        accept: str = "*/*",
        content_type: str | None = None,
    ) -> HttpResponse:
        """One request to ``path`` (already prefixed); network failures raise ``Unreachable``."""
        url = f"{self._scheme}://{self._host}:{self._port}{self._base_path}{path}"
        headers = {"accept": accept, "user-agent": USER_AGENT}
        if self._auth_token:
            headers["authorization"] = f"Bearer {self._auth_token}"
        if content_type is not None:
            headers["content-type"] = content_type
        conn = self._connection()
        try:
            conn.connect()
            if conn.sock is not None:
                conn.sock.settimeout(self._request_timeout)
            conn.request(method, self._base_path + path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return HttpResponse(
                response.status,
                response.reason,
                {k.lower(): v for k, v in response.getheaders()},
                data,
                url,
            )
        except TimeoutError as exc:
            raise Unreachable(self.display_url, f"timed out: {exc}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(self.display_url, str(exc) or type(exc).__name__) from exc
        finally:
            conn.close()

    # ---- version negotiation --------------------------------------------------------------

    def server_version(self) -> ServerVersion:
        if self._version is None:
            self._version = self._negotiate()
        return self._version

    def _negotiate(self) -> ServerVersion:
        response = self.raw_request("GET", "/version")
        body: Any = None
        if response.status == 200:
            try:
                body = response.json()
            except CliError:
                body = None
        if not isinstance(body, dict):
            print(
                f"Warning: could not verify the admin API version of {self.display_url} "
                f"(GET /version answered {response.status}); using unversioned paths.",
                file=sys.stderr,
            )
            return ServerVersion(None, None, None, None, "", {})
        low, high = body.get("min_admin_api_version"), body.get("max_admin_api_version")
        chosen = _choose_api_version(low, high)
        if chosen is None:
            raise CliError(
                f"the server at {self.display_url} supports admin API versions "
                f"[{low}, {high}], this CLI supports {list(SUPPORTED_API_VERSIONS)}"
            )
        return ServerVersion(
            body.get("version"),
            low,
            high,
            body.get("ingress_endpoint"),
            f"/v{chosen}",
            body,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        accept: str = "*/*",
        ok: tuple[int, ...] = (),
    ) -> HttpResponse:
        """A request under the negotiated prefix; error statuses raise ``ApiError``
        unless listed in ``ok``."""
        full = self.server_version().api_prefix + path
        if params:
            full += "?" + urlencode(params)
        body = None
        content_type = None
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            content_type = JSON_TYPE
        response = self.raw_request(
            method, full, body=body, accept=accept, content_type=content_type
        )
        if response.status >= 400 and response.status not in ok:
            raise ApiError(response.status, response.reason, error_message(response), response.url)
        return response

    def get_json(self, path: str) -> Any:
        return self.request("GET", path).json()

    # ---- /query -------------------------------------------------------------------------

    def query_json(self, sql: str) -> list[dict[str, Any]]:
        """JSON rows (``accept: application/json``), as the real CLI's internal queries."""
        response = self.request("POST", "/query", json_body={"query": sql}, accept=JSON_TYPE)
        if not response.content_type.startswith(JSON_TYPE):
            raise CliError(
                f"/query answered {response.content_type or 'no content type'}, "
                "expected application/json"
            )
        body = response.json() or {}
        rows = body.get("rows", []) if isinstance(body, dict) else []
        return [row for row in rows if isinstance(row, dict)]

    def query(self, sql: str) -> QueryResult:
        """Arrow IPC (``accept: */*``), as ``restate sql`` and the count queries; a JSON
        answer is accepted too."""
        response = self.request("POST", "/query", json_body={"query": sql}, accept="*/*")
        if response.content_type.startswith(JSON_TYPE):
            body = response.json() or {}
            rows = [r for r in body.get("rows", []) if isinstance(r, dict)]
            columns: list[str] = []
            for row in rows:
                columns.extend(k for k in row if k not in columns)
            return QueryResult(columns, rows)
        from restate_cli.arrow_rows import decode_stream, table_rows

        try:
            table = decode_stream(response.body)
        except Exception as exc:  # pyarrow raises its own error types
            raise CliError(f"could not decode the Arrow answer of /query: {exc}") from exc
        return QueryResult(list(table.column_names), table_rows(table))

    def query_count(self, sql: str) -> int:
        """Column 0 of the first row of an Arrow answer (``SELECT COUNT(…)``)."""
        result = self.query(sql)
        if not result.rows or not result.columns:
            return 0
        value = result.rows[0].get(result.columns[0], 0)
        return int(value or 0)


def path_segment(value: str) -> str:
    """A path segment (service names, ids) percent-encoded."""
    return quote(value, safe="")
