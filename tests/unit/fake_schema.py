"""A tiny schema for state-machine tests: services with handler kinds and retention."""

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
class FakeTargetInfo:
    idempotency_retention_ms: int = 86_400_000
    journal_retention_ms: int = 0
    workflow_completion_retention_ms: int = 86_400_000


class FakeSchema:
    def __init__(self) -> None:
        self.services: dict[str, FakeService] = {}
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
