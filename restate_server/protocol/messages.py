"""Service-protocol messages (V5, V6, V7) and their protobuf encoding.

Each message is a msgspec Struct; its ``FIELDS`` table (field number, attribute,
kind) drives a generic encoder and decoder. Conventions:

* proto ``Value`` fields are ``bytes | None``: None = absent, b"" = an empty Value;
* ``Void`` fields are ``bool`` named ``void``;
* oneofs are separate optional attributes, the encoder writes whichever is set;
* proto3 ``optional`` fields are ``T | None`` (presence kept), plain scalars default to
  0 / "" / False and are omitted on the wire;
* fields are written in ascending field-number order, as the real runtime and SDKs do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import msgspec

from restate_server.protocol.errors import ProtocolError
from restate_server.protocol.wire import (
    LENGTH_DELIMITED,
    VARINT,
    decode_varint,
    encode_varint,
    skip_field,
)

# ---- field kinds

UINT = "uint"  # varint, omitted when 0
OPT_UINT = "opt_uint"  # varint with presence
BOOL = "bool"
STRING = "string"
OPT_STRING = "opt_string"
BYTES = "bytes"
OPT_BYTES = "opt_bytes"  # raw bytes with presence (a oneof member)
VALUE = "value"  # nested Value{content}: bytes | None
VOID = "void"  # nested empty message: bool
MESSAGE = "message"  # nested message: instance | None
REPEATED_MESSAGE = "repeated_message"
REPEATED_UINT = "repeated_uint"  # packed on write, both forms on read
REPEATED_STRING = "repeated_string"
REPEATED_BYTES = "repeated_bytes"
OPT_REPEATED_BYTES = "opt_repeated_bytes"  # nested StateKeys{repeated bytes keys = 1} | None

Field = tuple[int, str, str, Any]  # (number, attribute, kind, nested class or None)


class Message(msgspec.Struct, kw_only=True):
    """Base of every protocol message."""

    TYPE: ClassVar[int] = -1
    FIELDS: ClassVar[tuple[Field, ...]] = ()


# ---- nested messages


class FailureMetadata(Message):
    key: str = ""
    value: str = ""
    FIELDS = ((1, "key", STRING, None), (2, "value", STRING, None))


class Failure(Message):
    code: int = 0
    message: str = ""
    metadata: list[FailureMetadata] = msgspec.field(default_factory=list)
    FIELDS = (
        (1, "code", UINT, None),
        (2, "message", STRING, None),
        (3, "metadata", REPEATED_MESSAGE, FailureMetadata),
    )


class Header(Message):
    key: str = ""
    value: str = ""
    FIELDS = ((1, "key", STRING, None), (2, "value", STRING, None))


class StateEntry(Message):
    key: bytes = b""
    value: bytes = b""
    FIELDS = ((1, "key", BYTES, None), (2, "value", BYTES, None))


class WorkflowTarget(Message):
    workflow_name: str = ""
    workflow_key: str = ""
    scope: str | None = None
    FIELDS = (
        (1, "workflow_name", STRING, None),
        (2, "workflow_key", STRING, None),
        (3, "scope", OPT_STRING, None),
    )


class IdempotentRequestTarget(Message):
    service_name: str = ""
    service_key: str | None = None
    handler_name: str = ""
    idempotency_key: str = ""
    scope: str | None = None
    FIELDS = (
        (1, "service_name", STRING, None),
        (2, "service_key", OPT_STRING, None),
        (3, "handler_name", STRING, None),
        (4, "idempotency_key", STRING, None),
        (5, "scope", OPT_STRING, None),
    )


class CombinatorType:
    UNKNOWN = 0
    FIRST_COMPLETED = 1
    ALL_COMPLETED = 2
    FIRST_SUCCEEDED_OR_ALL_FAILED = 3
    ALL_SUCCEEDED_OR_FIRST_FAILED = 4


class ErrorBehavior:
    RETRY = 0
    PAUSE = 1
    FAIL = 2


class Future(Message):
    """V7: what the SDK awaits, as a tree of combinators."""

    waiting_completions: list[int] = msgspec.field(default_factory=list)
    waiting_signals: list[int] = msgspec.field(default_factory=list)
    waiting_named_signals: list[str] = msgspec.field(default_factory=list)
    nested_futures: list[Future] = msgspec.field(default_factory=list)
    combinator_type: int = 0


Future.FIELDS = (
    (1, "waiting_completions", REPEATED_UINT, None),
    (2, "waiting_signals", REPEATED_UINT, None),
    (3, "waiting_named_signals", REPEATED_STRING, None),
    (4, "nested_futures", REPEATED_MESSAGE, Future),
    (5, "combinator_type", UINT, None),
)


# ---- control messages


class StartMessage(Message):
    TYPE = 0x0000
    id: bytes = b""
    debug_id: str = ""
    known_entries: int = 0
    state_map: list[StateEntry] = msgspec.field(default_factory=list)
    partial_state: bool = False
    key: str = ""
    retry_count_since_last_stored_entry: int = 0
    duration_since_last_stored_entry: int = 0
    random_seed: int = 0
    scope: str | None = None
    limit_key: str | None = None
    idempotency_key: str | None = None
    FIELDS = (
        (1, "id", BYTES, None),
        (2, "debug_id", STRING, None),
        (3, "known_entries", UINT, None),
        (4, "state_map", REPEATED_MESSAGE, StateEntry),
        (5, "partial_state", BOOL, None),
        (6, "key", STRING, None),
        (7, "retry_count_since_last_stored_entry", UINT, None),
        (8, "duration_since_last_stored_entry", UINT, None),
        (9, "random_seed", UINT, None),
        (10, "scope", OPT_STRING, None),
        (11, "limit_key", OPT_STRING, None),
        (12, "idempotency_key", OPT_STRING, None),
    )


class SuspensionMessage(Message):
    """V5/V6: flat lists in fields 1-3; V7: a Future in field 4."""

    TYPE = 0x0001
    waiting_completions: list[int] = msgspec.field(default_factory=list)
    waiting_signals: list[int] = msgspec.field(default_factory=list)
    waiting_named_signals: list[str] = msgspec.field(default_factory=list)
    awaiting_on: Future | None = None
    FIELDS = (
        (1, "waiting_completions", REPEATED_UINT, None),
        (2, "waiting_signals", REPEATED_UINT, None),
        (3, "waiting_named_signals", REPEATED_STRING, None),
    )
    FIELDS_V7: ClassVar[tuple[Field, ...]] = ((4, "awaiting_on", MESSAGE, Future),)


class ErrorMessage(Message):
    TYPE = 0x0002
    code: int = 0
    message: str = ""
    stacktrace: str = ""
    related_command_index: int | None = None
    related_command_name: str | None = None
    related_command_type: int | None = None
    next_retry_delay: int | None = None
    behavior: int = 0
    FIELDS = (
        (1, "code", UINT, None),
        (2, "message", STRING, None),
        (3, "stacktrace", STRING, None),
        (4, "related_command_index", OPT_UINT, None),
        (5, "related_command_name", OPT_STRING, None),
        (6, "related_command_type", OPT_UINT, None),
        (8, "next_retry_delay", OPT_UINT, None),
        (9, "behavior", UINT, None),
    )


class EndMessage(Message):
    TYPE = 0x0003


class CommandAckMessage(Message):
    TYPE = 0x0004
    command_index: int = 0
    FIELDS = ((1, "command_index", UINT, None),)


class ProposeRunCompletionMessage(Message):
    TYPE = 0x0005
    result_completion_id: int = 0
    value: bytes | None = None
    failure: Failure | None = None
    FIELDS = (
        (1, "result_completion_id", UINT, None),
        (14, "value", OPT_BYTES, None),
        (15, "failure", MESSAGE, Failure),
    )


class AwaitingOnMessage(Message):
    TYPE = 0x0006
    awaiting_on: Future | None = None
    executing_side_effects: bool = False
    FIELDS = ((1, "awaiting_on", MESSAGE, Future), (2, "executing_side_effects", BOOL, None))


class ProposeRunCompletionAckMessage(Message):
    TYPE = 0x0007
    completion_id: int = 0
    FIELDS = ((1, "completion_id", UINT, None),)


# ---- commands


class InputCommandMessage(Message):
    TYPE = 0x0400
    headers: list[Header] = msgspec.field(default_factory=list)
    value: bytes | None = None
    name: str = ""
    FIELDS = (
        (1, "headers", REPEATED_MESSAGE, Header),
        (12, "name", STRING, None),
        (14, "value", VALUE, None),
    )


class OutputCommandMessage(Message):
    TYPE = 0x0401
    value: bytes | None = None
    failure: Failure | None = None
    name: str = ""
    FIELDS = (
        (12, "name", STRING, None),
        (14, "value", VALUE, None),
        (15, "failure", MESSAGE, Failure),
    )


class GetLazyStateCommandMessage(Message):
    TYPE = 0x0402
    key: bytes = b""
    result_completion_id: int = 0
    name: str = ""
    FIELDS = (
        (1, "key", BYTES, None),
        (11, "result_completion_id", UINT, None),
        (12, "name", STRING, None),
    )


class SetStateCommandMessage(Message):
    TYPE = 0x0403
    key: bytes = b""
    value: bytes | None = None
    name: str = ""
    FIELDS = ((1, "key", BYTES, None), (3, "value", VALUE, None), (12, "name", STRING, None))


class ClearStateCommandMessage(Message):
    TYPE = 0x0404
    key: bytes = b""
    name: str = ""
    FIELDS = ((1, "key", BYTES, None), (12, "name", STRING, None))


class ClearAllStateCommandMessage(Message):
    TYPE = 0x0405
    name: str = ""
    FIELDS = ((12, "name", STRING, None),)


class GetLazyStateKeysCommandMessage(Message):
    TYPE = 0x0406
    result_completion_id: int = 0
    name: str = ""
    FIELDS = ((11, "result_completion_id", UINT, None), (12, "name", STRING, None))


class GetEagerStateCommandMessage(Message):
    TYPE = 0x0407
    key: bytes = b""
    void: bool = False
    value: bytes | None = None
    name: str = ""
    FIELDS = (
        (1, "key", BYTES, None),
        (12, "name", STRING, None),
        (13, "void", VOID, None),
        (14, "value", VALUE, None),
    )


class GetEagerStateKeysCommandMessage(Message):
    TYPE = 0x0408
    value: list[bytes] | None = None
    name: str = ""
    FIELDS = ((12, "name", STRING, None), (14, "value", OPT_REPEATED_BYTES, None))


class GetPromiseCommandMessage(Message):
    TYPE = 0x0409
    key: str = ""
    result_completion_id: int = 0
    name: str = ""
    FIELDS = (
        (1, "key", STRING, None),
        (11, "result_completion_id", UINT, None),
        (12, "name", STRING, None),
    )


class PeekPromiseCommandMessage(Message):
    TYPE = 0x040A
    key: str = ""
    result_completion_id: int = 0
    name: str = ""
    FIELDS = GetPromiseCommandMessage.FIELDS


class CompletePromiseCommandMessage(Message):
    TYPE = 0x040B
    key: str = ""
    completion_value: bytes | None = None
    completion_failure: Failure | None = None
    result_completion_id: int = 0
    name: str = ""
    FIELDS = (
        (1, "key", STRING, None),
        (2, "completion_value", VALUE, None),
        (3, "completion_failure", MESSAGE, Failure),
        (11, "result_completion_id", UINT, None),
        (12, "name", STRING, None),
    )


class SleepCommandMessage(Message):
    TYPE = 0x040C
    wake_up_time: int = 0
    result_completion_id: int = 0
    name: str = ""
    FIELDS = (
        (1, "wake_up_time", UINT, None),
        (11, "result_completion_id", UINT, None),
        (12, "name", STRING, None),
    )


class CallCommandMessage(Message):
    TYPE = 0x040D
    service_name: str = ""
    handler_name: str = ""
    parameter: bytes = b""
    headers: list[Header] = msgspec.field(default_factory=list)
    key: str = ""
    idempotency_key: str | None = None
    scope: str | None = None
    limit_key: str | None = None
    invocation_id_notification_idx: int = 0
    result_completion_id: int = 0
    name: str = ""
    FIELDS = (
        (1, "service_name", STRING, None),
        (2, "handler_name", STRING, None),
        (3, "parameter", BYTES, None),
        (4, "headers", REPEATED_MESSAGE, Header),
        (5, "key", STRING, None),
        (6, "idempotency_key", OPT_STRING, None),
        (7, "scope", OPT_STRING, None),
        (8, "limit_key", OPT_STRING, None),
        (10, "invocation_id_notification_idx", UINT, None),
        (11, "result_completion_id", UINT, None),
        (12, "name", STRING, None),
    )


class OneWayCallCommandMessage(Message):
    TYPE = 0x040E
    service_name: str = ""
    handler_name: str = ""
    parameter: bytes = b""
    invoke_time: int = 0
    headers: list[Header] = msgspec.field(default_factory=list)
    key: str = ""
    idempotency_key: str | None = None
    scope: str | None = None
    limit_key: str | None = None
    invocation_id_notification_idx: int = 0
    name: str = ""
    FIELDS = (
        (1, "service_name", STRING, None),
        (2, "handler_name", STRING, None),
        (3, "parameter", BYTES, None),
        (4, "invoke_time", UINT, None),
        (5, "headers", REPEATED_MESSAGE, Header),
        (6, "key", STRING, None),
        (7, "idempotency_key", OPT_STRING, None),
        (8, "scope", OPT_STRING, None),
        (9, "limit_key", OPT_STRING, None),
        (10, "invocation_id_notification_idx", UINT, None),
        (12, "name", STRING, None),
    )


class SendSignalCommandMessage(Message):
    TYPE = 0x0410
    target_invocation_id: str = ""
    idx: int | None = None
    name: str | None = None
    void: bool = False
    value: bytes | None = None
    failure: Failure | None = None
    entry_name: str = ""
    FIELDS = (
        (1, "target_invocation_id", STRING, None),
        (2, "idx", OPT_UINT, None),
        (3, "name", OPT_STRING, None),
        (4, "void", VOID, None),
        (5, "value", VALUE, None),
        (6, "failure", MESSAGE, Failure),
        (12, "entry_name", STRING, None),
    )


class RunCommandMessage(Message):
    TYPE = 0x0411
    result_completion_id: int = 0
    name: str = ""
    FIELDS = ((11, "result_completion_id", UINT, None), (12, "name", STRING, None))


class AttachInvocationCommandMessage(Message):
    TYPE = 0x0412
    invocation_id: str | None = None
    idempotent_request_target: IdempotentRequestTarget | None = None
    workflow_target: WorkflowTarget | None = None
    result_completion_id: int = 0
    name: str = ""
    FIELDS = (
        (1, "invocation_id", OPT_STRING, None),
        (3, "idempotent_request_target", MESSAGE, IdempotentRequestTarget),
        (4, "workflow_target", MESSAGE, WorkflowTarget),
        (11, "result_completion_id", UINT, None),
        (12, "name", STRING, None),
    )


class GetInvocationOutputCommandMessage(Message):
    TYPE = 0x0413
    invocation_id: str | None = None
    idempotent_request_target: IdempotentRequestTarget | None = None
    workflow_target: WorkflowTarget | None = None
    result_completion_id: int = 0
    name: str = ""
    FIELDS = AttachInvocationCommandMessage.FIELDS


class CompleteAwakeableCommandMessage(Message):
    TYPE = 0x0414
    awakeable_id: str = ""
    value: bytes | None = None
    failure: Failure | None = None
    name: str = ""
    FIELDS = (
        (1, "awakeable_id", STRING, None),
        (2, "value", VALUE, None),
        (3, "failure", MESSAGE, Failure),
        (12, "name", STRING, None),
    )


# ---- notifications: one shape, the type id tells them apart


class NotificationMessage(Message):
    completion_id: int | None = None
    signal_id: int | None = None
    signal_name: str | None = None
    void: bool = False
    value: bytes | None = None
    failure: Failure | None = None
    invocation_id: str | None = None
    state_keys: list[bytes] | None = None
    FIELDS = (
        (1, "completion_id", OPT_UINT, None),
        (2, "signal_id", OPT_UINT, None),
        (3, "signal_name", OPT_STRING, None),
        (4, "void", VOID, None),
        (5, "value", VALUE, None),
        (6, "failure", MESSAGE, Failure),
        (16, "invocation_id", OPT_STRING, None),
        (17, "state_keys", OPT_REPEATED_BYTES, None),
    )


class GetLazyStateCompletionNotificationMessage(NotificationMessage):
    TYPE = 0x8002


class GetLazyStateKeysCompletionNotificationMessage(NotificationMessage):
    TYPE = 0x8006


class GetPromiseCompletionNotificationMessage(NotificationMessage):
    TYPE = 0x8009


class PeekPromiseCompletionNotificationMessage(NotificationMessage):
    TYPE = 0x800A


class CompletePromiseCompletionNotificationMessage(NotificationMessage):
    TYPE = 0x800B


class SleepCompletionNotificationMessage(NotificationMessage):
    TYPE = 0x800C


class CallCompletionNotificationMessage(NotificationMessage):
    TYPE = 0x800D


class CallInvocationIdCompletionNotificationMessage(NotificationMessage):
    TYPE = 0x800E


class RunCompletionNotificationMessage(NotificationMessage):
    TYPE = 0x8011


class AttachInvocationCompletionNotificationMessage(NotificationMessage):
    TYPE = 0x8012


class GetInvocationOutputCompletionNotificationMessage(NotificationMessage):
    TYPE = 0x8013


class SignalNotificationMessage(NotificationMessage):
    TYPE = 0xFBFF


MESSAGE_TYPES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        StartMessage,
        SuspensionMessage,
        ErrorMessage,
        EndMessage,
        CommandAckMessage,
        ProposeRunCompletionMessage,
        AwaitingOnMessage,
        ProposeRunCompletionAckMessage,
        InputCommandMessage,
        OutputCommandMessage,
        GetLazyStateCommandMessage,
        SetStateCommandMessage,
        ClearStateCommandMessage,
        ClearAllStateCommandMessage,
        GetLazyStateKeysCommandMessage,
        GetEagerStateCommandMessage,
        GetEagerStateKeysCommandMessage,
        GetPromiseCommandMessage,
        PeekPromiseCommandMessage,
        CompletePromiseCommandMessage,
        SleepCommandMessage,
        CallCommandMessage,
        OneWayCallCommandMessage,
        SendSignalCommandMessage,
        RunCommandMessage,
        AttachInvocationCommandMessage,
        GetInvocationOutputCommandMessage,
        CompleteAwakeableCommandMessage,
        GetLazyStateCompletionNotificationMessage,
        GetLazyStateKeysCompletionNotificationMessage,
        GetPromiseCompletionNotificationMessage,
        PeekPromiseCompletionNotificationMessage,
        CompletePromiseCompletionNotificationMessage,
        SleepCompletionNotificationMessage,
        CallCompletionNotificationMessage,
        CallInvocationIdCompletionNotificationMessage,
        RunCompletionNotificationMessage,
        AttachInvocationCompletionNotificationMessage,
        GetInvocationOutputCompletionNotificationMessage,
        SignalNotificationMessage,
    )
}


def _short_name(cls: type[Message]) -> str:
    name = cls.__name__
    for suffix in (
        "CompletionNotificationMessage",
        "NotificationMessage",
        "CommandMessage",
        "Message",
    ):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


MESSAGE_NAMES: dict[int, str] = {t: cls.__name__ for t, cls in MESSAGE_TYPES.items()}
SHORT_NAMES: dict[int, str] = {t: _short_name(cls) for t, cls in MESSAGE_TYPES.items()}


def is_command(type_id: int) -> bool:
    return 0x0400 <= type_id < 0x8000


def is_notification(type_id: int) -> bool:
    return 0x8000 <= type_id < 0xFC00


def is_control(type_id: int) -> bool:
    return type_id < 0x0400


# ---- encoding


def _tag(number: int, wire_type: int) -> bytes:
    return encode_varint((number << 3) | wire_type)


def _len_delim(number: int, payload: bytes) -> bytes:
    return _tag(number, LENGTH_DELIMITED) + encode_varint(len(payload)) + payload


def _encode_fields(msg: Any, fields: tuple[Field, ...]) -> bytes:
    out: list[bytes] = []
    append = out.append
    for number, attr, kind, _nested in fields:
        value = getattr(msg, attr)
        if kind is UINT:
            if value:
                append(_tag(number, VARINT))
                append(encode_varint(value))
        elif kind is STRING:
            if value:
                append(_len_delim(number, value.encode()))
        elif kind is BYTES:
            if value:
                append(_len_delim(number, value))
        elif kind is VALUE:
            if value is not None:
                inner = _len_delim(1, value) if value else b""
                append(_len_delim(number, inner))
        elif kind is MESSAGE:
            if value is not None:
                append(_len_delim(number, _encode_fields(value, value.FIELDS)))
        elif kind is REPEATED_MESSAGE:
            for item in value:
                append(_len_delim(number, _encode_fields(item, item.FIELDS)))
        elif kind is OPT_UINT:
            if value is not None:
                append(_tag(number, VARINT))
                append(encode_varint(value))
        elif kind is OPT_STRING:
            if value is not None:
                append(_len_delim(number, value.encode()))
        elif kind is OPT_BYTES:
            if value is not None:
                append(_len_delim(number, value))
        elif kind is BOOL:
            if value:
                append(_tag(number, VARINT))
                append(b"\x01")
        elif kind is VOID:
            if value:
                append(_len_delim(number, b""))
        elif kind is REPEATED_UINT:
            if value:
                append(_len_delim(number, b"".join(encode_varint(v) for v in value)))
        elif kind is REPEATED_STRING:
            for item in value:
                append(_len_delim(number, item.encode()))
        elif kind is REPEATED_BYTES:
            for item in value:
                append(_len_delim(number, item))
        elif kind is OPT_REPEATED_BYTES:
            if value is not None:
                append(_len_delim(number, b"".join(_len_delim(1, item) for item in value)))
        else:  # pragma: no cover - the tables are static
            raise AssertionError(kind)
    return b"".join(out)


def _ld(tag_byte: bytes, payload: bytes) -> bytes:
    return tag_byte + encode_varint(len(payload)) + payload


def _encode_start(m: StartMessage) -> bytes:
    """Hand-unrolled: one StartMessage per attempt."""
    out = bytearray()
    if m.id:
        out += _ld(b"\x0a", m.id)
    if m.debug_id:
        out += _ld(b"\x12", m.debug_id.encode())
    if m.known_entries:
        out += b"\x18" + encode_varint(m.known_entries)
    for entry in m.state_map:
        inner = b""
        if entry.key:
            inner += _ld(b"\x0a", entry.key)
        if entry.value:
            inner += _ld(b"\x12", entry.value)
        out += _ld(b"\x22", inner)
    if m.partial_state:
        out += b"\x28\x01"
    if m.key:
        out += _ld(b"\x32", m.key.encode())
    if m.retry_count_since_last_stored_entry:
        out += b"\x38" + encode_varint(m.retry_count_since_last_stored_entry)
    if m.duration_since_last_stored_entry:
        out += b"\x40" + encode_varint(m.duration_since_last_stored_entry)
    if m.random_seed:
        out += b"\x48" + encode_varint(m.random_seed)
    if m.scope is not None:
        out += _ld(b"\x52", m.scope.encode())
    if m.limit_key is not None:
        out += _ld(b"\x5a", m.limit_key.encode())
    if m.idempotency_key is not None:
        out += _ld(b"\x62", m.idempotency_key.encode())
    return bytes(out)


def _encode_input(m: InputCommandMessage) -> bytes:
    """Hand-unrolled: the partition writes one Input per invocation."""
    out = bytearray()
    for header in m.headers:
        inner = b""
        if header.key:
            inner += _ld(b"\x0a", header.key.encode())
        if header.value:
            inner += _ld(b"\x12", header.value.encode())
        out += _ld(b"\x0a", inner)
    if m.name:
        out += _ld(b"\x62", m.name.encode())
    if m.value is not None:
        out += _ld(b"\x72", _ld(b"\x0a", m.value) if m.value else b"")
    return bytes(out)


def _encode_notification(m: NotificationMessage) -> bytes:
    """Hand-unrolled: every completion the runtime produces has this shape."""
    out = bytearray()
    if m.completion_id is not None:
        out += b"\x08" + encode_varint(m.completion_id)
    if m.signal_id is not None:
        out += b"\x10" + encode_varint(m.signal_id)
    if m.signal_name is not None:
        out += _ld(b"\x1a", m.signal_name.encode())
    if m.void:
        out += b"\x22\x00"
    if m.value is not None:
        out += _ld(b"\x2a", _ld(b"\x0a", m.value) if m.value else b"")
    if m.failure is not None:
        out += _ld(b"\x32", _encode_fields(m.failure, Failure.FIELDS))
    if m.invocation_id is not None:
        out += _ld(b"\x82\x01", m.invocation_id.encode())
    if m.state_keys is not None:
        out += _ld(b"\x8a\x01", b"".join(_ld(b"\x0a", key) for key in m.state_keys))
    return bytes(out)


_FAST_ENCODERS: dict[type[Message], Callable[[Any], bytes]] = {
    StartMessage: _encode_start,
    InputCommandMessage: _encode_input,
}
for _notification in MESSAGE_TYPES.values():
    if issubclass(_notification, NotificationMessage):
        _FAST_ENCODERS[_notification] = _encode_notification


def encode_message(msg: Message, version: int = 6) -> bytes:
    """The protobuf body of ``msg`` (without the frame header)."""
    fast = _FAST_ENCODERS.get(type(msg))
    if fast is not None:
        return fast(msg)
    fields = msg.FIELDS
    if version >= 7 and type(msg) is SuspensionMessage:
        fields = SuspensionMessage.FIELDS_V7
    return _encode_fields(msg, fields)


# ---- decoding

_Decoder = Callable[[bytes], Message]
_FIELD_MAPS: dict[type, dict[int, tuple[str, str, Any]]] = {}


def _field_map(cls: type[Message], fields: tuple[Field, ...]) -> dict[int, tuple[str, str, Any]]:
    return {number: (attr, kind, nested) for number, attr, kind, nested in fields}


def _decode_fields(cls: type[Message], buf: bytes, fmap: dict[int, tuple[str, str, Any]]) -> Any:
    kwargs: dict[str, Any] = {}
    pos = 0
    end = len(buf)
    while pos < end:
        key = buf[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = decode_varint(buf, pos)
        number = key >> 3
        wire_type = key & 7
        spec = fmap.get(number)
        if spec is None:
            pos = skip_field(buf, pos, wire_type)
            continue
        attr, kind, nested = spec
        if wire_type == VARINT:
            value, pos = decode_varint(buf, pos)
            if kind is REPEATED_UINT:
                kwargs.setdefault(attr, []).append(value)
            elif kind is BOOL:
                kwargs[attr] = bool(value)
            elif kind is UINT or kind is OPT_UINT:
                kwargs[attr] = value
            else:
                raise ProtocolError(f"field {number} of {cls.__name__} has the wrong wire type")
            continue
        if wire_type != LENGTH_DELIMITED:
            pos = skip_field(buf, pos, wire_type)
            continue
        length = buf[pos]
        if length < 0x80:
            pos += 1
        else:
            length, pos = decode_varint(buf, pos)
        stop = pos + length
        if stop > end:
            raise ProtocolError(f"truncated field {number} in {cls.__name__}")
        chunk = buf[pos:stop]
        pos = stop
        if kind is STRING or kind is OPT_STRING:
            try:
                kwargs[attr] = chunk.decode()
            except UnicodeDecodeError as exc:
                raise ProtocolError(f"invalid UTF-8 in {cls.__name__}.{attr}") from exc
        elif kind is BYTES or kind is OPT_BYTES:
            kwargs[attr] = chunk
        elif kind is VALUE:
            kwargs[attr] = _decode_value(chunk)
        elif kind is MESSAGE:
            kwargs[attr] = _decode_nested(nested, chunk)
        elif kind is REPEATED_MESSAGE:
            kwargs.setdefault(attr, []).append(_decode_nested(nested, chunk))
        elif kind is VOID:
            kwargs[attr] = True
        elif kind is REPEATED_UINT:
            items = kwargs.setdefault(attr, [])
            inner = 0
            while inner < len(chunk):
                value, inner = decode_varint(chunk, inner)
                items.append(value)
        elif kind is REPEATED_STRING:
            try:
                kwargs.setdefault(attr, []).append(chunk.decode())
            except UnicodeDecodeError as exc:
                raise ProtocolError(f"invalid UTF-8 in {cls.__name__}.{attr}") from exc
        elif kind is REPEATED_BYTES:
            kwargs.setdefault(attr, []).append(chunk)
        elif kind is OPT_REPEATED_BYTES:
            kwargs[attr] = _decode_state_keys(chunk)
        elif kind is UINT or kind is OPT_UINT or kind is BOOL:
            raise ProtocolError(f"field {number} of {cls.__name__} has the wrong wire type")
    try:
        return cls(**kwargs)
    except (TypeError, msgspec.ValidationError) as exc:  # pragma: no cover - defensive
        raise ProtocolError(f"invalid {cls.__name__}: {exc}") from exc


def _decode_value(chunk: bytes) -> bytes:
    """Value{bytes content = 1}; an empty Value is the empty byte string."""
    if not chunk:
        return b""
    pos = 0
    content = b""
    while pos < len(chunk):
        key, pos = decode_varint(chunk, pos)
        if key == 0x0A:
            length, pos = decode_varint(chunk, pos)
            content = chunk[pos : pos + length]
            pos += length
        else:
            pos = skip_field(chunk, pos, key & 7)
    return content


def _decode_state_keys(chunk: bytes) -> list[bytes]:
    keys: list[bytes] = []
    pos = 0
    while pos < len(chunk):
        key, pos = decode_varint(chunk, pos)
        if key == 0x0A:
            length, pos = decode_varint(chunk, pos)
            keys.append(chunk[pos : pos + length])
            pos += length
        else:
            pos = skip_field(chunk, pos, key & 7)
    return keys


def _decode_nested(cls: type[Message], chunk: bytes) -> Message:
    fmap = _FIELD_MAPS.get(cls)
    if fmap is None:
        fmap = _FIELD_MAPS[cls] = _field_map(cls, cls.FIELDS)
    return _decode_fields(cls, chunk, fmap)  # type: ignore[no-any-return]


_NESTED: tuple[type[Message], ...] = (Failure, FailureMetadata, Header, StateEntry, Future)
for _cls in (*MESSAGE_TYPES.values(), *_NESTED):
    _FIELD_MAPS[_cls] = _field_map(_cls, _cls.FIELDS)
_SUSPENSION_V7_MAP = _field_map(SuspensionMessage, SuspensionMessage.FIELDS_V7)


def decode_message(type_id: int, body: bytes, version: int = 6) -> Any:
    """Decode a message body by its type id; unknown field numbers are skipped."""
    cls = MESSAGE_TYPES.get(type_id)
    if cls is None:
        raise ProtocolError(f"unknown message type {type_id:#06x}")
    if version >= 7 and cls is SuspensionMessage:
        return _decode_fields(cls, body, _SUSPENSION_V7_MAP)
    return _decode_fields(cls, body, _FIELD_MAPS[cls])
