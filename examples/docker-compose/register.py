"""Registers a deployment with a restate-server once both are up (compose's one-shot step).

    RESTATE_ADMIN_URL=http://restate:9070 SERVICE_URL=http://services:9080 \\
        python register.py

Retries until the admin API accepts the deployment or ``REGISTER_TIMEOUT`` seconds
(default 60) pass; exits 0 when registered, 1 otherwise. Registering the same
endpoint again is accepted by the server, so rerunning it is harmless.
Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

RETRY_EVERY_S = 1.0


def register_once(admin_url: str, service_url: str) -> tuple[bool, str]:
    """(registered, what the server said); False when it is worth trying again."""
    request = urllib.request.Request(
        f"{admin_url.rstrip('/')}/deployments",
        data=json.dumps({"uri": service_url}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read() or b"{}")
            services = ", ".join(s["name"] for s in body.get("services", []))
            return True, f"registered {body.get('id')} with services {services}"
    except urllib.error.HTTPError as error:
        return False, f"{error.code} {error.read().decode(errors='replace')}"
    except OSError as error:
        return False, str(error)


def main() -> int:
    admin_url = os.environ.get("RESTATE_ADMIN_URL", "http://restate:9070")
    service_url = os.environ.get("SERVICE_URL", "http://services:9080")
    deadline = time.monotonic() + float(os.environ.get("REGISTER_TIMEOUT", "60"))
    while True:
        registered, message = register_once(admin_url, service_url)
        if registered:
            print(f"{service_url}: {message}")
            return 0
        if time.monotonic() >= deadline:
            print(f"could not register {service_url} at {admin_url}: {message}", file=sys.stderr)
            return 1
        print(f"waiting for {admin_url} and {service_url}: {message}", file=sys.stderr)
        time.sleep(RETRY_EVERY_S)


if __name__ == "__main__":
    sys.exit(main())
