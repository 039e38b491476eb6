"""Tracing off (the default) costs nothing: OpenTelemetry is never imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from restate_server.config.model import Config
from restate_server.tracing import start_tracing
from restate_server.tracing.endpoint import TracingSetupError


def test_without_an_endpoint_nothing_imports_opentelemetry() -> None:
    # a fresh interpreter: other tests in this process may have imported it
    code = textwrap.dedent(
        """
        import sys
        import restate_server.main, restate_server.server
        from restate_server.config.loader import load_config
        config = load_config(None, {}, {})
        # not even our own tracing modules are loaded by the server's modules
        print(sorted(m for m in sys.modules if m.startswith("restate_server.tracing")))
        from restate_server.tracing import start_tracing
        assert start_tracing(config, "1.7.12") is None
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("opentelemetry", "grpc"))
        print(loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "[]"]


def test_a_bad_endpoint_is_refused_before_anything_starts() -> None:
    with pytest.raises(TracingSetupError):
        start_tracing(Config(tracing_endpoint="localhost:4317"), "1.7.12")


def test_the_services_endpoint_overrides_the_shared_one() -> None:
    config = Config(tracing_endpoint="bogus", tracing_services_endpoint="http://127.0.0.1:1")
    # "bogus" alone would be refused; the gRPC exporter connects lazily: no socket yet
    tracer = start_tracing(config, "1.7.12")
    assert tracer is not None
    tracer.shutdown(timeout_s=1.0)
