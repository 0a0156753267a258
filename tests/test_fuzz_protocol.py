"""Fuzzing the protocol's decoding and command parsing with Hypothesis, without a server.

Every op of the op table (the core ones and every kind's viewer command), with fields
that fit and then broken ones (wrong types, odd and huge Unicode, missing and unknown
fields), through both codecs. What must hold: a frame becomes a command or the
documented refusal, never another exception, and a refusal stays short whatever it
was sent. The same commands go to a live node in tests/test_fuzz_live.py.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.codec import CODECS, JSON, MSGPACK, DecodeError
from protocol.codes import ERROR_BY_NAME
from protocol.messages import (
    CORE_OPS,
    KEY_RE,
    MAX_NAME_CHARS,
    ROOM_ID_RE,
    AskSnapshot,
    CommandError,
    Danmaku,
    Host,
    Join,
    OpRule,
    Participate,
    Ping,
    parse_command,
)
from server.config import LimitsSettings
from server.hub.intake import Intake
from server.interactions.base import InteractionError
from server.interactions.registry import Registry
from server.moderation.ratelimit import TokenBucket
from tests.fuzzkit import VALUES, WIRE_VALUES, commands, fuzz_settings

REGISTRY = Registry()
# The op table as the room service hands it to the parser (RoomService.ops).
OPS = {
    name: OpRule(names_interaction=op.targets == "interaction", keyed=op.keyed)
    for name, op in REGISTRY.ops.items()
}
ALL_OPS = (*CORE_OPS, *OPS)
MAX_TEXT = 100
# A refusal names what was wrong, not the whole of what was sent.
MAX_MESSAGE_CHARS = 300


def parse(obj: Any) -> Any:
    return parse_command(obj, max_text_chars=MAX_TEXT, ops=OPS)


def check_refusal(err: CommandError) -> None:
    assert err.code in ERROR_BY_NAME
    assert isinstance(err.message, str) and err.message
    assert len(err.message) <= MAX_MESSAGE_CHARS, err.message
    assert err.id is None or (type(err.id) is int and err.id >= 0)
    orjson.dumps(err.extra)  # the details travel in the error message


def check_command(obj: dict[str, Any], command: Any) -> None:
    """What a parsed command promises the hub, whatever it was parsed from."""
    assert command.id is None or (type(command.id) is int and 0 <= command.id < 2**53)
    if isinstance(command, Danmaku):
        assert obj["op"] == "danmaku"
        assert 0 < len(command.text) <= MAX_TEXT
        assert command.text == command.text.strip()
        assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in command.text)
        assert command.mode in ("scroll", "top", "bottom") and len(command.color) == 7
    elif isinstance(command, Join):
        assert ROOM_ID_RE.match(command.room)
        assert command.name is None or 0 < len(command.name) <= MAX_NAME_CHARS
    elif isinstance(command, Participate):
        assert command.op in OPS and command.fields == obj
        if OPS[command.op].keyed:
            assert command.key is not None and KEY_RE.match(command.key)
        if OPS[command.op].names_interaction:
            assert ROOM_ID_RE.match(obj["interaction"])
    elif isinstance(command, Host):
        assert obj["op"] == "host" and 1 <= len(command.action) <= 32
    elif isinstance(command, AskSnapshot):
        assert obj["op"] == "snapshot"
    else:
        assert isinstance(command, Ping) and obj["op"] == "ping"


@fuzz_settings(400)
@given(commands(ALL_OPS))
def test_every_op_with_broken_fields_is_parsed_or_refused(obj):
    try:
        command = parse(obj)
    except CommandError as err:
        check_refusal(err)
    else:
        check_command(obj, command)


@fuzz_settings(300)
@given(VALUES)
def test_any_value_is_parsed_or_refused(obj):
    try:
        command = parse(obj)
    except CommandError as err:
        check_refusal(err)
        if not isinstance(obj, dict):
            assert err.code == "malformed"
    else:
        check_command(obj, command)


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("field", ["id", "key", "room", "interaction", "text", "color", "action"])
def test_a_huge_field_is_refused_in_a_short_message(op, field):
    for huge in ("弹" * 100_000, ["x" * 1000] * 100, {"k" * 1000: "v" * 10_000}):
        obj = {"op": op, "id": 1, "key": "k1", "room": "r", "interaction": "p1", "text": "hi"}
        obj[field] = huge
        try:
            parse(obj)
        except CommandError as err:
            check_refusal(err)


# --- the codecs ---------------------------------------------------------------------------


@fuzz_settings(200)
@given(WIRE_VALUES)
def test_both_codecs_carry_every_value_unchanged(value):
    assert MSGPACK.decode(MSGPACK.encode(value)) == value
    # JSON has no infinities: orjson writes them as null, as browsers' JSON.stringify does
    assert JSON.decode(JSON.encode(value)) == infinities_as_null(value)


def infinities_as_null(value: Any) -> Any:
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None
    if isinstance(value, list):
        return [infinities_as_null(v) for v in value]
    if isinstance(value, dict):
        return {k: infinities_as_null(v) for k, v in value.items()}
    return value


@fuzz_settings(400)
@given(st.binary(max_size=256))
def test_decoders_only_ever_raise_decode_error(data):
    for codec in CODECS:
        try:
            codec.decode(data)
        except DecodeError:
            pass


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000,  # deeper than any parser's stack
        b'{"a":' * 100_000,
        b"\x91" * 100_000,  # MessagePack: an array in an array ...
        b"\x81\xa1a" * 100_000,  # a map in a map ...
        b'"\\ud800"',  # a lone surrogate
        b"\xed\xa0\x80",
        b"\xa2\xed\xa0",  # MessagePack: a string that is not UTF-8
        b"\x81\x01\x02",  # a map with an integer key
        b"\xdd\xff\xff\xff\xff",  # an array that says it holds 4 billion items
        b"\xdb\xff\xff\xff\xff",  # a string of 4 GiB
        b"1" * 5000,  # an integer far past 64 bits
        b"",
    ],
)
def test_nasty_payloads_are_decode_errors_or_values(data):
    for codec in CODECS:
        try:
            codec.decode(data)
        except DecodeError:
            pass


# --- intake: size, decoding, rate and parsing in one step (what the hub runs per frame) ----


def encode_any(codec: Any, obj: Any) -> bytes:
    """``obj`` as a client could send it: integers past 64 bits, which neither library
    here encodes, go as JSON text (MessagePack has no way to say them: their repr)."""
    try:
        return bytes(codec.encode(obj))
    except (TypeError, OverflowError, ValueError):
        if codec.binary:
            return bytes(codec.encode(repr(obj)))
        return json.dumps(obj).encode()


@fuzz_settings(300)
@given(
    st.sampled_from(CODECS),
    commands(ALL_OPS) | VALUES,
    st.binary(max_size=64),
    st.sampled_from(["whole", "cut", "junk", "raw"]),
)
def test_intake_turns_any_frame_into_a_command_or_a_documented_error(codec, obj, junk, how):
    limits = LimitsSettings()
    intake = Intake(limits, OPS)
    data = encode_any(codec, obj)
    if how == "cut":
        data = data[: len(data) // 2]
    elif how == "junk":
        data += junk
    elif how == "raw":
        data = junk
    bucket = TokenBucket(1e9, 10**9, 0.0)
    label, command = intake.take(codec, bucket, data, 0.0)
    assert label == "invalid" or label in ALL_OPS
    if isinstance(command, CommandError):
        check_refusal(command)
        if len(data) > limits.max_command_bytes:
            assert command.code == "frame_too_large"
    else:
        assert len(data) <= limits.max_command_bytes
        check_command(codec.decode(data), command)


def test_intake_refuses_an_oversize_frame_before_decoding_it():
    intake = Intake(LimitsSettings(), OPS)
    bucket = TokenBucket(1e9, 10**9, 0.0)
    for codec in (JSON, MSGPACK):
        big = codec.encode({"op": "danmaku", "id": 1, "text": "x" * 10_000})
        label, err = intake.take(codec, bucket, big, 0.0)
        assert isinstance(err, CommandError) and err.code == "frame_too_large"
        assert label == "invalid"


# --- the kinds' specs: what a host sends to create an interaction ------------------------


@st.composite
def specs(draw: st.DrawFn, kind: Any) -> Any:
    """The kind's own example spec with one to three fields broken, or any value."""
    if draw(st.integers(0, 4)) == 0:
        return draw(VALUES)
    spec = dict(kind.example or {"id": "f1"})
    fields = [*kind.spec_type.__struct_fields__, "x"]
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(fields))
        if draw(st.booleans()):
            spec.pop(field, None)
        elif isinstance(spec.get(field), list) and spec[field] and draw(st.booleans()):
            items = list(spec[field])
            items[draw(st.integers(0, len(items) - 1))] = draw(VALUES)
            spec[field] = items
        else:
            spec[field] = draw(VALUES)
    return spec


@pytest.mark.parametrize("kind", [k for k in REGISTRY if k.builtin is None], ids=lambda k: k.name)
def test_every_kind_parses_or_refuses_any_spec(kind):
    @fuzz_settings(150)
    @given(specs(kind))
    def check(raw):
        try:
            kind.parse_spec(raw)
        except InteractionError as err:
            assert err.code in ERROR_BY_NAME and err.message
            assert len(err.message) <= MAX_MESSAGE_CHARS, err.message

    if kind.example is not None:
        kind.parse_spec(dict(kind.example))  # the unbroken example is a spec
    check()
