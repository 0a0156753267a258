"""protocol/ with plain values: vectors, codes, command parsing, and fuzzing."""

import json
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import gen_vectors
from protocol.codec import JSON, MSGPACK, DecodeError
from protocol.codes import CLOSES, ERRORS, render_js
from protocol.framing import server_frame
from protocol.messages import (
    CommandError,
    Danmaku,
    Join,
    OpRule,
    Ping,
    clean_text,
    parse_command,
)

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "protocol" / "vectors" / "messages.json").read_text("utf-8"))


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vectors_decode_and_reencode_byte_for_byte(vector):
    as_json = vector["json"].encode()
    as_msgpack = bytes.fromhex(vector["msgpack_hex"])
    assert JSON.decode(as_json) == vector["message"]
    assert MSGPACK.decode(as_msgpack) == vector["message"]
    assert JSON.encode(vector["message"]) == as_json
    assert MSGPACK.encode(vector["message"]) == as_msgpack


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS if v["kind"] == "command"], ids=lambda v: v["name"]
)
def test_command_vectors_are_valid_commands(vector):
    # The check-in vector is a viewer command of the server's registry of kinds.
    ops = {"checkin": OpRule(names_interaction=False)}
    parse_command(vector["message"], max_text_chars=100, ops=ops)


def test_vectors_file_is_what_the_generator_makes():
    committed = (ROOT / "protocol" / "vectors" / "messages.json").read_text("utf-8")
    assert committed == gen_vectors.render(), (
        "run: python -m protocol.gen_vectors > protocol/vectors/messages.json"
    )


def test_js_codes_are_generated_from_the_table():
    committed = (ROOT / "clients" / "js" / "codes.js").read_text("utf-8")
    assert committed == render_js(), "run: python -m protocol.codes > clients/js/codes.js"


def test_code_tables_are_consistent():
    assert len({e.name for e in ERRORS}) == len(ERRORS)
    assert len({c.code for c in CLOSES}) == len(CLOSES)
    for close in CLOSES:
        assert close.code in (1000, 1002, 1003, 1007, 1009, 1011, 1012) or 4000 <= close.code < 5000
    spec = (ROOT / "protocol" / "PROTOCOL.md").read_text("utf-8")
    for e in ERRORS:
        assert f"| `{e.name}` |" in spec, f"error {e.name} is not documented in PROTOCOL.md"
    for c in CLOSES:
        assert f"| {c.code} | `{c.name}` |" in spec, f"close {c.code} is not documented"


def test_server_frame_is_unmasked_rfc6455():
    frame = server_frame(b"hi", binary=False)
    assert frame == b"\x81\x02hi"
    big = server_frame(b"x" * 300, binary=True)
    assert big[:4] == b"\x82\x7e\x01\x2c" and len(big) == 304


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ({"op": "join", "room": "r-1_A"}, Join(None, "r-1_A", None, None)),
        ({"op": "join", "id": 3, "room": "r", "name": " bob\n "}, Join(3, "r", None, "bob")),
        ({"op": "danmaku", "text": " hi\tthere "}, Danmaku(None, "hi there", "#ffffff", "scroll")),
        (
            {"op": "danmaku", "id": 0, "text": "x", "color": "#ABCDEF", "mode": "bottom"},
            Danmaku(0, "x", "#abcdef", "bottom"),
        ),
        ({"op": "ping", "id": 7}, Ping(7)),
    ],
)
def test_valid_commands(command, expected):
    assert parse_command(command, max_text_chars=10) == expected


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ([], "malformed"),
        ("op", "malformed"),
        ({"id": 1}, "malformed"),
        ({"op": 5}, "malformed"),
        ({"op": "fly"}, "unknown_op"),
        ({"op": "ping", "id": -1}, "invalid_field"),
        ({"op": "ping", "id": 1.5}, "invalid_field"),
        ({"op": "ping", "id": True}, "invalid_field"),
        ({"op": "ping", "id": 2**53}, "invalid_field"),
        ({"op": "join", "room": "a b"}, "invalid_field"),
        ({"op": "join", "room": "x" * 65}, "invalid_field"),
        ({"op": "join", "room": "r", "token": 5}, "invalid_field"),
        ({"op": "join", "room": "r", "name": ["x"]}, "invalid_field"),
        ({"op": "danmaku"}, "invalid_field"),
        ({"op": "danmaku", "text": "\u200e \n"}, "empty_text"),
        ({"op": "danmaku", "text": "x" * 11}, "text_too_long"),
        ({"op": "danmaku", "text": "x", "color": "red"}, "invalid_field"),
        ({"op": "danmaku", "text": "x", "mode": "side"}, "invalid_field"),
    ],
)
def test_invalid_commands_get_the_documented_code(command, code):
    with pytest.raises(CommandError) as info:
        parse_command(command, max_text_chars=10)
    assert info.value.code == code


def test_clean_text_removes_bidi_overrides_and_control_characters():
    assert clean_text("a\u202eb\x00c\u200bd") == "abcd"
    assert clean_text("弹幕\r\n666") == "弹幕  666"
    assert clean_text("\u3000 弹幕\xa0666 ") == "弹幕\xa0666"  # other spaces stay inside


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=24))
def test_clean_text_s_shortcut_for_printable_texts_changes_nothing(text: str):
    """A printable text takes a one-scan shortcut; every text must come out as the
    character-by-character rule makes it."""
    out = []
    for ch in text:
        if ch in "\r\n\t":
            out.append(" ")
        elif unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"):
            out.append(ch)
    assert clean_text(text) == "".join(out).strip()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["op", "id", "room", "text", "color", "mode", "token", "name", "x"]),
        json_values,
        max_size=6,
    )
    | json_values
)
def test_parse_command_only_ever_raises_command_error(obj):
    try:
        parse_command(obj, max_text_chars=100)
    except CommandError as err:
        assert err.code and err.message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_decoders_only_ever_raise_decode_error(data):
    for codec in (JSON, MSGPACK):
        try:
            codec.decode(data)
        except DecodeError:
            pass
