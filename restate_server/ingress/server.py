"""The ingress HTTP API (port 8080): calls, sends, attach/output, health.

Every request that changes something becomes a command for the partition that
owns the invocation; the answer is written only once the partition has
committed and replied.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, unquote

from restate_server.durations import DurationError, parse_duration
from restate_server.http_server import (
    DEFAULT_LIMITS,
    Deferred,
    HttpLimits,
    Request,
    Response,
    serve,
)
from restate_server.ingress import attach, awakeables
from restate_server.ingress.errors import IngressError, cors_headers, error_response
from restate_server.ingress.paths import HandlerPath, parse_handler_path, split_path
from restate_server.ingress.responses import reply_response, send_ack_response
from restate_server.metrics.histogram import clock_ns
from restate_server.metrics.ingress import IngressMetrics, TargetCounters
from restate_server.partition.actions import IngressReply, IngressSendAck
from restate_server.partition.commands import InvocationRequest, Invoke
from restate_server.partition.router import Partitions
from restate_server.partition.waiters import Answer, Waiters
from restate_server.protocol import ids
from restate_server.storage.records import IngressSink, Target

if TYPE_CHECKING:
    from restate_server.tracing.tracer import InvocationTracer


class StorageState(Protocol):
    """Whether new work can be committed now (``Committer``)."""

    unavailable: str | None


log = logging.getLogger(__name__)

_DROPPED_HEADERS = frozenset({"connection", "host", "idempotency-key", "idempotency-expires"})
_SERVICE_TY = {"Service": "service", "VirtualObject": "virtual_object", "Workflow": "workflow"}
_HANDLER_KIND = {"Exclusive": "exclusive", "Shared": "shared", "Workflow": "workflow"}


class Ingress:
    def __init__(
        self,
        registry: Any,
        partitions: Partitions,
        waiters: Waiters,
        metrics: IngressMetrics | None = None,
        tracer: InvocationTracer | None = None,
        storage: StorageState | None = None,
    ) -> None:
        self.registry = registry
        self.partitions = partitions
        self.waiters = waiters
        self.metrics = metrics
        self.tracer = tracer  # None: tracing is off
        self.storage = storage  # says when new work cannot be committed (a full disk)

    # ---- entry point

    def handle(self, request: Request) -> Response | Deferred | Awaitable[Response]:
        """Calls and sends are answered by a commit callback (no task per request);
        the rarer routes that wait on several things run as coroutines."""
        try:
            return self._route(request)
        except IngressError as error:
            return _error(request, error)

    def _route(self, request: Request) -> Response | Deferred | Awaitable[Response]:
        raw_path = request.raw_path
        path = raw_path.split("?", 1)[0]
        method = request.method
        if method == "OPTIONS":
            return _preflight(request)
        if self.metrics is not None:
            self.metrics.admitted += 1
        segments = split_path(path)
        if segments[0] == "restate":
            return self._restate_route(request, segments[1:], method)
        self._check_storage()
        return self._invoke(request, segments, method, raw_path)

    def _check_storage(self) -> None:
        """Refuse new work that could not be committed: better a 503 now than an
        answer that waits for the disk."""
        storage = self.storage
        if storage is not None and storage.unavailable is not None:
            raise IngressError(503, f"cannot take new work: {storage.unavailable}")

    def _restate_route(
        self, request: Request, rest: list[str], method: str
    ) -> Response | Deferred | Awaitable[Response]:
        head = rest[0] if rest else ""
        if head == "health":
            if method != "GET":
                raise IngressError(405, "method not allowed")
            names = [service.name for service in self.registry.list_services()]
            body = json.dumps({"services": names}, separators=(",", ":")).encode()
            headers = cors_headers(request, {"content-type": "application/json"})
            return Response(status=200, body=body, headers=headers)
        if head in ("call", "send", "awakeables", "a"):
            self._check_storage()
        if head in ("call", "send") and len(rest) >= 3:
            segments = [unquote(s) if i == 0 else s for i, s in enumerate(rest[1:])]
            if head == "send":
                segments = [*segments, "send"]
            return self._invoke(request, segments, method, request.raw_path)
        if head in ("invocation", "workflow", "attach", "output", "lookup"):
            return _guarded(request, attach.handle(self, request, head, rest[1:], method))
        if head in ("awakeables", "a"):
            return _guarded(request, awakeables.handle(self, request, rest[1:], method))
        if head == "scope":
            raise IngressError(400, "scoped invocations require vqueues to be enabled")
        raise IngressError(404, "not found")

    # ---- calls and sends

    def _invoke(
        self, request: Request, segments: list[str], method: str, raw_path: str
    ) -> Deferred:
        registry = self.registry
        service_name = unquote(segments[0])
        service = registry.get_service(service_name)
        if service is None:
            raise IngressError(
                404,
                f"service '{service_name}' not found, make sure to register the service "
                "before calling it.",
            )
        keyed = service.ty != "Service"
        target_path = parse_handler_path(segments, keyed)
        metrics = self.metrics
        if metrics is None:
            return self._submit(request, service, target_path, method, raw_path, None, 0)
        # from here on the request is counted per service (as the real server does)
        counters = metrics.targets.get((service_name, target_path.send))
        if counters is None:
            counters = metrics.target(service_name, target_path.send)
        started = clock_ns()
        try:
            return self._submit(request, service, target_path, method, raw_path, counters, started)
        except IngressError as error:
            counters.rejected(error.status, started)
            raise

    def _submit(
        self,
        request: Request,
        service: Any,
        target_path: HandlerPath,
        method: str,
        raw_path: str,
        counters: TargetCounters | None,
        started_ns: int,
    ) -> Deferred:
        """Validate a call or send of a known handler and hand it to its partition."""
        registry = self.registry
        service_name = service.name
        if method not in ("GET", "POST"):
            raise IngressError(405, "method not allowed")
        handler = service.handlers.get(target_path.handler)
        if handler is None:
            raise IngressError(
                404,
                f"the service '{service_name}' exists, but the handler '{target_path.handler}' "
                "was not found, check that the handler exists in the latest registered service "
                "version.",
            )
        info = registry.resolve_invocation_target(service_name, target_path.handler)
        if not info.public:
            raise IngressError(400, "the invoked service is not public")

        query = raw_path.split("?", 1)[1] if "?" in raw_path else ""
        execution_time = self._delay(query, target_path.send)
        idempotency_key = request.headers.get("idempotency-key")
        handler_kind = _HANDLER_KIND.get(handler.ty) if handler.ty else None
        if idempotency_key is not None and handler_kind == "workflow":
            raise IngressError(
                400,
                "cannot use the idempotency key with workflow handlers. The handler invocation "
                "will already be idempotent by the workflow key itself.",
            )
        body = request.body
        problem = info.validate_input(request.headers.get("content-type"), body)
        if problem is not None:
            raise IngressError(400, f"input validation error: {problem}")

        target = Target(
            service_name,
            target_path.handler,
            target_path.key,
            _SERVICE_TY[service.ty],
            handler_kind,
        )
        now = int(time.time() * 1000)
        completion_retention = 0
        fresh = False
        if handler_kind == "workflow":
            assert target.key is not None
            invocation_id = ids.workflow_invocation_id(service_name, target.key)
            completion_retention = info.workflow_completion_retention_ms
        else:
            fresh = idempotency_key is None and service.ty != "Workflow"
            if fresh:
                # The real server gives every plain ingress call a key of its own, so that
                # completed calls are retained and attachable by id.
                idempotency_key = ids.new_ulid_string(now)
            if idempotency_key is not None:
                invocation_id = ids.idempotent_invocation_id(
                    service_name, target.key, target_path.handler, idempotency_key
                )
                completion_retention = info.idempotency_retention_ms
            else:
                assert target.key is not None
                invocation_id = ids.new_invocation_id(
                    ids.partition_key_for_key(service_name, target.key), now
                )
        raw_id = invocation_id.to_bytes()

        headers = [("x-restate-ingress-path", raw_path)]
        headers.extend(h for h in request.header_list if h[0] not in _DROPPED_HEADERS)
        deferred = Deferred()
        output_content_type = info.output_content_type
        set_if_empty = info.output_set_content_type_if_empty

        def answered(answer: Answer) -> None:
            if isinstance(answer, IngressSendAck):
                response = send_ack_response(request, answer)
            else:
                assert isinstance(answer, IngressReply)
                response = reply_response(request, answer, output_content_type, set_if_empty)
            if counters is not None:
                counters.values.append(clock_ns() - started_ns)
                # completed, or invocation_error when the invocation answered with an error
                counters.statuses[response.status >= 400] += 1
            deferred.resolve(response)

        request_id = self.waiters.register_callback(answered)
        # the client went away: the invocation goes on (attachable), nobody waits for it
        deferred.on_abandon = partial(self.waiters.forget, request_id)
        invocation = InvocationRequest(
            invocation_id=raw_id,
            target=target,
            argument=body,
            headers=headers,
            idempotency_key=idempotency_key,
            execution_time=execution_time,
            sink=None if target_path.send else IngressSink(request_id),
            send_ack_request_id=request_id if target_path.send else None,
            completion_retention_ms=completion_retention,
            journal_retention_ms=info.journal_retention_ms,
            fresh=fresh,
        )
        tracer = self.tracer
        if tracer is not None:
            invocation.trace_context = tracer.ingress_span(invocation_id, target, request.headers)
        self.partitions.for_invocation(raw_id).submit(Invoke(invocation))
        return deferred

    def _delay(self, query: str, send: bool) -> int | None:
        if not query:
            return None
        values = parse_qs(query, keep_blank_values=True).get("delay")
        if not values:
            return None
        if not send:
            raise IngressError(
                400,
                "cannot use the delay query parameter with calls. The delay is supported only "
                "with sends",
            )
        try:
            delay_ms = parse_duration(values[0])
        except DurationError as exc:
            raise IngressError(
                400, f"bad delay query parameter, must be a ISO8601 duration: {exc}"
            ) from exc
        return int(time.time() * 1000) + delay_ms


def _preflight(request: Request) -> Response:
    headers: dict[str, str] = {}
    method = request.headers.get("access-control-request-method")
    if method:
        headers["access-control-allow-methods"] = method
    allow_headers = request.headers.get("access-control-request-headers")
    if allow_headers:
        headers["access-control-allow-headers"] = allow_headers
    return Response(status=200, headers=cors_headers(request, headers))


async def start_ingress(
    ingress: Ingress,
    host: str,
    port: int,
    limits: HttpLimits = DEFAULT_LIMITS,
    sock: socket.socket | None = None,
) -> asyncio.AbstractServer:
    return await serve(ingress.handle, host, port, ingress.metrics, limits, sock)


def _error(request: Request, error: IngressError) -> Response:
    return error_response(
        request, error.status, error.message, "ingress", invocation_id=error.invocation_id
    )


async def _guarded(request: Request, route: Coroutine[Any, Any, Response]) -> Response:
    try:
        return await route
    except IngressError as error:
        return _error(request, error)
