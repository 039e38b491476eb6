"""Declaring services, virtual objects and workflows, and their handlers."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeVar

from restate_sdk.retry import InvocationRetryPolicy
from restate_sdk.serde import DefaultSerde, json_schema_for, serde_for

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
HandlerKind = Literal["exclusive", "shared", "workflow"]


@dataclass
class HandlerOptions:
    inactivity_timeout: timedelta | None = None
    abort_timeout: timedelta | None = None
    journal_retention: timedelta | None = None
    idempotency_retention: timedelta | None = None
    workflow_retention: timedelta | None = None
    ingress_private: bool | None = None
    enable_lazy_state: bool | None = None
    invocation_retry_policy: InvocationRetryPolicy | None = None


@dataclass
class HandlerInfo:
    """Everything the endpoint needs to know about one handler."""

    service_name: str
    service_kind: str  # "SERVICE" | "VIRTUAL_OBJECT" | "WORKFLOW"
    name: str
    kind: HandlerKind | None
    fn: Callable[..., Awaitable[Any]]
    has_input: bool
    input_serde: Any
    output_serde: Any
    accept: str
    content_type: str
    input_type: Any
    output_type: Any
    documentation: str | None
    metadata: dict[str, str] | None
    options: HandlerOptions

    def serialize_input(self, arg: Any) -> bytes:
        """The request body for a call of this handler (empty when it takes no input)."""
        return self.input_serde.serialize(arg) if self.has_input else b""


class _ServiceBase:
    kind = "SERVICE"

    def __init__(
        self,
        name: str,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        inactivity_timeout: timedelta | None = None,
        abort_timeout: timedelta | None = None,
        journal_retention: timedelta | None = None,
        idempotency_retention: timedelta | None = None,
        ingress_private: bool | None = None,
        invocation_retry_policy: InvocationRetryPolicy | None = None,
        enable_lazy_state: bool | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.metadata = metadata
        self.options = HandlerOptions(
            inactivity_timeout=inactivity_timeout,
            abort_timeout=abort_timeout,
            journal_retention=journal_retention,
            idempotency_retention=idempotency_retention,
            ingress_private=ingress_private,
            enable_lazy_state=enable_lazy_state,
            invocation_retry_policy=invocation_retry_policy,
        )
        self.handlers: dict[str, HandlerInfo] = {}

    def _register(
        self,
        fn: Callable[..., Awaitable[Any]],
        *,
        name: str | None,
        kind: HandlerKind | None,
        accept: str,
        content_type: str,
        input_serde: Any,
        output_serde: Any,
        metadata: dict[str, str] | None,
        options: HandlerOptions,
    ) -> None:
        handler_name = name or fn.__name__
        if handler_name in self.handlers:
            raise ValueError(f"handler '{handler_name}' is declared twice in '{self.name}'")
        signature = inspect.signature(fn, eval_str=True)
        params = list(signature.parameters.values())
        if not params:
            raise ValueError(f"handler '{handler_name}' must take the context as first argument")
        if len(params) > 2:
            raise ValueError(f"handler '{handler_name}' takes at most one input argument")
        has_input = len(params) == 2
        hints = typing.get_type_hints(fn)
        input_type = hints.get(params[1].name) if has_input else None
        output_type = hints.get("return")
        if input_serde is None:
            input_serde = serde_for(input_type) if input_type is not None else DefaultSerde()
        if output_serde is None:
            output_serde = serde_for(output_type) if output_type is not None else DefaultSerde()
        info = HandlerInfo(
            service_name=self.name,
            service_kind=self.kind,
            name=handler_name,
            kind=kind,
            fn=fn,
            has_input=has_input,
            input_serde=input_serde,
            output_serde=output_serde,
            accept=accept,
            content_type=content_type,
            input_type=input_type,
            output_type=output_type,
            documentation=inspect.getdoc(fn),
            metadata=metadata,
            options=options,
        )
        self.handlers[handler_name] = info
        fn.__restate_handler__ = info  # type: ignore[attr-defined]

    def _decorator(self, kind: HandlerKind | None, **kwargs: Any) -> Callable[[F], F]:
        options = HandlerOptions(
            inactivity_timeout=kwargs.pop("inactivity_timeout", None),
            abort_timeout=kwargs.pop("abort_timeout", None),
            journal_retention=kwargs.pop("journal_retention", None),
            idempotency_retention=kwargs.pop("idempotency_retention", None),
            workflow_retention=kwargs.pop("workflow_retention", None),
            ingress_private=kwargs.pop("ingress_private", None),
            enable_lazy_state=kwargs.pop("enable_lazy_state", None),
            invocation_retry_policy=kwargs.pop("invocation_retry_policy", None),
        )

        def register(fn: F) -> F:
            self._register(fn, kind=kind, options=options, **kwargs)
            return fn

        return register


def _handler_args(
    name: str | None,
    accept: str,
    content_type: str,
    input_serde: Any,
    output_serde: Any,
    metadata: dict[str, str] | None,
) -> dict[str, Any]:
    return {
        "name": name,
        "accept": accept,
        "content_type": content_type,
        "input_serde": input_serde,
        "output_serde": output_serde,
        "metadata": metadata,
    }


class Service(_ServiceBase):
    """Stateless handlers with unlimited concurrency."""

    kind = "SERVICE"

    def handler(
        self,
        name: str | None = None,
        *,
        accept: str = "application/json",
        content_type: str = "application/json",
        input_serde: Any = None,
        output_serde: Any = None,
        metadata: dict[str, str] | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        args = _handler_args(name, accept, content_type, input_serde, output_serde, metadata)
        return self._decorator(None, **args, **options)


class VirtualObject(_ServiceBase):
    """A keyed actor: state per key; exclusive handlers run one at a time per key."""

    kind = "VIRTUAL_OBJECT"

    def handler(
        self,
        name: str | None = None,
        kind: Literal["exclusive", "shared"] = "exclusive",
        *,
        accept: str = "application/json",
        content_type: str = "application/json",
        input_serde: Any = None,
        output_serde: Any = None,
        metadata: dict[str, str] | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        args = _handler_args(name, accept, content_type, input_serde, output_serde, metadata)
        return self._decorator(kind, **args, **options)


class Workflow(_ServiceBase):
    """A keyed object whose ``main`` handler runs exactly once per key."""

    kind = "WORKFLOW"

    def main(
        self,
        name: str | None = None,
        *,
        accept: str = "application/json",
        content_type: str = "application/json",
        input_serde: Any = None,
        output_serde: Any = None,
        metadata: dict[str, str] | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        args = _handler_args(name, accept, content_type, input_serde, output_serde, metadata)
        return self._decorator("workflow", **args, **options)

    def handler(
        self,
        name: str | None = None,
        *,
        accept: str = "application/json",
        content_type: str = "application/json",
        input_serde: Any = None,
        output_serde: Any = None,
        metadata: dict[str, str] | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        args = _handler_args(name, accept, content_type, input_serde, output_serde, metadata)
        return self._decorator("shared", **args, **options)


AnyService = Service | VirtualObject | Workflow


def handler_info(fn: Callable[..., Any]) -> HandlerInfo:
    """The handler record of a decorated function (for typed calls)."""
    info = getattr(fn, "__restate_handler__", None)
    if not isinstance(info, HandlerInfo):
        raise TypeError(f"{fn!r} is not a Restate handler (decorate it with @svc.handler())")
    return info


def input_schema(info: HandlerInfo) -> Any:
    return json_schema_for(info.input_type) if info.input_type is not None else None


def output_schema(info: HandlerInfo) -> Any:
    return json_schema_for(info.output_type) if info.output_type is not None else None
