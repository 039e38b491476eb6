"""Our SDK runs the very code written for the official one (tests/e2e/py_services/app.py,
``TEST_SDK`` picks the import), and both describe it with the same manifest."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.support.endpoints import PyEndpoint


def _shape(manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        service["name"]: (
            service["ty"],
            sorted((h["name"], h.get("ty")) for h in service["handlers"]),
        )
        for service in manifest["services"]
    }


def test_both_sdks_serve_the_same_services_from_one_module(
    py_endpoint: Callable[..., PyEndpoint], sdk_endpoint: Callable[..., PyEndpoint]
) -> None:
    official = py_endpoint().discover()
    ours = sdk_endpoint().discover()
    assert official.status == ours.status == 200
    assert ours.headers["x-restate-server"].startswith("restate-sdk-python-pure/")
    assert official.headers["x-restate-server"].startswith("restate-sdk-python/")
    official_shape = _shape(json.loads(official.body))
    assert official_shape == _shape(json.loads(ours.body))
    assert {"Greeter", "Counter", "Steps", "Sleeper"} <= set(official_shape)
