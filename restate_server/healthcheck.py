"""``python -m restate_server.healthcheck``: exit 0 when the local server is healthy.

Meant for container health checks. It reads the same configuration as the server
(``RESTATE_CONFIG`` and ``RESTATE_*`` variables), so it asks the admin API on the port
the server really listens on, and needs nothing but the standard library.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from restate_server.config import ConfigError, load_config

TIMEOUT_S = 3.0


def admin_health_url(bind_host: str, port: int) -> str:
    # a wildcard bind is reached on loopback
    if bind_host in ("0.0.0.0", "", "::"):
        bind_host = "127.0.0.1"
    host = f"[{bind_host}]" if ":" in bind_host else bind_host
    return f"http://{host}:{port}/health"


def check(url: str) -> str | None:
    """None when healthy, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return None if response.status == 200 else f"{url} answered {response.status}"
    except urllib.error.HTTPError as error:
        return f"{url} answered {error.code}"
    except OSError as error:
        return f"{url}: {error}"


def main() -> int:
    try:
        config = load_config(None, os.environ)
    except ConfigError as error:
        print(f"healthcheck: {error}", file=sys.stderr)
        return 1
    problem = check(admin_health_url(*config.admin.bind_host_port()))
    if problem is not None:
        print(f"healthcheck: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
