"""The benchmark's smoke mode: both servers, both tables, JSON written, in seconds.

CI runs only this tiny mode; the figures themselves are not asserted (see
benchmarks/README.md for measured runs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.node import NodeTools

ROOT = Path(__file__).resolve().parents[2]
ROWS = [
    "greet c1 p50 ms",
    "greet c32 req/s",
    "greet c128 req/s",
    "counter 1000 keys c32 req/s",
    "counter hot key c32 req/s",
    "workflow 3 steps c32 req/s",
    "sleep 100ms c256 req/s",
    "sends accepted/s",
    "sends all completed s",
    "server CPU ms/greet c128",
    "RSS after load MB",
    "disk bytes/invocation",
    "startup s",
]


def test_smoke_run_prints_both_tables_and_writes_json(tools: NodeTools) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "ours" in out and "real" in out and "restate_sdk" in out and "official" in out
    for row in ROWS:
        assert out.count(row) == 2, row  # once per table
    payload = json.loads((ROOT / "benchmarks" / "results" / "smoke.json").read_text())
    assert {row["metric"] for row in payload["rows"]} >= set(ROWS)
    assert set(payload["rounds"]) == {"ours", "real"}
    for rounds in payload["rounds"].values():
        assert rounds[0]["sends"]["accept_errors"] == 0
        assert rounds[0]["sends"]["completed"] == 100  # smoke: 1 % of 10,000 sends, all ran


def test_query_benchmark_smoke_runs_on_both_servers(tools: NodeTools) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.query", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((ROOT / "benchmarks/results/query-smoke.json").read_text())
    assert set(results) == {"ours", "real"}
    for which, out in results.items():
        assert out["server"] == which
        assert set(out["cli"]) == {
            "restate invocations describe ID",
            "restate invocations list",
            "restate invocations list --all --limit 100",
        }
        assert out["statements_ms"]["list: count of first 50000"]["median"] > 0
    assert "(the real restate-server 1.7.12)" in done.stdout
