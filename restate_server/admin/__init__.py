"""Admin API (port 9070): deployments, services, invocations, health, version, OpenAPI."""

from restate_server.admin.app import AdminState, create_admin_handler
from restate_server.admin.invocations import InvocationAdmin, InvocationOutcome

__all__ = ["AdminState", "InvocationAdmin", "InvocationOutcome", "create_admin_handler"]
