"""Journal entries the partition writes itself (Input and notifications), as protocol bytes."""

from __future__ import annotations

from restate_server.protocol import messages as pm
from restate_server.storage.records import Failure, Outcome


def input_entry(argument: bytes, headers: list[tuple[str, str]]) -> tuple[int, bytes]:
    message = pm.InputCommandMessage(
        headers=[pm.Header(key=k, value=v) for k, v in headers], value=argument
    )
    return pm.InputCommandMessage.TYPE, pm.encode_message(message)


def _to_pm_failure(failure: Failure) -> pm.Failure:
    if failure.metadata is None:
        return pm.Failure(code=failure.code, message=failure.message)
    return pm.Failure(
        code=failure.code,
        message=failure.message,
        metadata=[pm.FailureMetadata(key=k, value=v) for k, v in failure.metadata],
    )


def notification(
    message_type: type[pm.Message],
    *,
    completion_id: int | None = None,
    signal_id: int | None = None,
    signal_name: str | None = None,
    void: bool = False,
    value: bytes | None = None,
    failure: Failure | None = None,
    invocation_id: str | None = None,
    state_keys: list[bytes] | None = None,
) -> tuple[int, bytes]:
    message = message_type(
        completion_id=completion_id,
        signal_id=signal_id,
        signal_name=signal_name,
        void=void,
        value=value,
        failure=None if failure is None else _to_pm_failure(failure),
        invocation_id=invocation_id,
        state_keys=state_keys,
    )
    return message_type.TYPE, pm.encode_message(message)


def outcome_notification(
    message_type: type[pm.Message], completion_id: int, outcome: Outcome
) -> tuple[int, bytes]:
    if outcome.failure is not None:
        return notification(message_type, completion_id=completion_id, failure=outcome.failure)
    return notification(message_type, completion_id=completion_id, value=outcome.value or b"")


def failure_from_pm(failure: pm.Failure | None) -> Failure | None:
    """The stored form of an SDK's failure, metadata in the SDK's order (run, signals)."""
    if failure is None:
        return None
    if not failure.metadata:
        return Failure(failure.code, failure.message)
    pairs = tuple((entry.key, entry.value) for entry in failure.metadata)
    return Failure(failure.code, failure.message, pairs)


def outcome_failure_from_pm(failure: pm.Failure | None) -> Failure | None:
    """An invocation's failed outcome: metadata becomes a map, sorted by key.

    The real server keeps an outcome's metadata as a map (ingress bodies, attach and call
    completions list the keys sorted); a repeated key keeps its last value here, where the
    real server 1.7.12 panics.
    """
    if failure is None:
        return None
    if not failure.metadata:
        return Failure(failure.code, failure.message)
    by_key = {entry.key: entry.value for entry in failure.metadata}
    return Failure(failure.code, failure.message, tuple(sorted(by_key.items())))
