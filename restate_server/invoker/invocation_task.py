"""Running one invocation: attempts in a row, with backoff between failures.

A task lives from an ``InvokeAttempt`` action until the attempt ends with End or
Suspension, the partition aborts it, or the retry policy gives up (then the
partition is told to pause or fail the invocation). Retry bookkeeping is in
memory, as in the real server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from restate_server.durations import format_duration
from restate_server.invoker.attempt import SUSPENDED, Attempt
from restate_server.invoker.errors import AttemptAborted, AttemptError
from restate_server.invoker.retry import RetryPolicy
from restate_server.logs import invocation_fields
from restate_server.metrics.histogram import clock_ns
from restate_server.partition.actions import InvokeAttempt
from restate_server.partition.commands import AttemptFailed
from restate_server.protocol.ids import invocation_id_str
from restate_server.protocol.versions import choose_protocol_version
from restate_server.storage.records import Failure, JournalEntry

if TYPE_CHECKING:
    from restate_server.invoker.invoker import Invoker
    from restate_server.partition.processor import PartitionProcessor

log = logging.getLogger(__name__)

# refused streams resent at once (in a row, until a stream is accepted) before they
# count as failed attempts
MAX_IMMEDIATE_RESENDS = 3


class InvocationTask:
    def __init__(self, invoker: Invoker, action: InvokeAttempt, processor: PartitionProcessor):
        self.invoker = invoker
        self.processor = processor
        self.partition_id = processor.partition_id
        # this partition's invoker counters (None: metrics are off)
        self.metrics = invoker.metrics[self.partition_id] if invoker.metrics else None
        self.store = invoker.store
        self.invocation_id = action.invocation_id
        self.invocation_id_str = invocation_id_str(action.invocation_id)
        self.epoch = action.epoch
        self.target = action.target
        self.random_seed = action.random_seed
        self.deployment_id = action.deployment_id
        self.protocol_version = action.protocol_version
        # the journal as the partition just wrote it (fresh invocations): saves a read
        self.initial_journal = action.journal
        # the invocation's span context: set when it is traced and tracing is on
        self.trace_context = action.trace_context if invoker.tracer is not None else None
        self.attempt: Attempt | None = None
        self.target_info: Any = None
        # introspection (sys_invocation): what the real server keeps in its invoker
        self.retry_count = 0
        self.last_failure: AttemptError | None = None
        self.next_retry_at: int | None = None
        self.last_start_at: int | None = None
        self.last_attempt_deployment_id: str | None = None
        self.last_attempt_server: str | None = None
        self._aborted = False
        self._runner: asyncio.Task[None] | None = None
        # attempts made by this task (1 for the first); retries of a previous server run
        # are not counted, as in the real server
        self.attempt_number = 0
        # shutting down: no new attempt, no retry
        self._draining = False

    def start(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self._run())

    def abort(self) -> None:
        self._aborted = True
        if self.attempt is not None:
            self.attempt.abort()
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()

    def drain(self) -> asyncio.Task[None] | None:
        """Shutdown: let the running attempt finish or suspend, start no other.

        An attempt that is streaming is asked to suspend; one that has not reached the
        endpoint yet, or a task waiting to retry, is aborted (nothing runs; the
        invocation is resumed from storage at the next start). Returns the task's
        runner, done when the task is."""
        self._draining = True
        attempt = self.attempt
        if attempt is None or attempt.stream is None:
            self.abort()
        else:
            attempt.request_suspension()
        return self._runner

    def notify(self, index: int, type_id: int, body: bytes, ack: int | None) -> None:
        if self.attempt is not None:
            self.attempt.notify(index, type_id, body, ack)

    def fail_attempt(self, new_epoch: int, code: int, message: str) -> None:
        """The partition rejected a command of the current attempt."""
        self.epoch = new_epoch
        if self.attempt is not None:
            self.attempt.fail_from_partition(AttemptError(message, code=code))

    # ---- used by the attempt

    def resolve_deployment(self) -> tuple[Any, int, bool]:
        """(deployment, protocol version, whether this attempt chose them first)."""
        registry = self.invoker.registry
        target = self.target
        self.target_info = registry.resolve_invocation_target(target.service, target.handler)
        if self.target_info is None:
            raise AttemptError(
                f"service '{target.service}' handler '{target.handler}' is not registered",
                reached_sdk=False,
            )
        if self.deployment_id is not None:
            deployment = registry.get_deployment(self.deployment_id)
            if deployment is None:
                raise AttemptError(
                    f"the pinned deployment {self.deployment_id} was removed", reached_sdk=False
                )
            assert self.protocol_version is not None
            return deployment, self.protocol_version, False
        deployment = registry.latest_deployment_for(target.service)
        if deployment is None:
            raise AttemptError(f"no deployment for service '{target.service}'", reached_sdk=False)
        version = choose_protocol_version(
            deployment.min_protocol_version,
            deployment.max_protocol_version,
            self.invoker.enable_protocol_v7,
        )
        if version is None:
            raise AttemptError("no common service protocol version", reached_sdk=False)
        self.deployment_id = deployment.id
        self.protocol_version = version
        return deployment, version, True

    def take_initial_journal(self) -> list[JournalEntry] | None:
        """The journal handed over with the action, for the first attempt only."""
        journal, self.initial_journal = self.initial_journal, None
        return journal

    def log_extra(self, **more: Any) -> dict[str, Any]:
        """``extra`` for a log line about this invocation and its current attempt."""
        target = self.target
        return invocation_fields(
            self.invocation_id_str, target.service, target.handler, self.attempt_number, **more
        )

    def on_attempt_started(self, deployment_id: str) -> None:
        self.last_start_at = int(time.time() * 1000)
        self.last_attempt_deployment_id = deployment_id
        self.next_retry_at = None

    # ---- the retry loop

    async def _run(self) -> None:
        retries_since_progress = 0
        refused_in_row = 0
        try:
            while not self._aborted and not self._draining:
                attempt = Attempt(self, retries_since_progress)
                self.attempt = attempt
                self.attempt_number += 1
                metrics = self.metrics
                if metrics is not None:
                    metrics.started += 1
                    started_ns = clock_ns()
                try:
                    outcome = await attempt.run()
                    if metrics is not None:
                        metrics.task_duration.values.append(clock_ns() - started_ns)
                        if outcome == SUSPENDED:
                            metrics.suspended += 1
                        else:
                            metrics.completed += 1
                    return
                except AttemptAborted:
                    attempt.abort_stream_quietly()
                    return
                except AttemptError as error:
                    failure = error.drop_frames()
                except asyncio.CancelledError:
                    attempt.abort_stream_quietly()
                    raise
                except Exception as exc:  # a bug must not take the invoker down
                    log.exception("Invocation attempt crashed", extra=self.log_extra())
                    failure = AttemptError(f"internal error: {exc}").drop_frames()
                finally:
                    self.last_attempt_server = attempt.sdk_server or self.last_attempt_server
                if metrics is not None:  # whether it is retried is counted below
                    metrics.task_duration.values.append(clock_ns() - started_ns)
                attempt.abort_stream_quietly()
                # Retries must replay everything the failed attempt already sent.
                await attempt.durable_barrier()
                if failure.refused and not attempt.journaled_commands:
                    # e.g. the endpoint's GOAWAY after its per-connection request limit:
                    # nothing ran, so this is no failed attempt; send it again now. Only a
                    # few times in a row, backoffs included: an endpoint that refuses
                    # every stream costs no more attempts than any other failing one.
                    refused_in_row += 1
                    if refused_in_row <= MAX_IMMEDIATE_RESENDS:
                        log.debug("Endpoint refused the stream, resending", extra=self.log_extra())
                        if metrics is not None:
                            metrics.failed_transient += 1
                            metrics.refused_resends += 1
                        continue
                else:
                    refused_in_row = 0
                if attempt.journaled_commands:
                    retries_since_progress = 0
                    self.retry_count = 0
                retries_since_progress += 1
                self.retry_count += 1
                self.last_failure = failure
                if not await self._backoff(failure):
                    return
        finally:
            # task and attempt refer to each other: unlink them, so the pair is freed by
            # reference counting now rather than by a garbage-collector pass later
            self.attempt = None
            self.invoker.task_finished(self)

    async def _backoff(self, failure: AttemptError) -> bool:
        policy = self._retry_policy()
        if failure.behavior == 1 or failure.behavior == 2:
            delay = None
            pause = failure.behavior == 1
        else:
            delay = policy.delay_ms(self.retry_count)
            pause = policy.on_max_attempts != "kill"
        if failure.retry_after_ms is not None and delay is not None:
            delay = failure.retry_after_ms
        error = f"[{failure.code}] {failure.message}"
        metrics = self.metrics
        if delay is None:
            if metrics is not None:
                metrics.failed_final += 1
            log.warning(
                "Error when executing the invocation, not going to retry.",
                extra=self.log_extra(error=error),
            )
            self.processor.submit(
                AttemptFailed(
                    self.invocation_id,
                    self.epoch,
                    Failure(failure.code, failure.message),
                    pause=pause,
                )
            )
            return False
        log.warning(
            "Invocation error, retrying in %s.",
            format_duration(delay),
            extra=self.log_extra(error=error),
        )
        if metrics is not None:
            metrics.failed_transient += 1
        self.next_retry_at = int(time.time() * 1000) + delay
        await asyncio.sleep(delay / 1000)
        if metrics is not None and not self._aborted:
            metrics.retries += 1
        return not self._aborted

    def _retry_policy(self) -> RetryPolicy:
        info = self.target_info
        if info is not None and getattr(info, "retry_policy", None) is not None:
            return info.retry_policy  # type: ignore[no-any-return]
        return self.invoker.default_retry_policy
