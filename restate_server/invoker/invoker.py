"""The invoker: runs invocations against deployments on behalf of the partitions.

It performs the invoker actions of the partitions (start an attempt, push a
notification, abort, fail) and reports what SDKs send back as commands to the
partition that owns the invocation. It never writes storage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from restate_server.invoker.invocation_task import InvocationTask
from restate_server.invoker.retry import RetryPolicy
from restate_server.invoker.transport import Transport
from restate_server.partition.actions import (
    AbortAttempt,
    Action,
    FailAttempt,
    InvocationSpanEnd,
    InvocationSpanStart,
    InvokeAttempt,
    NotifyInvoker,
)
from restate_server.partition.processor import PartitionProcessor
from restate_server.protocol.ids import invocation_id_str
from restate_server.storage.db import Store

if TYPE_CHECKING:
    from restate_server.metrics.invoker import InvokerMetrics
    from restate_server.request_identity import RequestSigner
    from restate_server.tracing.tracer import InvocationTracer

log = logging.getLogger(__name__)

DurableRead = Callable[[Callable[[], Any]], Awaitable[Any]]


class Invoker:
    def __init__(
        self,
        *,
        store: Store,
        registry: Any,
        transport: Transport,
        processor_for: Callable[[bytes], PartitionProcessor],
        default_retry_policy: RetryPolicy,
        cluster_name: str = "localcluster",
        enable_protocol_v7: bool = False,
        durable_read: DurableRead,
        message_size_limit: int = 32 * 1024 * 1024,
        message_size_warning: int = 10 * 1024 * 1024,
        request_signer: RequestSigner | None = None,
        metrics: Sequence[InvokerMetrics] | None = None,
        tracer: InvocationTracer | None = None,
    ) -> None:
        self.store = store
        # reads that may only see durable data (Committer.read)
        self.durable_read = durable_read
        self.registry = registry
        self.transport = transport
        self.processor_for = processor_for
        self.default_retry_policy = default_retry_policy
        self.cluster_name = cluster_name
        self.enable_protocol_v7 = enable_protocol_v7
        # a message announcing more is refused at its header, before it is buffered
        self.message_size_limit = message_size_limit
        self.message_size_warning = message_size_warning
        # signs every attempt's request when a request identity key is configured
        self.request_signer = request_signer
        self.tasks: dict[bytes, InvocationTask] = {}
        self._draining = False
        # counters per partition, indexed by partition id (None: metrics are off)
        self.metrics = metrics
        # invocation and attempt spans (None: tracing is off)
        self.tracer = tracer

    def perform(self, action: Action) -> None:
        if isinstance(action, NotifyInvoker):
            task = self.tasks.get(action.invocation_id)
            if task is not None:
                task.notify(action.index, action.type_id, action.body, action.ack_completion_id)
        elif isinstance(action, InvokeAttempt):
            self._start(action)
        elif isinstance(action, AbortAttempt):
            task = self.tasks.pop(action.invocation_id, None)
            if task is not None:
                task.abort()
        elif isinstance(action, FailAttempt):
            task = self.tasks.get(action.invocation_id)
            if task is not None:
                task.fail_attempt(action.epoch, action.code, action.message)
        elif isinstance(action, (InvocationSpanStart, InvocationSpanEnd)) and self.tracer:
            # the partition's record of a traced invocation's start or end
            self._record_span(self.tracer, action)

    @staticmethod
    def _record_span(
        tracer: InvocationTracer, action: InvocationSpanStart | InvocationSpanEnd
    ) -> None:
        invocation_id = invocation_id_str(action.invocation_id)
        if isinstance(action, InvocationSpanStart):
            tracer.invocation_started(
                invocation_id, action.target, action.trace_context, action.created_at
            )
        else:
            tracer.invocation_ended(
                invocation_id, action.target, action.trace_context, action.failure
            )

    def _start(self, action: InvokeAttempt) -> None:
        if self._draining:
            return  # durable: resumed from storage at the next start
        processor = self.processor_for(action.invocation_id)
        if self.metrics is not None:
            self.metrics[processor.partition_id].enqueued += 1
        previous = self.tasks.get(action.invocation_id)
        if previous is not None:
            if previous.epoch >= action.epoch:
                return
            previous.abort()
        task = InvocationTask(self, action, processor)
        self.tasks[action.invocation_id] = task
        task.start()

    def abort_partition(self, processor: Any) -> None:
        """Stop the attempts of ``processor``'s invocations (cluster mode: the partition
        is handed over; its next leader resumes them from their journals)."""
        for task in list(self.tasks.values()):
            if task.processor is processor:
                task.abort()

    def task_finished(self, task: InvocationTask) -> None:
        if self.tasks.get(task.invocation_id) is task:
            del self.tasks[task.invocation_id]

    async def drain(self, timeout_s: float) -> int:
        """Shutdown, first part: start nothing new and give the running attempts up to
        ``timeout_s`` to finish or suspend (see ``InvocationTask.drain``). Returns how
        many were still running at the deadline; ``close`` aborts them."""
        self._draining = True
        runners = [r for r in (task.drain() for task in list(self.tasks.values())) if r]
        pending = [r for r in runners if not r.done()]
        if pending and timeout_s > 0:
            _, still = await asyncio.wait(pending, timeout=timeout_s)
            return len(still)
        return len(pending)

    async def close(self) -> None:
        for task in list(self.tasks.values()):
            task.abort()
        self.tasks.clear()
        await self.transport.close()
