"""The context API handlers program against (abstract), and durable futures.

The classes mirror the official SDK: ``Context`` for services,
``ObjectSharedContext`` / ``ObjectContext`` for virtual objects,
``WorkflowSharedContext`` / ``WorkflowContext`` for workflows.
"""

from __future__ import annotations

import abc
import random
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from restate_sdk.retry import RunOptions

if TYPE_CHECKING:
    from restate_sdk.invocation import Engine

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - the input type, as in the official SDK
O = TypeVar("O")  # noqa: E741
P = ParamSpec("P")

HandlerFn = Callable[[Any, I], Awaitable[O]] | Callable[[Any], Awaitable[O]]


@dataclass
class Request:
    """Metadata of the invocation being run."""

    id: str
    headers: dict[str, str]
    attempt_headers: dict[str, str]
    body: bytes
    idempotency_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RestateDurableFuture(Generic[T]):
    """A journaled operation's result; await it to get the value.

    Awaiting may suspend the invocation until the server has the result.
    """

    def __init__(
        self, engine: Engine, keys: list[tuple[str, Any]], decode: Callable[[Any], T]
    ) -> None:
        self._engine = engine
        self.keys = keys
        self._decode = decode
        self._value: Any = _UNSET
        self._error: BaseException | None = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._result().__await__()

    async def _result(self) -> T:
        if self._value is _UNSET and self._error is None:
            await self._engine.wait_any([self])
        return self.value()

    def resolve_from(self, notification: Any) -> None:
        """Take the value (or the failure) from the notification that completed it."""
        if self._value is not _UNSET or self._error is not None:
            return
        try:
            self._value = self._decode(notification)
        except BaseException as exc:
            self._error = exc

    def done(self) -> bool:
        return self._value is not _UNSET or self._error is not None

    def value(self) -> T:
        if self._error is not None:
            raise self._error
        if self._value is _UNSET:
            raise RuntimeError("the future has not completed yet")
        return self._value  # type: ignore[no-any-return]


class RestateDurableSleepFuture(RestateDurableFuture[None]):
    pass


class RestateDurableCallFuture(RestateDurableFuture[T]):
    """A call's result, with access to the callee's invocation id."""

    def __init__(
        self,
        engine: Engine,
        keys: list[tuple[str, Any]],
        decode: Callable[[Any], T],
        invocation_id: RestateDurableFuture[str],
    ) -> None:
        super().__init__(engine, keys, decode)
        self._invocation_id = invocation_id

    async def invocation_id(self) -> str:
        return await self._invocation_id

    async def cancel_invocation(self) -> None:
        self._engine.context.cancel_invocation(await self._invocation_id)


class SendHandle:
    """A one-way send: the callee's invocation id, and a way to cancel it."""

    def __init__(self, engine: Engine, invocation_id: RestateDurableFuture[str]) -> None:
        self._engine = engine
        self._invocation_id = invocation_id

    async def invocation_id(self) -> str:
        return await self._invocation_id

    async def cancel_invocation(self) -> None:
        self._engine.context.cancel_invocation(await self._invocation_id)


class DurablePromise(Generic[T]):
    """A named promise of a workflow key; outlives the invocations that use it."""

    def __init__(self, context: WorkflowSharedContext, name: str, serde: Any) -> None:
        self._context = context
        self.name = name
        self._serde = serde

    def value(self) -> RestateDurableFuture[T]:
        return self._context._promise_get(self.name, self._serde)  # type: ignore[attr-defined,no-any-return]

    def __await__(self) -> Generator[Any, None, T]:
        return self.value().__await__()

    def peek(self) -> Awaitable[T | None]:
        return self._context._promise_peek(self.name, self._serde)  # type: ignore[attr-defined,no-any-return]

    def resolve(self, value: T) -> Awaitable[None]:
        return self._context._promise_complete(self.name, self._serde, value, None)  # type: ignore[attr-defined,no-any-return]

    def reject(self, message: str, code: int = 500) -> Awaitable[None]:
        return self._context._promise_complete(self.name, self._serde, None, (code, message))  # type: ignore[attr-defined,no-any-return]


