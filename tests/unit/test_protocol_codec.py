"""The protocol codec against the captured bytes of the real server and SDKs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from restate_server.protocol import messages as pm
from restate_server.protocol.errors import InvalidIdError, ProtocolError
from restate_server.protocol.framing import REQUESTED_ACK, FrameDecoder, encode_frame
from restate_server.protocol.ids import (
    InvocationId,
    awakeable_id,
    idempotent_invocation_id,
    new_ulid_string,
    parse_awakeable_id,
    partition_key_for_key,
    workflow_invocation_id,
)
from restate_server.protocol.versions import (
    DISCOVERY_ACCEPT,
    choose_protocol_version,
    parse_manifest_content_type,
)

# Captured frames of restate-server 1.7.12 with the real SDKs (from the protocol ground truth).
VECTORS = Path(__file__).resolve().parents[1] / "data" / "protocol-test-vectors.txt"


def _vectors() -> list[tuple[str, bytes, int]]:
    """(description, frame bytes, protocol version) of every frame in test-vectors.txt."""
    out = []
    for block in re.split(r"\n(?=runtime->sdk|sdk->runtime)", VECTORS.read_text()):
        match = re.search(
            r"\[0x([0-9A-Fa-f]{4}) flags=0x([0-9A-Fa-f]{4}) len=(\d+)\]\s*(\S+)", block
        )
        header = re.search(r"header: ([0-9a-f ]+)", block)
        if match is None or header is None:
            continue
        body = "".join(re.findall(r"body:\s+([0-9a-f ]+)", block)).replace(" ", "")
        raw = bytes.fromhex(header.group(1).replace(" ", "")) + bytes.fromhex(body)
        version = 7 if "awaiting_on(4)" in block else 6
        out.append((match.group(4), raw, version))
    return out


def test_every_captured_frame_round_trips_byte_exact() -> None:
    vectors = _vectors()
    assert len(vectors) >= 15
    for name, raw, version in vectors:
        [frame] = FrameDecoder().feed(raw)
        message = pm.decode_message(frame.type_id, frame.body, version)
        assert encode_frame(message, frame.flags, version) == raw, name


def test_greet_exchange_fields() -> None:
    start = pm.StartMessage(
        id=bytes.fromhex("b8459d3141e8500d4609fac9dcc983c2a227cd77165765f1"),
        debug_id="inv_118SCwqFkHqg7lvsJiPTNS3ab5Df26t2US",
        known_entries=1,
        partial_state=True,
        duration_since_last_stored_entry=1,
        random_seed=5605748399097159116,
    )
    decoded = pm.decode_message(0, pm.encode_message(start))
    assert decoded == start
    assert InvocationId.from_bytes(start.id).to_str() == start.debug_id


def test_value_presence_and_void() -> None:
    empty = pm.OutputCommandMessage(value=b"")
    assert pm.encode_message(empty) == b"\x72\x00"
    assert pm.decode_message(empty.TYPE, b"\x72\x00").value == b""
    assert pm.decode_message(empty.TYPE, b"").value is None
    void = pm.GetLazyStateCompletionNotificationMessage(completion_id=1, void=True)
    decoded = pm.decode_message(void.TYPE, pm.encode_message(void))
    assert decoded.void and decoded.value is None


def test_suspension_layout_depends_on_version() -> None:
    v6 = pm.SuspensionMessage(waiting_completions=[2], waiting_signals=[1])
    assert pm.encode_message(v6, 6) == bytes.fromhex("0a0102120101")
    future = pm.Future(waiting_completions=[2], waiting_signals=[1], combinator_type=1)
    v7 = pm.SuspensionMessage(awaiting_on=future)
    body = pm.encode_message(v7, 7)
    assert pm.decode_message(v7.TYPE, body, 7).awaiting_on == future
    # the V6 reader sees nothing in a V7 body: the layouts must not be mixed up
    assert pm.decode_message(v7.TYPE, body, 6).waiting_completions == []


def test_unpacked_repeated_and_unknown_fields_are_accepted() -> None:
    unpacked = bytes.fromhex("0802 0803 1001".replace(" ", ""))
    message = pm.decode_message(pm.SuspensionMessage.TYPE, unpacked)
    assert message.waiting_completions == [2, 3] and message.waiting_signals == [1]
    with_unknown = bytes.fromhex("f80101") + pm.encode_message(pm.EndMessage())
    assert pm.decode_message(pm.EndMessage.TYPE, with_unknown) == pm.EndMessage()


def test_every_message_type_round_trips() -> None:
    samples = [
        pm.CallCommandMessage(
            service_name="S",
            handler_name="h",
            parameter=b"{}",
            headers=[pm.Header(key="a", value="b")],
            key="k",
            idempotency_key="",
            invocation_id_notification_idx=1,
            result_completion_id=2,
            name="call",
        ),
        pm.OneWayCallCommandMessage(service_name="S", handler_name="h", invoke_time=5),
        pm.SendSignalCommandMessage(target_invocation_id="inv_1x", idx=17, value=b"1"),
        pm.CompletePromiseCommandMessage(
            key="p", completion_failure=pm.Failure(code=500, message="x")
        ),
        pm.AttachInvocationCommandMessage(
            workflow_target=pm.WorkflowTarget(workflow_name="W", workflow_key="k")
        ),
        pm.GetEagerStateKeysCommandMessage(value=[b"a", b"b"]),
        pm.ErrorMessage(code=570, message="mismatch", related_command_index=0, next_retry_delay=5),
        pm.CallInvocationIdCompletionNotificationMessage(completion_id=1, invocation_id="inv_1"),
        pm.GetLazyStateKeysCompletionNotificationMessage(completion_id=3, state_keys=[]),
        pm.SignalNotificationMessage(signal_name="go", value=b'"yes"'),
        pm.ProposeRunCompletionMessage(result_completion_id=1, value=b""),
        pm.AwaitingOnMessage(
            awaiting_on=pm.Future(nested_futures=[pm.Future(waiting_signals=[1])])
        ),
    ]
    for message in samples:
        assert pm.decode_message(message.TYPE, pm.encode_message(message, 7), 7) == message


def test_optional_presence_is_kept() -> None:
    call = pm.CallCommandMessage(idempotency_key="")
    assert pm.decode_message(call.TYPE, pm.encode_message(call)).idempotency_key == ""
    assert pm.decode_message(call.TYPE, b"").idempotency_key is None


def test_frame_decoder_handles_split_and_coalesced_frames() -> None:
    frames = b"".join(
        encode_frame(m)
        for m in (pm.OutputCommandMessage(value=b"x" * 40_000), pm.EndMessage(), pm.EndMessage())
    )
    decoder = FrameDecoder()
    got = []
    for i in range(0, len(frames), 777):
        got.extend(decoder.feed(frames[i : i + 777]))
    assert [f.type_id for f in got] == [0x0401, 0x0003, 0x0003]
    assert pm.decode_message(got[0].type_id, got[0].body).value == b"x" * 40_000
    assert decoder.pending == 0
    ack = encode_frame(pm.ProposeRunCompletionMessage(result_completion_id=1), REQUESTED_ACK)
    assert FrameDecoder().feed(ack)[0].flags == REQUESTED_ACK


def test_oversized_and_unknown_messages_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        FrameDecoder(max_message_size=10).feed(b"\x04\x01\x00\x00\x00\x00\x00\x0b" + b"x" * 11)
    with pytest.raises(ProtocolError):
        pm.decode_message(0x7777, b"")
    with pytest.raises(ProtocolError):
        pm.decode_message(pm.OutputCommandMessage.TYPE, b"\x72\x05\x0a")


def test_invocation_ids_match_the_captures() -> None:
    raw = bytes.fromhex("bb7aa94708463d9ac7f8091f7574e07b55db7961662bf1af")
    text = "inv_1df0LOOFd1V15lZS3ZwWvSmJGglkb6OuP5"
    assert InvocationId.from_bytes(raw).to_str() == text
    assert InvocationId.from_str(text).to_bytes() == raw
    with pytest.raises(InvalidIdError, match="unrecognized codec version"):
        InvocationId.from_str("inv_bad")
    with pytest.raises(InvalidIdError, match="bad format"):
        InvocationId.from_str("not-an-id")


def test_keyed_ids_share_the_partition_key() -> None:
    a = idempotent_invocation_id("Counter", "k1", "add", "x")
    b = workflow_invocation_id("Wf", "k1")
    assert a.partition_key == b.partition_key == partition_key_for_key("Counter", "k1")
    assert workflow_invocation_id("Wf", "k1") == b  # deterministic
    assert idempotent_invocation_id("S", None, "h", "a") != idempotent_invocation_id(
        "S", None, "h", "b"
    )
    assert len(new_ulid_string(1_700_000_000_000)) == 26


def test_awakeable_ids() -> None:
    invocation = InvocationId.from_str("inv_1df0LOOFd1V15lZS3ZwWvSmJGglkb6OuP5")
    text = awakeable_id(invocation, 17)
    assert text.startswith("sign_1") and len(text) == 44
    assert parse_awakeable_id(text) == (invocation, "sign", 17)
    assert parse_awakeable_id(text + "==")[2] == 17  # padding accepted
    captured = "sign_1LN53gGvJCQ3qWUN5QnwFro7FkhOXGAwsAAAAEQ"
    assert parse_awakeable_id(captured)[2] == 17
    with pytest.raises(InvalidIdError, match="unrecognized codec version"):
        parse_awakeable_id("prom_bad")


def test_version_negotiation() -> None:
    assert choose_protocol_version(5, 7) == 6
    assert choose_protocol_version(5, 7, enable_v7=True) == 7
    assert choose_protocol_version(5, 5) == 5
    assert choose_protocol_version(8, 9) is None
    assert choose_protocol_version(1, 4) is None
    assert parse_manifest_content_type("application/vnd.restate.endpointmanifest.v4+json") == 4
    assert DISCOVERY_ACCEPT.count("endpointmanifest") == 4


def test_ulid_strings_carry_the_timestamp() -> None:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    text = new_ulid_string(1_700_000_000_123)
    assert len(text) == 26 and set(text) <= set(alphabet)
    number = 0
    for char in text:
        number = number * 32 + alphabet.index(char)
    assert number >> 80 == 1_700_000_000_123
    assert number < 1 << 128


def test_fast_encoders_match_the_generic_encoder() -> None:
    samples: list[pm.Message] = [
        pm.StartMessage(
            id=b"\x01" * 24,
            debug_id="inv_1x",
            known_entries=300,
            state_map=[pm.StateEntry(key=b"k", value=b""), pm.StateEntry(key=b"a", value=b"1")],
            partial_state=True,
            key="k 1/\u00fc",
            retry_count_since_last_stored_entry=2,
            duration_since_last_stored_entry=597,
            random_seed=2**63 + 5,
            idempotency_key="",
        ),
        pm.StartMessage(),
        pm.InputCommandMessage(headers=[pm.Header(key="a", value="")], value=b"", name="n"),
        pm.InputCommandMessage(value=b"x" * 300),
        pm.SignalNotificationMessage(signal_name="go", failure=pm.Failure(code=500, message="m")),
        pm.GetLazyStateKeysCompletionNotificationMessage(completion_id=0, state_keys=[b"", b"k"]),
        pm.CallInvocationIdCompletionNotificationMessage(completion_id=1, invocation_id="inv_1"),
        pm.SleepCompletionNotificationMessage(completion_id=2, void=True),
        pm.RunCompletionNotificationMessage(completion_id=3, value=b""),
    ]
    for message in samples:
        generic = pm._encode_fields(message, message.FIELDS)
        assert pm.encode_message(message) == generic, type(message).__name__
        assert pm.decode_message(message.TYPE, generic) == message


def test_base62_encoding_matches_digit_by_digit_definition() -> None:
    import random

    from restate_server.protocol.ids import B62, b62_decode, b62_encode

    def reference(number: int, width: int) -> str:
        digits = ""
        while number:
            number, rem = divmod(number, 62)
            digits = B62[rem] + digits
        return digits.rjust(width, "0")

    rng = random.Random(7)
    samples = [0, 1, 61, 62, 3843, 3844, 62**11 - 1, 2**64 - 1, 2**128 - 1]
    samples += [rng.getrandbits(rng.randint(1, 128)) for _ in range(2000)]
    for number in samples:
        for width in (11, 22):
            encoded = b62_encode(number, width)
            assert encoded == reference(number, width)
            assert b62_decode(encoded) == number
