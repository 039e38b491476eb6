"""Security properties (issue 12, item 7) not covered elsewhere: the admin API on its own
bind address, apart from the ingress, and ``/query`` unable to reach the file system.

Covered elsewhere: DDL, DML, COPY and SET refused by ``/query``
(tests/e2e/test_query.py), no request bodies, keys or state values in the logs even at
debug level (tests/e2e/test_logs.py), signed requests to endpoints
(tests/e2e/test_request_identity.py)."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.support.endpoints import TsEndpoint
from tests.support.http import call, request
from tests.support.ports import LOOPBACK, port_accepts
from tests.support.server import RestateServerProcess

ADMIN_HOST = "127.0.0.2"  # loopback too (all of 127/8 is), but not the ingress's address


def test_admin_listens_only_on_its_own_address_and_serves_no_ingress_routes(
    server: Callable[..., RestateServerProcess], ts_endpoint: Callable[..., TsEndpoint]
) -> None:
    srv = server(admin_host=ADMIN_HOST)
    srv.register(ts_endpoint().url)
    assert port_accepts(srv.admin_port, ADMIN_HOST)
    assert not port_accepts(srv.admin_port, LOOPBACK)  # bound to that address only
    assert not port_accepts(srv.ingress_port, ADMIN_HOST)
    # neither port answers the other's routes
    listed = srv.call("/deployments", method="GET")
    assert listed.status == 400 and "dp_" not in listed.text()  # "bad path", as real
    assert call(srv.admin_url, "/Greeter/greet", "x").status == 404
    assert srv.call("/Greeter/greet", "x").json() == "Hello, x!"


def test_query_cannot_read_files(server: Callable[..., RestateServerProcess]) -> None:
    srv = server()
    secret = srv.base_dir / "secret.csv"
    secret.write_text("token\ns3cr3t-value\n")
    for sql in (
        f"SELECT * FROM '{secret}'",  # a path as a table name
        f"CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '{secret}'",
        f"SELECT * FROM read_csv('{secret}')",
    ):
        resp = request(
            "POST",
            srv.admin_url + "/query",
            body=json.dumps({"query": sql}).encode(),
            headers={"content-type": "application/json", "accept": "application/json"},
        )
        # planning errors are 500 as on the real server, refused statements 400
        assert resp.status in (400, 500), (sql, resp.status, resp.text())
        assert "s3cr3t" not in resp.text() and "Datafusion error" in resp.text(), resp.text()
