"""POST /query as the admin router serves it: request checks, answer format by Accept,
the query thread and the read view taken on the loop (no sockets)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from restate_server.admin.app import AdminState, create_admin_handler
from restate_server.http_server import Request, Response
from restate_server.partition.table import PartitionTable
from restate_server.query.service import QueryService, local_views
from restate_server.storage.snapshot import StoreSnapshot
from tests.unit.partition_harness import GREETER, Harness, id_str

# the real server's texts (curl against restate-server 1.7.12)
_SHAPE = "Failed to deserialize the JSON body into the target type: "


class _Registry:
    def list_deployments(self) -> list[Any]:
        return []

    def list_services(self) -> list[Any]:
        return []


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(str(tmp_path / "db"))
    yield h
    h.close()


@pytest.fixture
async def service(harness: Harness) -> AsyncIterator[QueryService]:
    async def snapshot(ranges: list[tuple[bytes, bytes]]) -> StoreSnapshot:
        return harness.store.snapshot(ranges)

    partitions = PartitionTable(1)
    query = QueryService(
        open_view=local_views(snapshot, partitions, lambda: [], _Registry(), "1.7.12"),
        partitions=partitions,
    )
    yield query
    await query.close()


def _post(
    body: bytes, *, accept: str | None = "application/json", ctype: str = "application/json"
) -> Request:
    headers = [(b"content-type", ctype.encode())] if ctype else []
    if accept is not None:
        headers.append((b"accept", accept.encode()))
    return Request("POST", "/v4/query", headers, body)


async def _handle(service: QueryService, request: Request) -> Response:
    state = AdminState(registry=None, discover=None, query=service)  # type: ignore[arg-type]
    return await create_admin_handler(state)(request)


async def test_json_answer(service: QueryService, harness: Harness) -> None:
    invocation_id, _ = harness.invoke(GREETER, completion_retention_ms=1000)
    response = await _handle(
        service, _post(json.dumps({"query": "SELECT id, status FROM sys_invocation"}).encode())
    )
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.body) == {"rows": [{"id": id_str(invocation_id), "status": "ready"}]}


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        "application/vnd.apache.arrow.stream",
        "text/csv",
        "application/json; charset=utf-8",
    ],
)
async def test_any_other_accept_gets_arrow(service: QueryService, accept: str | None) -> None:
    body = json.dumps({"query": "SELECT COUNT(1) FROM sys_invocation"}).encode()
    response = await _handle(service, _post(body, accept=accept))
    assert response.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(response.body).read_all()
    assert table.schema.field(0).name == "count(Int64(1))"
    assert table.column(0).to_pylist() == [0]


async def test_empty_arrow_result_is_schema_only(service: QueryService) -> None:
    body = json.dumps({"query": "SELECT id FROM sys_invocation"}).encode()
    response = await _handle(service, _post(body, accept="*/*"))
    reader = pa.ipc.open_stream(response.body)
    assert reader.schema.names == ["id"] and reader.read_all().num_rows == 0


@pytest.mark.parametrize(
    ("body", "ctype", "status", "text"),
    [
        (
            b'{"query":"SELECT 1"}',
            "text/plain",
            415,
            "Expected request with `Content-Type: application/json`",
        ),
        (
            b"{}",
            "application/json",
            422,
            _SHAPE + "missing field `query` at line 1 column 2",
        ),
        (
            b'{"query": 5}',
            "application/json",
            422,
            _SHAPE + "query: invalid type: integer `5`, expected a string at line 1 column 11",
        ),
        (
            b'{"query":null}',
            "application/json",
            422,
            _SHAPE + "query: invalid type: null, expected a string at line 1 column 13",
        ),
        (b"xx", "application/json", 400, "Failed to parse the request body as JSON"),
    ],
)
async def test_bad_requests(
    service: QueryService, body: bytes, ctype: str, status: int, text: str
) -> None:
    response = await _handle(service, _post(body, ctype=ctype))
    assert response.status == status
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.body.decode().startswith(text)


async def test_query_errors_are_json_messages(service: QueryService) -> None:
    for sql, status in (
        ("SELEC 1", 400),
        ("SELECT nope FROM state", 500),
        ("COPY (SELECT 1) TO '/tmp/x.csv'", 400),
    ):
        response = await _handle(service, _post(json.dumps({"query": sql}).encode()))
        assert response.status == status, response.body
        assert response.headers["content-type"] == "application/json"
        assert list(json.loads(response.body)) == ["message"]
        assert json.loads(response.body)["message"].startswith("Datafusion error: ")


async def test_served_under_every_version_prefix(service: QueryService) -> None:
    body = json.dumps({"query": "SELECT 1"}).encode()
    for path in ("/query", "/v2/query", "/v3/query", "/v4/query"):
        request = Request(
            "POST",
            path,
            [(b"content-type", b"application/json"), (b"accept", b"application/json")],
            body,
        )
        response = await _handle(service, request)
        assert json.loads(response.body) == {"rows": [{"Int64(1)": 1}]}
