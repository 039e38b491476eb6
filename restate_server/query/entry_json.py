"""``sys_journal.entry_json``: a journal entry in the serde JSON form of the real server.

The real CLI parses this JSON into its own entry types to print details (``SetState
key stage``, ``Sleep until ...``); when it does not parse, the CLI prints the entry
type alone. So entries whose real form we do not reproduce exactly (calls: they embed
the callee's span context) are left null rather than approximated.
"""

from __future__ import annotations

import json
from typing import Any

from restate_server.protocol import messages as pm
from restate_server.protocol.errors import ProtocolError
from restate_server.protocol.messages import is_command


def _bytes(value: bytes | None) -> list[int]:
    return list(value or b"")


def _failure(failure: pm.Failure) -> dict[str, Any]:
    out: dict[str, Any] = {"code": failure.code, "message": failure.message}
    if failure.metadata:
        out["metadata"] = [{"key": m.key, "value": m.value} for m in failure.metadata]
    return out


def _result(message: Any, *, void_allowed: bool) -> Any:
    """Success(bytes) | Failure(..) | "Void", from a message's value/failure/void."""
    failure = getattr(message, "failure", None)
    if failure is not None:
        return {"Failure": _failure(failure)}
    value = getattr(message, "value", None)
    if value is None and void_allowed:
        return "Void"
    return {"Success": _bytes(value)}


