"""The sans-IO invocation state machine of the SDK.

It is fed the bytes the runtime sends (Start, the journal to replay, then live
notifications) and is asked, by the context, to record commands. While the
journal is replayed, every command the handler produces is compared with the
journaled one (a difference is a journal mismatch, protocol error 570) and the
journaled one is used; afterwards new commands are written out. Notifications
are remembered by completion id / signal id / signal name, each with its journal
position, so that "which completed first" has the same answer on every replay.

No I/O and no asyncio here: :mod:`restate_sdk.invocation` drives it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from restate_sdk.exceptions import JOURNAL_MISMATCH, PROTOCOL_VIOLATION, SdkInternalException
from restate_server.protocol import messages as pm
from restate_server.protocol.framing import FrameDecoder, encode_frame

CANCEL_SIGNAL = 1
FIRST_AWAKEABLE_SIGNAL = 17

# A notification key: ("c", completion id) | ("s", signal index) | ("n", signal name)
Key = tuple[str, Any]


class Notification(NamedTuple):
    position: int  # order of arrival = journal order
    message: pm.NotificationMessage


# Fields that legitimately differ between the original run and a replay.
_IGNORED_ON_REPLAY: dict[type, frozenset[str]] = {
    pm.SleepCommandMessage: frozenset({"wake_up_time"}),
    pm.OneWayCallCommandMessage: frozenset({"invoke_time"}),
    pm.GetEagerStateCommandMessage: frozenset({"value", "void"}),
    pm.GetEagerStateKeysCommandMessage: frozenset({"value"}),
}


def notification_key(message: pm.NotificationMessage) -> Key:
    if message.completion_id is not None:
        return ("c", message.completion_id)
    if message.signal_id is not None:
        return ("s", message.signal_id)
    return ("n", message.signal_name)


class InvocationMachine:
    def __init__(self, version: int = 6) -> None:
        self.version = version
        self._decoder = FrameDecoder()
        self.start: pm.StartMessage | None = None
        self.input: pm.InputCommandMessage | None = None
        self._known_entries = 0
        self._received_entries = 0
        self._replay: list[pm.Message] = []  # journaled commands after Input
        self.notifications: dict[Key, Notification] = {}
        self._position = 0
        self.command_index = 0  # Input is command 0
        self._next_completion_id = 1
        self._next_signal_index = FIRST_AWAKEABLE_SIGNAL
        self.input_closed = False
        self._out = bytearray()
        self.state: dict[bytes, bytes] = {}
        self.partial_state = True
        self.ended = False

    # ---- input

    @property
    def ready(self) -> bool:
        """Start and every journal entry it announced have arrived."""
        return self.start is not None and self._received_entries >= self._known_entries

    def feed(self, data: bytes) -> list[Key]:
        """Consume bytes from the runtime; returns the keys of new notifications."""
        new: list[Key] = []
        for frame in self._decoder.feed(data):
            message = pm.decode_message(frame.type_id, frame.body, self.version)
            if isinstance(message, pm.StartMessage):
                if self.start is not None:
                    raise SdkInternalException(PROTOCOL_VIOLATION, "second Start message")
                self._on_start(message)
            elif isinstance(message, pm.NotificationMessage):
                if self.start is None:
                    raise SdkInternalException(PROTOCOL_VIOLATION, "entry before Start")
                self._received_entries += 1
                key = notification_key(message)
                if key not in self.notifications:
                    self.notifications[key] = Notification(self._position, message)
                    self._position += 1
                    new.append(key)
            elif pm.is_command(frame.type_id):
                if self.start is None or self._received_entries >= self._known_entries:
                    raise SdkInternalException(
                        PROTOCOL_VIOLATION, "a command outside the replayed journal"
                    )
                self._received_entries += 1
                if isinstance(message, pm.InputCommandMessage) and self.input is None:
                    self.input = message
                else:
                    self._replay.append(message)
            elif isinstance(message, (pm.CommandAckMessage, pm.ProposeRunCompletionAckMessage)):
                continue  # we never ask for acks
            else:
                name = pm.MESSAGE_NAMES.get(frame.type_id, hex(frame.type_id))
                raise SdkInternalException(PROTOCOL_VIOLATION, f"unexpected message {name}")
        return new

    def _on_start(self, start: pm.StartMessage) -> None:
        if start.known_entries < 1:
            raise SdkInternalException(PROTOCOL_VIOLATION, "known_entries must be at least 1")
        self.start = start
        self._known_entries = start.known_entries
        self.state = {entry.key: entry.value for entry in start.state_map}
        self.partial_state = start.partial_state

    def close_input(self) -> None:
        self.input_closed = True

    # ---- ids

    def new_completion_id(self) -> int:
        value = self._next_completion_id
        self._next_completion_id += 1
        return value

    def new_signal_index(self) -> int:
        value = self._next_signal_index
        self._next_signal_index += 1
        return value

    # ---- commands

    @property
    def replaying(self) -> bool:
        return self.command_index - 1 < len(self._replay)

    def peek_replay(self) -> pm.Message | None:
        """The journaled command the next ``command`` call will be compared with."""
        slot = self.command_index
        return self._replay[slot] if slot < len(self._replay) else None

    def command(self, message: pm.Message) -> Any:
        """Record a command: compared with the journal while replaying, else written out.

        Returns the journaled command (replay) or ``message`` itself.
        """
        self.command_index += 1
        slot = self.command_index - 1
        if slot < len(self._replay):
            journaled = self._replay[slot]
            if not _same_command(journaled, message):
                raise SdkInternalException(
                    JOURNAL_MISMATCH,
                    f"Journal mismatch: replayed {_describe(journaled)}, "
                    f"but the code now produces {_describe(message)}",
                    related_command_index=self.command_index,
                    related_command_type=message.TYPE,
                    related_command_name=getattr(message, "name", None) or None,
                )
            return journaled
        self._write(message)
        return message

    def propose_run(
        self, completion_id: int, value: bytes | None, failure: pm.Failure | None
    ) -> None:
        self._write(
            pm.ProposeRunCompletionMessage(
                result_completion_id=completion_id, value=value, failure=failure
            )
        )

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self._write(pm.EndMessage())

    def suspend(self, completions: list[int], signals: list[int], names: list[str]) -> None:
        if self.ended:
            return
        self.ended = True
        signals = sorted({*signals, CANCEL_SIGNAL})
        completions = sorted(set(completions))
        if self.version >= 7:
            future = pm.Future(
                waiting_completions=completions,
                waiting_signals=signals,
                waiting_named_signals=names,
                combinator_type=pm.CombinatorType.FIRST_COMPLETED,
            )
            self._write(pm.SuspensionMessage(awaiting_on=future))
        else:
            self._write(
                pm.SuspensionMessage(
                    waiting_completions=completions,
                    waiting_signals=signals,
                    waiting_named_signals=names,
                )
            )

    def error(
        self,
        code: int,
        message: str,
        *,
        stacktrace: str = "",
        related_command_index: int | None = None,
        related_command_type: int | None = None,
        related_command_name: str | None = None,
        next_retry_delay_ms: int | None = None,
    ) -> None:
        if self.ended:
            return
        self.ended = True
        self._write(
            pm.ErrorMessage(
                code=code,
                message=message,
                stacktrace=stacktrace,
                related_command_index=related_command_index,
                related_command_type=related_command_type,
                related_command_name=related_command_name,
                next_retry_delay=next_retry_delay_ms,
            )
        )

    # ---- output

    def _write(self, message: pm.Message) -> None:
        self._out += encode_frame(message, version=self.version)

    def take_output(self) -> bytes:
        data, self._out = bytes(self._out), bytearray()
        return data

    @property
    def has_output(self) -> bool:
        return bool(self._out)


def _same_command(journaled: pm.Message, produced: pm.Message) -> bool:
    if type(journaled) is not type(produced):
        return False
    ignored = _IGNORED_ON_REPLAY.get(type(produced), frozenset())
    old = msgspec.structs.asdict(journaled)
    new = msgspec.structs.asdict(produced)
    return all(old[name] == new[name] for name in old if name not in ignored)


def _describe(message: pm.Message) -> str:
    name = pm.SHORT_NAMES.get(message.TYPE, type(message).__name__)
    label = getattr(message, "name", "") or ""
    return f"{name}({label!r})" if label else name
