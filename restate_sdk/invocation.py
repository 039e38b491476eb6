"""Running one attempt of a handler on top of the sans-IO machine.

The :class:`Engine` owns the machine, the handler task, the side-effect (``run``)
tasks and the waiting logic; :class:`ContextImpl` turns context calls into
journal commands. Output bytes are handed to the transport through ``flush``.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import random as random_module
import time
import traceback
import uuid as uuid_module
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from restate_sdk.context import (
    DurablePromise,
    HandlerFn,
    Request,
    RestateDurableCallFuture,
    RestateDurableFuture,
    RestateDurableSleepFuture,
    SendHandle,
    WorkflowContext,
)
from restate_sdk.definitions import HandlerInfo, handler_info
from restate_sdk.exceptions import (
    CANCELLED_CODE,
    RetryableError,
    SdkInternalBaseException,
    SdkInternalException,
    SuspendedException,
    TerminalError,
)
from restate_sdk.retry import RunOptions
from restate_sdk.serde import BytesSerde, DefaultSerde, serde_for
from restate_sdk.vm import CANCEL_SIGNAL, InvocationMachine, Key
from restate_server.protocol import messages as pm
from restate_server.protocol.ids import InvocationId, awakeable_id

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741


class AttemptFailure(Exception):
    """A side effect failed with a retryable error: the attempt ends and is retried."""

    def __init__(
        self,
        error: BaseException,
        command_index: int | None,
        name: str,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.command_index = command_index
        self.name = name
        self.retry_after_ms = retry_after_ms


def _failure_of(error: TerminalError) -> pm.Failure:
    if not error.metadata:
        return pm.Failure(code=error.status_code, message=error.message)
    return pm.Failure(
        code=error.status_code,
        message=error.message,
        metadata=[pm.FailureMetadata(key=k, value=v) for k, v in error.metadata.items()],
    )


def _raise_failure(notification: Any) -> None:
    failure = notification.failure
    if failure is not None:
        metadata = {m.key: m.value for m in failure.metadata} if failure.metadata else None
        raise TerminalError(failure.message, failure.code, metadata)


class Engine:
    def __init__(
        self,
        machine: InvocationMachine,
        info: HandlerInfo,
        attempt_headers: dict[str, str],
        flush: Callable[[], None],
    ) -> None:
        self.machine = machine
        self.info = info
        self.attempt_headers = attempt_headers
        self._flush = flush
        self._input_changed = asyncio.Event()
        self._runs: set[asyncio.Task[None]] = set()
        self._fatal: BaseException | None = None
        self._cancel_delivered = False
        self._calls: list[tuple[int, int]] = []  # (invocation-id completion, result completion)
        self.context = ContextImpl(self)

    # ---- transport side

    def on_input(self) -> None:
        self._input_changed.set()

    def flush(self) -> None:
        self._flush()

    # ---- waiting

    async def wait_any(self, futures: list[RestateDurableFuture[Any]]) -> RestateDurableFuture[Any]:
        """Wait until one of ``futures`` completes; the earliest in journal order wins."""
        machine = self.machine
        self.flush()
        while True:
            if self._fatal is not None:
                raise self._fatal
            for future in futures:
                if future.done():
                    return future
            best: tuple[int, RestateDurableFuture[Any], Any] | None = None
            for future in futures:
                for key in future.keys:
                    note = machine.notifications.get(key)
                    if note is not None and (best is None or note.position < best[0]):
                        best = (note.position, future, note.message)
            cancel = machine.notifications.get(("s", CANCEL_SIGNAL))
            if (
                cancel is not None
                and not self._cancel_delivered
                and (best is None or cancel.position < best[0])
            ):
                self._cancel_delivered = True
                self._propagate_cancel()
                raise TerminalError("Cancelled", CANCELLED_CODE)
            if best is not None:
                best[1].resolve_from(best[2])
                return best[1]
            if machine.input_closed:
                if self._runs:
                    await asyncio.wait(list(self._runs))
                    continue
                keys = [key for future in futures for key in future.keys]
                raise SuspendedException(keys)
            self._input_changed.clear()
            await self._input_changed.wait()

    def _propagate_cancel(self) -> None:
        """Cancel the calls this invocation is still waiting for (implicit cancellation)."""
        notes = self.machine.notifications
        for id_completion, result_completion in self._calls:
            if ("c", result_completion) in notes:
                continue
            id_note = notes.get(("c", id_completion))
            if id_note is not None and id_note.message.invocation_id:
                self.context.cancel_invocation(id_note.message.invocation_id)

    # ---- side effects

    def start_run(
        self,
        completion_id: int,
        command_index: int,
        name: str,
        action: Callable[[], Any],
        serde: Any,
        options: RunOptions[Any],
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._execute_run(completion_id, command_index, name, action, serde, options)
        )
        self._runs.add(task)
        task.add_done_callback(self._run_done)

    def _run_done(self, task: asyncio.Task[None]) -> None:
        self._runs.discard(task)
        self._input_changed.set()
        self.flush()

    async def _execute_run(
        self,
        completion_id: int,
        command_index: int,
        name: str,
        action: Callable[[], Any],
        serde: Any,
        options: RunOptions[Any],
    ) -> None:
        try:
            result = action()
            if inspect.isawaitable(result):
                result = await result
            value = serde.serialize(result)
            self.machine.propose_run(completion_id, value, None)
        except TerminalError as error:
            self.machine.propose_run(completion_id, None, _failure_of(error))
        except SdkInternalBaseException:
            raise
        except Exception as error:  # a retryable failure of the side effect
            self._on_run_error(completion_id, command_index, name, error, options)

    def _on_run_error(
        self,
        completion_id: int,
        command_index: int,
        name: str,
        error: Exception,
        options: RunOptions[Any],
    ) -> None:
        start = self.machine.start
        assert start is not None
        attempt = start.retry_count_since_last_stored_entry + 1
        elapsed = timedelta(milliseconds=start.duration_since_last_stored_entry)
        exhausted = (options.max_attempts is not None and attempt >= options.max_attempts) or (
            options.max_duration is not None and elapsed >= options.max_duration
        )
        if exhausted:
            failure = pm.Failure(code=500, message=f"{type(error).__name__}: {error}")
            self.machine.propose_run(completion_id, None, failure)
            return
        retry_after = None
        if isinstance(error, RetryableError) and error.retry_after is not None:
            retry_after = int(error.retry_after.total_seconds() * 1000)
        elif options.has_retry_bounds or options.initial_retry_interval is not None:
            retry_after = int(options.next_delay(attempt).total_seconds() * 1000)
        self._fatal = AttemptFailure(error, command_index, name, retry_after)
        self._input_changed.set()

    async def cancel_runs(self) -> None:
        for task in list(self._runs):
            task.cancel()
        if self._runs:
            await asyncio.gather(*self._runs, return_exceptions=True)

    # ---- the attempt

    async def run(self) -> None:
        machine = self.machine
        info = self.info
        try:
            try:
                if info.has_input:
                    raw = machine.input.value if machine.input is not None else b""
                    try:
                        argument = info.input_serde.deserialize(raw or b"")
                    except Exception as exc:
                        raise TerminalError(f"Failed to deserialize input: {exc}", 400) from exc
                    result = await info.fn(self.context, argument)
                else:
                    result = await info.fn(self.context)
                output = info.output_serde.serialize(result)
                machine.command(pm.OutputCommandMessage(value=output))
            except TerminalError as error:
                machine.command(pm.OutputCommandMessage(failure=_failure_of(error)))
            if self._runs:
                await asyncio.wait(list(self._runs))
            machine.end()
        except SuspendedException as suspended:
            keys: list[Key] = suspended.args[0] if suspended.args else []
            machine.suspend(
                [k[1] for k in keys if k[0] == "c"],
                [k[1] for k in keys if k[0] == "s"],
                [k[1] for k in keys if k[0] == "n"],
            )
        except SdkInternalException as error:
            machine.error(
                error.code,
                error.message,
                related_command_index=error.related_command_index,
                related_command_type=error.related_command_type,
                related_command_name=error.related_command_name,
            )
        except AttemptFailure as failure:
            machine.error(
                500,
                f"{type(failure.error).__name__}: {failure.error}",
                stacktrace="".join(traceback.format_exception(failure.error)),
                related_command_index=failure.command_index,
                related_command_type=pm.RunCommandMessage.TYPE,
                related_command_name=failure.name or None,
                next_retry_delay_ms=failure.retry_after_ms,
            )
        except RetryableError as error:
            delay = (
                None if error.retry_after is None else int(error.retry_after.total_seconds() * 1000)
            )
            machine.error(error.status_code, error.message, next_retry_delay_ms=delay)
        except Exception as error:
            machine.error(
                500,
                f"{type(error).__name__}: {error}",
                stacktrace="".join(traceback.format_exception(error)),
            )
        finally:
            await self.cancel_runs()
            self.flush()


class ContextImpl(WorkflowContext):
    """One implementation for every context kind; the handler's type hints narrow it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._machine = engine.machine
        self._random: random_module.Random | None = None

    # ---- helpers

    def _completion(self, keys: list[Key], decode: Callable[[Any], T]) -> RestateDurableFuture[T]:
        return RestateDurableFuture(self._engine, keys, decode)

    def _invocation_id_future(self, completion_id: int) -> RestateDurableFuture[str]:
        return self._completion([("c", completion_id)], lambda n: n.invocation_id)

    @staticmethod
    def _value_decoder(serde: Any) -> Callable[[Any], Any]:
        def decode(notification: Any) -> Any:
            _raise_failure(notification)
            if notification.value is None:
                return None
            return serde.deserialize(notification.value)

        return decode

    @staticmethod
    def _serde(serde: Any, type_hint: Any) -> Any:
        if serde is not None:
            return serde
        return serde_for(type_hint) if type_hint is not None else DefaultSerde()

    # ---- request metadata and determinism

    def request(self) -> Request:
        machine = self._machine
        start = machine.start
        assert start is not None
        headers = {h.key: h.value for h in machine.input.headers} if machine.input else {}
        body = machine.input.value or b"" if machine.input else b""
        return Request(
            id=start.debug_id,
            headers=headers,
            attempt_headers=dict(self._engine.attempt_headers),
            body=body,
            idempotency_key=start.idempotency_key,
        )

    def key(self) -> str:
        start = self._machine.start
        assert start is not None
        return start.key

    def random(self) -> random_module.Random:
        if self._random is None:
            start = self._machine.start
            assert start is not None
            seed = start.random_seed
            if not seed or self._machine.version < 6:
                seed = int.from_bytes(hashlib.blake2b(start.id, digest_size=8).digest(), "big")
            self._random = random_module.Random(seed)
        return self._random

    def uuid(self) -> uuid_module.UUID:
        return uuid_module.UUID(int=self.random().getrandbits(128), version=4)

    def time(self) -> RestateDurableFuture[float]:
        future: RestateDurableFuture[float] = self.run_typed("timestamp", time.time)
        return future

    # ---- side effects

    def run_typed(
        self,
        name: str,
        action: Callable[..., Any],
        options: RunOptions[Any] | None = None,
        /,
        *args: Any,
        **kwargs: Any,
    ) -> RestateDurableFuture[Any]:
        options = options or RunOptions()
        hint = options.type_hint
        if hint is None:
            hint = getattr(action, "__annotations__", {}).get("return")
        serde = options.serde or (serde_for(hint) if hint not in (None, "None") else DefaultSerde())
        completion_id = self._machine.new_completion_id()
        self._machine.command(pm.RunCommandMessage(result_completion_id=completion_id, name=name))
        future = self._completion([("c", completion_id)], self._value_decoder(serde))
        if ("c", completion_id) not in self._machine.notifications:
            bound = (lambda: action(*args, **kwargs)) if args or kwargs else action
            self._engine.start_run(
                completion_id, self._machine.command_index, name, bound, serde, options
            )
        return future

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
        options: RunOptions[Any] = RunOptions(
            serde=serde,
            type_hint=type_hint,
            max_attempts=max_attempts,
            max_duration=max_retry_duration,
        )
        return self.run_typed(name, action, options, *(args or ()))

    def sleep(self, delta: timedelta, name: str | None = None) -> RestateDurableSleepFuture:
        completion_id = self._machine.new_completion_id()
        wake_up = int(time.time() * 1000 + delta.total_seconds() * 1000)
        self._machine.command(
            pm.SleepCommandMessage(
                wake_up_time=wake_up, result_completion_id=completion_id, name=name or ""
            )
        )
        return RestateDurableSleepFuture(self._engine, [("c", completion_id)], lambda n: None)

    # ---- calls and sends

    def _call(
        self,
        service: str,
        handler: str,
        key: str | None,
        parameter: bytes,
        idempotency_key: str | None,
        headers: dict[str, str] | None,
        decode: Callable[[Any], T],
    ) -> RestateDurableCallFuture[T]:
        machine = self._machine
        id_completion = machine.new_completion_id()
        result_completion = machine.new_completion_id()
        machine.command(
            pm.CallCommandMessage(
                service_name=service,
                handler_name=handler,
                parameter=parameter,
                headers=[pm.Header(key=k, value=v) for k, v in (headers or {}).items()],
                key=key or "",
                idempotency_key=idempotency_key,
                invocation_id_notification_idx=id_completion,
                result_completion_id=result_completion,
            )
        )
        self._engine._calls.append((id_completion, result_completion))
        return RestateDurableCallFuture(
            self._engine,
            [("c", result_completion)],
            decode,
            self._invocation_id_future(id_completion),
        )

    def _send(
        self,
        service: str,
        handler: str,
        key: str | None,
        parameter: bytes,
        send_delay: timedelta | None,
        idempotency_key: str | None,
        headers: dict[str, str] | None,
    ) -> SendHandle:
        machine = self._machine
        id_completion = machine.new_completion_id()
        invoke_time = 0
        if send_delay is not None and send_delay > timedelta(0):
            invoke_time = int(time.time() * 1000 + send_delay.total_seconds() * 1000)
        machine.command(
            pm.OneWayCallCommandMessage(
                service_name=service,
                handler_name=handler,
                parameter=parameter,
                invoke_time=invoke_time,
                headers=[pm.Header(key=k, value=v) for k, v in (headers or {}).items()],
                key=key or "",
                idempotency_key=idempotency_key,
                invocation_id_notification_idx=id_completion,
            )
        )
        return SendHandle(self._engine, self._invocation_id_future(id_completion))

    def _typed_call(
        self,
        tpe: HandlerFn[Any, T],
        key: str | None,
        arg: Any,
        idempotency_key: str | None,
        headers: dict[str, str] | None,
    ) -> RestateDurableCallFuture[T]:
        info = handler_info(tpe)
        parameter = info.serialize_input(arg)
        return self._call(
            info.service_name,
            info.name,
            key,
            parameter,
            idempotency_key,
            headers,
            self._value_decoder(info.output_serde),
        )

    def _typed_send(
        self,
        tpe: HandlerFn[Any, Any],
        key: str | None,
        arg: Any,
        send_delay: timedelta | None,
        idempotency_key: str | None,
        headers: dict[str, str] | None,
    ) -> SendHandle:
        info = handler_info(tpe)
        parameter = info.serialize_input(arg)
        return self._send(
            info.service_name, info.name, key, parameter, send_delay, idempotency_key, headers
        )

    def service_call(
        self,
        tpe: HandlerFn[I, O],
        arg: I,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> RestateDurableCallFuture[O]:
        return self._typed_call(tpe, None, arg, idempotency_key, headers)

    def object_call(
        self,
        tpe: HandlerFn[I, O],
        key: str,
        arg: I,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> RestateDurableCallFuture[O]:
        return self._typed_call(tpe, key, arg, idempotency_key, headers)

    # a workflow is addressed like an object: by its key
    workflow_call = object_call

    def service_send(
        self,
        tpe: HandlerFn[I, O],
        arg: I,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle:
        return self._typed_send(tpe, None, arg, send_delay, idempotency_key, headers)

    def object_send(
        self,
        tpe: HandlerFn[I, O],
        key: str,
        arg: I,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle:
        return self._typed_send(tpe, key, arg, send_delay, idempotency_key, headers)

    # a workflow is addressed like an object: by its key
    workflow_send = object_send

    def generic_call(
        self,
        service: str,
        handler: str,
        arg: bytes,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> RestateDurableCallFuture[bytes]:
        return self._call(
            service, handler, key, arg, idempotency_key, headers, self._value_decoder(BytesSerde())
        )

    def generic_send(
        self,
        service: str,
        handler: str,
        arg: bytes,
        key: str | None = None,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendHandle:
        return self._send(service, handler, key, arg, send_delay, idempotency_key, headers)

    # ---- awakeables, signals, other invocations

    def awakeable(
        self, serde: Any = None, type_hint: Any = None
    ) -> tuple[str, RestateDurableFuture[Any]]:
        machine = self._machine
        assert machine.start is not None
        index = machine.new_signal_index()
        name = awakeable_id(InvocationId.from_bytes(machine.start.id), index)
        future = self._completion(
            [("s", index)], self._value_decoder(self._serde(serde, type_hint))
        )
        return name, future

    def resolve_awakeable(self, name: str, value: Any, serde: Any = None) -> None:
        payload = self._serde(serde, None).serialize(value)
        self._machine.command(pm.CompleteAwakeableCommandMessage(awakeable_id=name, value=payload))

    def reject_awakeable(self, name: str, failure_message: str, failure_code: int = 500) -> None:
        failure = pm.Failure(code=failure_code, message=failure_message)
        self._machine.command(
            pm.CompleteAwakeableCommandMessage(awakeable_id=name, failure=failure)
        )

    def cancel_invocation(self, invocation_id: str) -> None:
        self._machine.command(
            pm.SendSignalCommandMessage(
                target_invocation_id=invocation_id, idx=CANCEL_SIGNAL, void=True
            )
        )

    def attach_invocation(
        self, invocation_id: str, serde: Any = None, type_hint: Any = None
    ) -> RestateDurableFuture[Any]:
        completion_id = self._machine.new_completion_id()
        self._machine.command(
            pm.AttachInvocationCommandMessage(
                invocation_id=invocation_id, result_completion_id=completion_id
            )
        )
        return self._completion(
            [("c", completion_id)], self._value_decoder(self._serde(serde, type_hint))
        )

    def signal(
        self, name: str, serde: Any = None, type_hint: Any = None
    ) -> RestateDurableFuture[Any]:
        return self._completion([("n", name)], self._value_decoder(self._serde(serde, type_hint)))

    def resolve_signal(self, invocation_id: str, name: str, value: Any, serde: Any = None) -> None:
        payload = self._serde(serde, None).serialize(value)
        self._machine.command(
            pm.SendSignalCommandMessage(
                target_invocation_id=invocation_id, name=name, value=payload
            )
        )

    def reject_signal(
        self, invocation_id: str, name: str, failure_message: str, failure_code: int = 500
    ) -> None:
        failure = pm.Failure(code=failure_code, message=failure_message)
        self._machine.command(
            pm.SendSignalCommandMessage(
                target_invocation_id=invocation_id, name=name, failure=failure
            )
        )

    # ---- state

    def get(self, name: str, serde: Any = None, type_hint: Any = None) -> Awaitable[Any | None]:
        machine = self._machine
        serde = self._serde(serde, type_hint)
        key = name.encode()
        journaled = machine.peek_replay()
        lazy = machine.partial_state and key not in machine.state
        if journaled is not None:
            lazy = isinstance(journaled, pm.GetLazyStateCommandMessage)
        completion_id = machine.new_completion_id()
        if lazy:
            machine.command(
                pm.GetLazyStateCommandMessage(key=key, result_completion_id=completion_id)
            )
            return self._completion([("c", completion_id)], self._value_decoder(serde))
        if key in machine.state:
            command = pm.GetEagerStateCommandMessage(key=key, value=machine.state[key])
        else:
            command = pm.GetEagerStateCommandMessage(key=key, void=True)
        recorded = machine.command(command)
        value = None if recorded.value is None else serde.deserialize(recorded.value)
        return _ready(value)

    def state_keys(self) -> Awaitable[list[str]]:
        machine = self._machine
        journaled = machine.peek_replay()
        lazy = machine.partial_state
        if journaled is not None:
            lazy = isinstance(journaled, pm.GetLazyStateKeysCommandMessage)
        completion_id = machine.new_completion_id()
        if lazy:
            machine.command(pm.GetLazyStateKeysCommandMessage(result_completion_id=completion_id))
            return self._completion(
                [("c", completion_id)],
                lambda n: sorted(k.decode() for k in (n.state_keys or [])),
            )
        recorded = machine.command(pm.GetEagerStateKeysCommandMessage(value=sorted(machine.state)))
        return _ready(sorted(k.decode() for k in (recorded.value or [])))

    def set(self, name: str, value: Any, serde: Any = None) -> None:
        payload = self._serde(serde, None).serialize(value)
        key = name.encode()
        self._machine.command(pm.SetStateCommandMessage(key=key, value=payload))
        self._machine.state[key] = payload

    def clear(self, name: str) -> None:
        key = name.encode()
        self._machine.command(pm.ClearStateCommandMessage(key=key))
        self._machine.state.pop(key, None)

    def clear_all(self) -> None:
        self._machine.command(pm.ClearAllStateCommandMessage())
        self._machine.state.clear()
        self._machine.partial_state = False

    # ---- workflow promises

    def promise(self, name: str, serde: Any = None, type_hint: Any = None) -> DurablePromise[Any]:
        return DurablePromise(self, name, self._serde(serde, type_hint))

    def _promise_get(self, name: str, serde: Any) -> RestateDurableFuture[Any]:
        completion_id = self._machine.new_completion_id()
        self._machine.command(
            pm.GetPromiseCommandMessage(key=name, result_completion_id=completion_id)
        )
        return self._completion([("c", completion_id)], self._value_decoder(serde))

    def _promise_peek(self, name: str, serde: Any) -> RestateDurableFuture[Any]:
        completion_id = self._machine.new_completion_id()
        self._machine.command(
            pm.PeekPromiseCommandMessage(key=name, result_completion_id=completion_id)
        )
        return self._completion([("c", completion_id)], self._value_decoder(serde))

    def _promise_complete(
        self, name: str, serde: Any, value: Any, failure: tuple[int, str] | None
    ) -> RestateDurableFuture[None]:
        completion_id = self._machine.new_completion_id()
        if failure is not None:
            command = pm.CompletePromiseCommandMessage(
                key=name,
                completion_failure=pm.Failure(code=failure[0], message=failure[1]),
                result_completion_id=completion_id,
            )
        else:
            command = pm.CompletePromiseCommandMessage(
                key=name,
                completion_value=serde.serialize(value),
                result_completion_id=completion_id,
            )
        self._machine.command(command)

        def decode(notification: Any) -> None:
            _raise_failure(notification)

        return self._completion([("c", completion_id)], decode)


async def _ready(value: T) -> T:
    return value