def _text(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else raw.decode(errors="replace")


def _signal_id(index: int | None, name: str | None) -> dict[str, Any]:
    return {"Index": index} if index is not None else {"Name": name or ""}


def _command(message: Any) -> dict[str, Any] | None:
    name = message.name if hasattr(message, "name") else ""
    if isinstance(message, pm.InputCommandMessage):
        headers = [{"name": h.key, "value": h.value} for h in message.headers]
        return {"Input": {"headers": headers, "payload": _bytes(message.value), "name": name}}
    if isinstance(message, pm.OutputCommandMessage):
        return {"Output": {"result": _result(message, void_allowed=False), "name": name}}
    if isinstance(message, (pm.GetLazyStateCommandMessage,)):
        body = {"key": _text(message.key), "completion_id": message.result_completion_id}
        return {"GetLazyState": {**body, "name": name}}
    if isinstance(message, pm.SetStateCommandMessage):
        body = {"key": _text(message.key), "value": _bytes(message.value)}
        return {"SetState": {**body, "name": name}}
    if isinstance(message, pm.ClearStateCommandMessage):
        return {"ClearState": {"key": _text(message.key), "name": name}}
    if isinstance(message, pm.ClearAllStateCommandMessage):
        return {"ClearAllState": {"name": name}}
    if isinstance(message, pm.GetLazyStateKeysCommandMessage):
        return {"GetLazyStateKeys": {"completion_id": message.result_completion_id, "name": name}}
    if isinstance(message, pm.GetEagerStateCommandMessage):
        result = (
            "Void" if message.void or message.value is None else {"Success": _bytes(message.value)}
        )
        return {"GetEagerState": {"key": _text(message.key), "result": result, "name": name}}
    if isinstance(message, pm.GetEagerStateKeysCommandMessage):
        keys = [_text(k) for k in message.value or []]
        return {"GetEagerStateKeys": {"state_keys": keys, "name": name}}
    if isinstance(message, (pm.GetPromiseCommandMessage, pm.PeekPromiseCommandMessage)):
        kind = "GetPromise" if isinstance(message, pm.GetPromiseCommandMessage) else "PeekPromise"
        return {
            kind: {"key": message.key, "completion_id": message.result_completion_id, "name": name}
        }
    if isinstance(message, pm.CompletePromiseCommandMessage):
        if message.completion_failure is not None:
            value: Any = {"Failure": _failure(message.completion_failure)}
        else:
            value = {"Success": _bytes(message.completion_value)}
        body = {"key": message.key, "value": value, "completion_id": message.result_completion_id}
        return {"CompletePromise": {**body, "name": name}}
    if isinstance(message, pm.SleepCommandMessage):
        body = {"wake_up_time": message.wake_up_time, "completion_id": message.result_completion_id}
        return {"Sleep": {**body, "name": name}}
    if isinstance(message, pm.SendSignalCommandMessage):
        return {
            "SendSignal": {
                "target_invocation_id": message.target_invocation_id,
                "signal_id": _signal_id(message.idx, message.name),
                "result": _result(message, void_allowed=True),
                "name": message.entry_name,
            }
        }
    if isinstance(message, pm.RunCommandMessage):
        return {"Run": {"completion_id": message.result_completion_id, "name": name}}
    if isinstance(
        message, (pm.AttachInvocationCommandMessage, pm.GetInvocationOutputCommandMessage)
    ):
        if message.invocation_id is None:
            return None  # idempotency / workflow targets: not reproduced
        kind = (
            "AttachInvocation"
            if isinstance(message, pm.AttachInvocationCommandMessage)
            else "GetInvocationOutput"
        )
        target = {"InvocationId": message.invocation_id}
        return {
            kind: {"target": target, "completion_id": message.result_completion_id, "name": name}
        }
    if isinstance(message, pm.CompleteAwakeableCommandMessage):
        result = _result(message, void_allowed=False)
        return {"CompleteAwakeable": {"id": message.awakeable_id, "result": result, "name": name}}
    return None  # Call, OneWayCall


# notification type -> (completion name, shape of its fields)
_COMPLETIONS: dict[type[pm.Message], tuple[str, str]] = {
    pm.GetLazyStateCompletionNotificationMessage: ("GetLazyState", "void_or_value"),
    pm.GetLazyStateKeysCompletionNotificationMessage: ("GetLazyStateKeys", "keys"),
    pm.GetPromiseCompletionNotificationMessage: ("GetPromise", "value"),
    pm.PeekPromiseCompletionNotificationMessage: ("PeekPromise", "void_or_value"),
    pm.CompletePromiseCompletionNotificationMessage: ("CompletePromise", "void_or_value"),
    pm.SleepCompletionNotificationMessage: ("Sleep", "none"),
    pm.CallInvocationIdCompletionNotificationMessage: ("CallInvocationId", "invocation_id"),
    pm.CallCompletionNotificationMessage: ("Call", "value"),
    pm.RunCompletionNotificationMessage: ("Run", "value"),
    pm.AttachInvocationCompletionNotificationMessage: ("AttachInvocation", "value"),
    pm.GetInvocationOutputCompletionNotificationMessage: ("GetInvocationOutput", "void_or_value"),
}


def _notification(message: Any) -> dict[str, Any] | None:
    if isinstance(message, pm.SignalNotificationMessage):
        signal = {
            "id": _signal_id(message.signal_id, message.signal_name),
            "result": _result(message, void_allowed=True),
        }
        return {"Signal": signal}
    known = _COMPLETIONS.get(type(message))
    if known is None:
        return None
    kind, shape = known
    body: dict[str, Any] = {"completion_id": message.completion_id}
    if shape == "value":
        body["result"] = _result(message, void_allowed=False)
    elif shape == "void_or_value":
        body["result"] = _result(message, void_allowed=True)
    elif shape == "keys":
        body["state_keys"] = [_text(k) for k in message.state_keys or []]
    elif shape == "invocation_id":
        body["invocation_id"] = message.invocation_id
    return {"Completion": {kind: body}}


def decode_entry(type_id: int, body: bytes) -> Any | None:
    try:
        return pm.decode_message(type_id, body)
    except (ProtocolError, ValueError, TypeError):
        return None


def entry_json(type_id: int, message: Any | None) -> str | None:
    """The entry as the real server's ``entry_json``; None when not reproduced."""
    if message is None:
        return None
    if is_command(type_id):
        inner = _command(message)
        wrapped = None if inner is None else {"Command": inner}
    else:
        inner = _notification(message)
        wrapped = None if inner is None else {"Notification": inner}
    if wrapped is None:
        return None
    return json.dumps(wrapped, separators=(",", ":"), ensure_ascii=False)


def command_name(type_id: int, message: Any | None) -> str | None:
    """``sys_journal.name``: a command's name ("" when unnamed); null for notifications."""
    if not is_command(type_id):
        return None
    if message is None:
        return ""
    if isinstance(message, pm.SendSignalCommandMessage):
        return message.entry_name
    return getattr(message, "name", "")
