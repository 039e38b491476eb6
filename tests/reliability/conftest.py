"""The reliability suite runs real processes, like the end-to-end tests: it shares their
fixtures (servers, SDK endpoints, the Node tools), and adds ``pair``: ours and the real
server side by side, the TS test services registered on both."""

from tests.e2e.conftest import (  # noqa: F401  (fixtures and the log-tail report hook)
    _started,
    e2e_dir,
    py_endpoint,
    pytest_runtest_makereport,
    real_server,
    sdk_endpoint,
    server,
    tools,
    ts_endpoint,
)
from tests.reliability.side_by_side import pair  # noqa: F401  (a fixture)
