"""Settings for the whole test run, applied before any test module is imported."""

from __future__ import annotations

import os

# The in-process OTLP collector (tests/support/otlp_collector.py) runs gRPC threads while
# tests fork server and endpoint processes. gRPC's fork handlers then run in the child
# between fork and exec and can abort it (seen in CI: a hypercorn endpoint killed by
# SIGABRT after "epoll_wait error: Bad file descriptor"). The children exec at once and
# need none of that.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