class Context(abc.ABC):
    """What every handler can do."""

    @abc.abstractmethod
    def request(self) -> Request: ...

    @overload
    def run_typed(
        self,
        name: str,
        action: Callable[P, Coroutine[Any, Any, T]],
        options: RunOptions[T] | None = None,
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> RestateDurableFuture[T]: ...

    @overload
    def run_typed(
        self,
        name: str,
        action: Callable[P, T],
        options: RunOptions[T] | None = None,
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> RestateDurableFuture[T]: ...

    @abc.abstractmethod
    def run_typed(
        self,
        name: str,
        action: Callable[P, Any],
        options: RunOptions[Any] | None = None,
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> RestateDurableFuture[Any]:
        """Run a side effect once and journal its result (replays return the journaled one)."""

    @overload
    def run(
        self,
        name: str,
        action: Callable[[], Coroutine[Any, Any, T]],
        serde: Any = None,
        max_attempts: int | None = None,
        max_retry_duration: timedelta | None = None,
        type_hint: Any = None,
        args: tuple[Any, ...] | None = None,
    ) -> RestateDurableFuture[T]: ...

    @overload
    def run(
        self,
        name: str,
        action: Callable[[], T],
        serde: Any = None,
        max_attempts: int | None = None,
        max_retry_duration: timedelta | None = None,
        type_hint: Any = None,
        args: tuple[Any, ...] | None = None,
    ) -> RestateDurableFuture[T]: ...

    @abc.abstractmethod
    def run(
        self,
        name: str,
        action: Callable[[], Any],
        serde: Any = None,
        max_attempts: int | None = None,
        max_retry_duration: timedelta | None = None,
        type_hint: Any = None,
        args: tuple[Any, ...] | None = None,
    ) -> RestateDurableFuture[Any]:
        """Older form of :meth:`run_typed`."""

    @abc.abstractmethod
    def sleep(self, delta: timedelta, name: str | None = None) -> RestateDurableSleepFuture: ...

    @abc.abstractmethod
    def service_call(
        self,
        tpe: HandlerFn[I, O],
        arg: I,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> RestateDurableCallFuture[O]: ...

    @abc.abstractmethod
    def object_call(
        self,
        tpe: HandlerFn[I, O],
        key: str,
        arg: I,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> RestateDurableCallFuture[O]: ...

    @abc.abstractmethod
    def workflow_call(
        self,
        tpe: HandlerFn[I, O],
        key: str,
        arg: I,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> RestateDurableCallFuture[O]: ...

    @abc.abstractmethod
    def service_send(
        self,
        tpe: HandlerFn[I, O],
        arg: I,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle: ...

    @abc.abstractmethod
    def object_send(
        self,
        tpe: HandlerFn[I, O],
        key: str,
        arg: I,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle: ...

    @abc.abstractmethod
    def workflow_send(
        self,
        tpe: HandlerFn[I, O],
        key: str,
        arg: I,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle: ...

    @abc.abstractmethod
    def generic_call(
        self,
        service: str,
        handler: str,
        arg: bytes,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> RestateDurableCallFuture[bytes]: ...

    @abc.abstractmethod
    def generic_send(
        self,
        service: str,
        handler: str,
        arg: bytes,
        key: str | None = None,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle: ...

    @abc.abstractmethod
    def awakeable(
        self, serde: Any = None, type_hint: Any = None
    ) -> tuple[str, RestateDurableFuture[Any]]: ...

    @abc.abstractmethod
    def resolve_awakeable(self, name: str, value: Any, serde: Any = None) -> None: ...

    @abc.abstractmethod
    def reject_awakeable(
        self, name: str, failure_message: str, failure_code: int = 500
    ) -> None: ...

    @abc.abstractmethod
    def cancel_invocation(self, invocation_id: str) -> None: ...

    @abc.abstractmethod
    def attach_invocation(
        self, invocation_id: str, serde: Any = None, type_hint: Any = None
    ) -> RestateDurableFuture[Any]: ...

    @abc.abstractmethod
    def random(self) -> random.Random: ...

    @abc.abstractmethod
    def uuid(self) -> uuid.UUID: ...

    @abc.abstractmethod
    def time(self) -> RestateDurableFuture[float]: ...

    @abc.abstractmethod
    def signal(
        self, name: str, serde: Any = None, type_hint: Any = None
    ) -> RestateDurableFuture[Any]: ...

    @abc.abstractmethod
    def resolve_signal(
        self, invocation_id: str, name: str, value: Any, serde: Any = None
    ) -> None: ...

    @abc.abstractmethod
    def reject_signal(
        self, invocation_id: str, name: str, failure_message: str, failure_code: int = 500
    ) -> None: ...


class ObjectSharedContext(Context):
    """A shared handler of a virtual object: the key and read-only state."""

    @abc.abstractmethod
    def key(self) -> str: ...

    @abc.abstractmethod
    def get(self, name: str, serde: Any = None, type_hint: Any = None) -> Awaitable[Any | None]: ...

    @abc.abstractmethod
    def state_keys(self) -> Awaitable[list[str]]: ...


class ObjectContext(ObjectSharedContext):
    """An exclusive handler of a virtual object: full state access."""

    @abc.abstractmethod
    def set(self, name: str, value: Any, serde: Any = None) -> None: ...

    @abc.abstractmethod
    def clear(self, name: str) -> None: ...

    @abc.abstractmethod
    def clear_all(self) -> None: ...


class WorkflowSharedContext(ObjectSharedContext):
    """A shared workflow handler: read-only state and the workflow's promises."""

    @abc.abstractmethod
    def promise(
        self, name: str, serde: Any = None, type_hint: Any = None
    ) -> DurablePromise[Any]: ...


class WorkflowContext(ObjectContext, WorkflowSharedContext):
    """The workflow's main handler: state and promises."""


class _Unset:
    pass


_UNSET = _Unset()
