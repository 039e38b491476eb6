"""Service-protocol and endpoint-manifest versions, content types, negotiation."""

from __future__ import annotations

MIN_SUPPORTED = 5
MAX_SUPPORTED = 7
DEFAULT_MAX = 6  # what the real server picks unless V7 is enabled

MANIFEST_VERSIONS = (1, 2, 3, 4)
DISCOVERY_ACCEPT = ", ".join(
    f"application/vnd.restate.endpointmanifest.v{v}+json" for v in MANIFEST_VERSIONS
)


def invocation_content_type(version: int) -> str:
    return f"application/vnd.restate.invocation.v{version}"


def parse_invocation_content_type(content_type: str | None) -> int | None:
    prefix = "application/vnd.restate.invocation.v"
    if not content_type or not content_type.startswith(prefix):
        return None
    rest = content_type[len(prefix) :].split(";", 1)[0].strip()
    return int(rest) if rest.isdigit() else None


def manifest_content_type(version: int) -> str:
    return f"application/vnd.restate.endpointmanifest.v{version}+json"


def parse_manifest_content_type(content_type: str | None) -> int | None:
    for version in MANIFEST_VERSIONS:
        if content_type == manifest_content_type(version):
            return version
    return None


def choose_protocol_version(
    deployment_min: int, deployment_max: int, enable_v7: bool = False
) -> int | None:
    """The version the server speaks with a deployment, or None if there is none."""
    server_max = MAX_SUPPORTED if enable_v7 else DEFAULT_MAX
    if deployment_min > server_max or deployment_max < MIN_SUPPORTED:
        return None
    return min(deployment_max, server_max)
