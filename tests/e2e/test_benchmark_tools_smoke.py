"""The single-purpose benchmark tools still run: each in its smallest mode, in seconds.

Figures are not asserted (measured runs are in benchmarks/README.md and the docs); what
is checked is that each tool starts what it needs, measures, stops, and writes its JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.node import NodeTools

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_sends_wrk_quick_runs_one_worker_and_independent_servers(
    tools: NodeTools, tmp_path: Path
) -> None:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed: scripts/test.sh installs it")
    out = tmp_path / "sends.json"
    argv = ["benchmarks.sends_wrk", "--quick", "--servers", "ours", "--workers", "1"]
    _run([*argv, "--independent", "2", "--connections", "8", "--out", str(out)], timeout=240)
    payload = json.loads(out.read_text())
    labels = set(payload["runs"])
    assert len(labels) == 2, labels  # one single-process server, two side by side
    for runs in payload["runs"].values():
        assert runs[0]["accepted"] > 0


def test_cluster_engine_quick_measures_jetstream(tmp_path: Path) -> None:
    if shutil.which("nats-server") is None:
        pytest.fail("nats-server is not installed: scripts/test.sh installs it")
    out = tmp_path / "engine.json"
    done = _run(
        ["benchmarks.cluster_engine", "--quick", "--engines", "jetstream", "--out", str(out)],
        timeout=180,
    )
    assert "stale expectation REJECTED (ok)" in done.stdout
    jetstream = json.loads(out.read_text())["engines"]["jetstream"]
    for measurement in ("a_sequential", "b_concurrent", "c_fenced", "d_cas", "f_two_of_three"):
        assert jetstream[measurement]["n"] > 0, measurement


def test_wal_sync_short_run_prints_every_combination() -> None:
    argv = ["benchmarks.wal_sync", "--processes", "1,2", "--recycle", "0,4"]
    done = _run([*argv, "--seconds", "0.5", "--rounds", "1"], timeout=120)
    rows = [line.split() for line in done.stdout.splitlines()[1:] if line.strip()]
    assert [(r[0], r[1]) for r in rows] == [("1", "0"), ("1", "4"), ("2", "0"), ("2", "4")]
    assert all(float(r[2]) > 0 for r in rows)


def test_cluster_benchmark_quick_runs_every_setup(tools: NodeTools, tmp_path: Path) -> None:
    out = tmp_path / "cluster.json"
    done = _run(["benchmarks.cluster", "--quick", "--out", str(out)], timeout=300)
    assert "cluster-3" in done.stdout and "workflow 3 steps c32" in done.stdout
    rows = {row["workload"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"greet c1", "greet c32", "counter 1000 keys c32", "workflow 3 steps c32"}
    for row in rows.values():
        assert row["single"]["log_records_per_request"] == 0  # no engine
        for kind in ("cluster-1", "cluster-3"):
            assert row[kind]["requests"] > 0 and row[kind]["errors"] == 0
            assert row[kind]["log_records_per_request"] >= 1  # every request is in the log
