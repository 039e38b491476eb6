"""A tiny schema for state-machine tests: services with handler kinds, retention and
deployments (every service's latest is ``DEFAULT_DEPLOYMENT``, protocols 5..7)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeHandler:
    name: str
    ty: str | None


@dataclass
class FakeService:
    name: str
    ty: str
    handlers: dict[str, FakeHandler] = field(default_factory=dict)


@dataclass
class FakeDeployment:
    id: str
    min_protocol_version: int = 5
    max_protocol_version: int = 7


DEFAULT_DEPLOYMENT = "dp_10UDT2TKPXUQpxbRXeXPJfj"


@dataclass
class FakeTargetInfo:
    idempotency_retention_ms: int = 86_400_000
    journal_retention_ms: int = 0
    workflow_completion_retention_ms: int = 86_400_000


class FakeSchema:
    def __init__(self) -> None:
        self.services: dict[str, FakeService] = {}
        self.deployments = {DEFAULT_DEPLOYMENT: FakeDeployment(DEFAULT_DEPLOYMENT)}
        # service name -> its latest deployment (absent: DEFAULT_DEPLOYMENT)
        self.latest: dict[str, str] = {}
        self.add("Greeter", "Service", {"greet": None})
        self.add("Counter", "VirtualObject", {"add": "Exclusive", "get": "Shared"})
        self.add("Wf", "Workflow", {"run": "Workflow", "signal": "Shared"})

    def add(self, name: str, ty: str, handlers: dict[str, str | None]) -> None:
        self.services[name] = FakeService(
            name, ty, {h: FakeHandler(h, kind) for h, kind in handlers.items()}
        )

    def get_service(self, name: str) -> FakeService | None:
        return self.services.get(name)

    def resolve_invocation_target(self, service: str, handler: str) -> FakeTargetInfo:
        return FakeTargetInfo()

    def get_deployment(self, deployment_id: str) -> FakeDeployment | None:
        return self.deployments.get(deployment_id)

    def latest_deployment_for(self, service: str) -> FakeDeployment | None:
        if service not in self.services:
            return None
        return self.deployments.get(self.latest.get(service, DEFAULT_DEPLOYMENT))
