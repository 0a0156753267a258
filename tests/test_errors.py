"""Every input PROTOCOL.md refuses with an ``error``, over real sockets ("Errors", "Limits").

Each test checks the three things the spec promises for a refused command:

1. the reply is the documented ``error``: ``code``, the echoed ``id`` (null when the
   frame could not be read), and ``limit`` or ``retry_after_ms`` where documented;
2. the sender's connection stays open: it still answers a ping and acks a danmaku;
3. every other viewer carries on: a viewer of the same room, on the other codec,
   receives the next danmaku in a batch, and nothing from the refused input.
"""

import asyncio
import time

import jwt
import msgpack
import pytest

from protocol.codec import codec_for_subprotocol
from tests.carry_on import (
    CID,
    OTHER_ROOM,
    ROOM,
    SUBPROTOCOLS,
    assert_error,
    events_until,
    next_reply,
    other,
    sender_carries_on,
    stage,
)
from tests.conftest import ADMIN, SECRET, UNIT

LIMIT = frozenset({"limit"})
RETRY = frozenset({"retry_after_ms"})
# One command per 2 s (x UNIT) for the rate tests: slow enough that no refill can
# sneak in between two commands sent back to back, even on a loaded machine.
SLOW_RATE = 1 / (2 * UNIT)


# --- refused commands: (sender joined?, command without id, code) --------------------------

REFUSED = [
    # unknown_op: "the op is not one the server knows"
    pytest.param(True, {"op": "dance"}, "unknown_op", id="unknown-op"),
    pytest.param(True, {"op": "DANMAKU", "text": "hi"}, "unknown_op", id="unknown-op-case"),
    pytest.param(False, {"op": "x" * 1000}, "unknown_op", id="unknown-op-long"),
    # invalid_field, join: room
    pytest.param(False, {"op": "join"}, "invalid_field", id="join-room-missing"),
    pytest.param(False, {"op": "join", "room": None}, "invalid_field", id="join-room-null"),
    pytest.param(False, {"op": "join", "room": 5}, "invalid_field", id="join-room-int"),
    pytest.param(False, {"op": "join", "room": [ROOM]}, "invalid_field", id="join-room-list"),
    pytest.param(False, {"op": "join", "room": ""}, "invalid_field", id="join-room-empty"),
    pytest.param(False, {"op": "join", "room": "st age"}, "invalid_field", id="join-room-space"),
    pytest.param(False, {"op": "join", "room": "café"}, "invalid_field", id="join-room-non-ascii"),
    pytest.param(False, {"op": "join", "room": "r" * 65}, "invalid_field", id="join-room-65"),
    # invalid_field, join: token
    pytest.param(False, {"op": "join", "room": ROOM, "token": 5}, "invalid_field", id="token-int"),
    pytest.param(
        False, {"op": "join", "room": ROOM, "token": ["t"]}, "invalid_field", id="token-list"
    ),
    # invalid_field, join: name
    pytest.param(False, {"op": "join", "room": ROOM, "name": 5}, "invalid_field", id="name-int"),
    pytest.param(
        False, {"op": "join", "room": ROOM, "name": {"a": 1}}, "invalid_field", id="name-map"
    ),
    pytest.param(
        False, {"op": "join", "room": ROOM, "name": "n" * 129}, "invalid_field", id="name-129"
    ),
    # invalid_field, danmaku: text
    pytest.param(True, {"op": "danmaku"}, "invalid_field", id="text-missing"),
    pytest.param(True, {"op": "danmaku", "text": None}, "invalid_field", id="text-null"),
    pytest.param(True, {"op": "danmaku", "text": 5}, "invalid_field", id="text-int"),
    pytest.param(True, {"op": "danmaku", "text": ["hi"]}, "invalid_field", id="text-list"),
    # invalid_field, danmaku: color
    pytest.param(True, {"op": "danmaku", "text": "x", "color": 5}, "invalid_field", id="color-int"),
    pytest.param(
        True, {"op": "danmaku", "text": "x", "color": "red"}, "invalid_field", id="color-name"
    ),
    pytest.param(
        True, {"op": "danmaku", "text": "x", "color": "#12345"}, "invalid_field", id="color-short"
    ),
    pytest.param(
        True, {"op": "danmaku", "text": "x", "color": "#1234567"}, "invalid_field", id="color-long"
    ),
    pytest.param(
        True, {"op": "danmaku", "text": "x", "color": "#gggggg"}, "invalid_field", id="color-hex"
    ),
    pytest.param(
        True, {"op": "danmaku", "text": "x", "color": "ffffff"}, "invalid_field", id="color-no-hash"
    ),
    # invalid_field, danmaku: mode
    pytest.param(True, {"op": "danmaku", "text": "x", "mode": 1}, "invalid_field", id="mode-int"),
    pytest.param(
        True, {"op": "danmaku", "text": "x", "mode": "side"}, "invalid_field", id="mode-unknown"
    ),
    pytest.param(
        True, {"op": "danmaku", "text": "x", "mode": "TOP"}, "invalid_field", id="mode-case"
    ),
    # text_too_long is in its own test (it carries `limit`); empty_text:
    pytest.param(True, {"op": "danmaku", "text": ""}, "empty_text", id="empty"),
    pytest.param(True, {"op": "danmaku", "text": "   "}, "empty_text", id="empty-spaces"),
    pytest.param(True, {"op": "danmaku", "text": "\r\n\t "}, "empty_text", id="empty-breaks"),
    pytest.param(True, {"op": "danmaku", "text": "\x00\x07\x1b"}, "empty_text", id="empty-ctrl"),
    pytest.param(
        True, {"op": "danmaku", "text": "\u202e\u200b\u2066\ufeff"}, "empty_text", id="empty-bidi"
    ),
    # not_joined: "Commands other than join and ping need a joined room"
    pytest.param(False, {"op": "danmaku", "text": "hi"}, "not_joined", id="not-joined"),
    # already_joined: a second join on one connection, to any room
    pytest.param(True, {"op": "join", "room": ROOM}, "already_joined", id="join-same-room"),
    pytest.param(True, {"op": "join", "room": OTHER_ROOM}, "already_joined", id="join-other-room"),
    # room_not_found
    pytest.param(False, {"op": "join", "room": "nowhere"}, "room_not_found", id="no-such-room"),
]


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@pytest.mark.parametrize(("joined", "command", "code"), REFUSED)
async def test_refused_command_gets_the_documented_error(live, subprotocol, joined, command, code):
    sender, viewer = await stage(live, subprotocol, join=joined)
    await sender.send({**command, "id": CID})
    assert_error(await next_reply(sender), code, cid=CID)
    if not joined:
        await sender.join(ROOM)
    # Nothing changed: after already_joined the sender is still in its first room, whose
    # viewer gets its next danmaku.
    (events,) = await sender_carries_on(sender, [viewer])
    assert [e["text"] for e in events] == ["still here"]


BAD_IDS = [
    pytest.param("41", id="string"),
    pytest.param(-1, id="negative"),
    pytest.param(2**53, id="over-2^53-1"),
    pytest.param(1.5, id="float"),
    pytest.param(True, id="bool"),
    pytest.param([41], id="list"),
]


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@pytest.mark.parametrize("bad_id", BAD_IDS)
async def test_invalid_id_gets_invalid_field_with_a_null_id(live, subprotocol, bad_id):
    sender, viewer = await stage(live, subprotocol)
    await sender.send({"op": "danmaku", "id": bad_id, "text": "not with this id"})
    # The id could not be read, so it cannot be echoed: null, as for an unreadable frame.
    assert_error(await next_reply(sender), "invalid_field", cid=None)
    (events,) = await sender_carries_on(sender, [viewer])
    assert [e["text"] for e in events] == ["still here"]


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_id_range_ends_are_echoed(live, subprotocol):
    sender, _ = await stage(live, subprotocol)
    for cid in (0, 2**53 - 1):
        await sender.send({"op": "ping", "id": cid})
        assert await next_reply(sender) == {"type": "pong", "id": cid}


# --- malformed -------------------------------------------------------------------------


def _pack(obj, **options):
    return msgpack.packb(obj, use_bin_type=True, **options)


def _nested_msgpack_maps(depth):
    return b"\x81\xa1a" * depth + b"\xc0"


MALFORMED = [
    # (subprotocol, frame payload, id the error echoes)
    pytest.param("hudong.v1.json", "{not json", None, id="json-invalid"),
    pytest.param("hudong.v1.json", "", None, id="json-empty"),
    pytest.param("hudong.v1.json", '{"op": "ping", "id": 7', None, id="json-truncated"),
    pytest.param("hudong.v1.json", '{"op": "ping"} {"op": "ping"}', None, id="json-two-values"),
    pytest.param("hudong.v1.json", "{'op': 'ping'}", None, id="json-single-quotes"),
    pytest.param("hudong.v1.json", '{"op": NaN}', None, id="json-nan"),
    pytest.param("hudong.v1.json", "[" * 1500 + "]" * 1500, None, id="json-deep"),
    pytest.param("hudong.v1.msgpack", b"\xc1", None, id="msgpack-invalid"),  # 0xc1: never used
    pytest.param("hudong.v1.msgpack", b"", None, id="msgpack-empty"),
    pytest.param("hudong.v1.msgpack", _pack({"op": "ping"})[:-2], None, id="msgpack-truncated"),
    pytest.param("hudong.v1.msgpack", _pack({"op": "ping"}) + b"\xc0", None, id="msgpack-trailing"),
    pytest.param("hudong.v1.msgpack", _pack({1: "ping"}), None, id="msgpack-int-key"),
    pytest.param(
        "hudong.v1.msgpack", b"\x82\xa2op\xa4ping\xa4text\xa2\xff\xfe", None, id="msgpack-bad-utf8"
    ),
    pytest.param("hudong.v1.msgpack", _pack({"op": b"ping"}), None, id="msgpack-bin-op"),
    pytest.param("hudong.v1.msgpack", _nested_msgpack_maps(1000), None, id="msgpack-deep"),
]
for _sub in SUBPROTOCOLS:
    _codec = codec_for_subprotocol(_sub)
    _name = _codec.name
    MALFORMED += [
        # "the frame could not be decoded as a message object": valid values, not maps
        pytest.param(_sub, _codec.encode([1, 2]), None, id=f"{_name}-array"),
        pytest.param(_sub, _codec.encode(42), None, id=f"{_name}-integer"),
        pytest.param(_sub, _codec.encode("ping"), None, id=f"{_name}-string"),
        pytest.param(_sub, _codec.encode(None), None, id=f"{_name}-null"),
        # "… or has no `op`": the frame was read, so its id is echoed
        pytest.param(_sub, _codec.encode({"id": 7}), 7, id=f"{_name}-no-op"),
        pytest.param(_sub, _codec.encode({"id": 7, "op": None}), 7, id=f"{_name}-null-op"),
        pytest.param(_sub, _codec.encode({"id": 7, "op": 5}), 7, id=f"{_name}-int-op"),
    ]


@pytest.mark.parametrize(("subprotocol", "payload", "cid"), MALFORMED)
async def test_malformed_frame_gets_malformed(live, subprotocol, payload, cid):
    sender, viewer = await stage(live, subprotocol)
    if isinstance(payload, bytes) and not sender.codec.binary:
        payload = payload.decode()
    await sender.send_raw(payload)
    assert_error(await next_reply(sender), "malformed", cid=cid)
    (events,) = await sender_carries_on(sender, [viewer])
    assert [e["text"] for e in events] == ["still here"]


# --- frame_too_large ---------------------------------------------------------------------


def _sized(codec, command, size):
    """``command`` padded with an unknown field ("Unknown fields are ignored") to ``size``
    encoded bytes."""
    pad = 0
    for _ in range(10):
        data = codec.encode({**command, "pad": "p" * pad})
        if len(data) == size:
            return data
        pad += size - len(data)
    raise AssertionError(f"cannot pad {command} to {size} bytes")


def _as_frame(codec, data):
    return data if codec.binary else data.decode()


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_command_of_max_command_bytes_is_accepted(live, subprotocol):
    sender, viewer = await stage(live, subprotocol)
    data = _sized(sender.codec, {"op": "danmaku", "id": CID, "text": "at the limit"}, 4096)
    await sender.send_raw(_as_frame(sender.codec, data))
    ack = await next_reply(sender)
    assert ack["type"] == "ack" and ack["id"] == CID, ack
    events = await events_until(viewer, ack["event"])
    assert [e["text"] for e in events] == ["at the limit"]


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@pytest.mark.parametrize("fragments", [1, 3], ids=["one-frame", "fragmented"])
async def test_command_over_max_command_bytes_gets_frame_too_large(live, subprotocol, fragments):
    sender, viewer = await stage(live, subprotocol)
    data = _sized(sender.codec, {"op": "danmaku", "id": CID, "text": "too big"}, 4097)
    if fragments == 1:
        await sender.send_raw(_as_frame(sender.codec, data))
    else:
        # A fragmented message is one command: its size is the sum of its fragments.
        cut = len(data) // 3
        parts = [data[:cut], data[cut : 2 * cut], data[2 * cut :]]
        if not sender.codec.binary:
            # Cut on character boundaries; the padding is ASCII, so bytes are characters.
            parts = [p.decode() for p in parts]
        await sender.ws.send(parts)
    # Too large to be read, so the id cannot be echoed.
    reply = await next_reply(sender)
    assert_error(reply, "frame_too_large", cid=None, extra=LIMIT)
    assert reply["limit"] == 4096
    (events,) = await sender_carries_on(sender, [viewer])
    assert [e["text"] for e in events] == ["still here"]


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_limit_reflects_the_configured_max_command_bytes(server_factory, subprotocol):
    limits = {"max_command_bytes": 1024, "max_frame_bytes": 8192}
    async with server_factory(limits=limits) as srv:
        sender, viewer = await stage(srv, subprotocol)
        data = _sized(sender.codec, {"op": "danmaku", "id": CID, "text": "x"}, 2000)
        await sender.send_raw(_as_frame(sender.codec, data))
        reply = await next_reply(sender)
        assert_error(reply, "frame_too_large", cid=None, extra=LIMIT)
        assert reply["limit"] == 1024
        await sender_carries_on(sender, [viewer])


# --- text_too_long -------------------------------------------------------------------------


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@pytest.mark.parametrize(
    "text",
    [
        pytest.param("x" * 101, id="101"),
        pytest.param("弹" * 101, id="101-cjk"),
        pytest.param(" " + "x" * 50 + "\n" + "y" * 50 + " ", id="101-after-cleaning"),
    ],
)
async def test_text_over_max_text_chars_gets_text_too_long(live, subprotocol, text):
    sender, viewer = await stage(live, subprotocol)
    await sender.send({"op": "danmaku", "id": CID, "text": text})
    reply = await next_reply(sender)
    assert_error(reply, "text_too_long", cid=CID, extra=LIMIT)
    assert reply["limit"] == 100
    (events,) = await sender_carries_on(sender, [viewer])
    assert [e["text"] for e in events] == ["still here"]


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_text_is_measured_after_cleaning(live, subprotocol):
    """100 characters once control and format characters are gone is within the limit."""
    sender, viewer = await stage(live, subprotocol)
    ack = await sender.command("danmaku", text="  \u202e" + "x" * 100 + "\u200b\x00 \n")
    assert ack["type"] == "ack", ack
    events = await events_until(viewer, ack["event"])
    assert [e["text"] for e in events] == ["x" * 100]


async def test_text_too_long_limit_follows_the_configuration(server_factory):
    async with server_factory(limits={"max_text_chars": 10}) as srv:
        sender, viewer = await stage(srv, "hudong.v1.json")
        await sender.send({"op": "danmaku", "id": CID, "text": "x" * 11})
        reply = await next_reply(sender)
        assert_error(reply, "text_too_long", cid=CID, extra=LIMIT)
        assert reply["limit"] == 10
        await sender_carries_on(sender, [viewer], text="x" * 10)


# --- join: names and tokens --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        pytest.param("n" * 128, "n" * 32, id="128-cut-to-32"),
        pytest.param("\u202e" * 100 + "bob", "bob", id="cleaned-before-cut"),
        pytest.param(" a\tb\x00c ", "a bc", id="control-characters"),
    ],
)
async def test_name_up_to_128_characters_is_cleaned_and_cut_not_refused(live, name, shown):
    """PROTOCOL.md, join: ``name`` at most 128 characters; control characters removed,
    then cut to 32 characters."""
    await live.create_room(ROOM)
    client = await live.connect()
    joined = await client.join(ROOM, name=name)
    assert joined["you"]["name"] == shown


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_token_over_2048_characters_gets_invalid_field(server_factory, subprotocol):
    async with server_factory() as srv:
        sender, viewer = await stage(srv, subprotocol, join=False)
        await sender.send({"op": "join", "id": CID, "room": ROOM, "token": "t" * 2049})
        assert_error(await next_reply(sender), "invalid_field", cid=CID)
        # 2048 characters is within the limit: read, then refused as a bad token.
        await sender.send({"op": "join", "id": CID + 1, "room": ROOM, "token": "t" * 2048})
        assert_error(await next_reply(sender), "unauthorized", cid=CID + 1)
        await sender.join(ROOM)
        (events,) = await sender_carries_on(sender, [viewer])
        assert [e["text"] for e in events] == ["still here"]


def _jwt(secret=SECRET, algorithm="HS256", **claims):
    now = int(time.time())
    payload = {
        "iss": "hudong",
        "room": ROOM,
        "role": "viewer",
        "sub": "mallory",
        "name": "Mallory",
        "iat": now,
        "exp": now + 3600,
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret, algorithm=algorithm)


async def _garbage(srv):
    return "not-a-token"


async def _admin_token(srv):
    return ADMIN  # the admin token is not a room token


async def _expired(srv):
    now = int(time.time())
    return _jwt(iat=now - 7200, exp=now - 3600)


async def _other_room(srv):
    return await srv.mint(OTHER_ROOM, "viewer")


async def _other_room_host(srv):
    return await srv.mint(OTHER_ROOM, "host")


async def _wrong_secret(srv):
    return _jwt(secret="another-secret-of-at-least-32-bytes!")


async def _no_exp(srv):
    return _jwt(exp=None)  # exp is required (PROTOCOL.md, "Tokens and roles")


async def _unknown_role(srv):
    return _jwt(role="admin")


async def _alg_none(srv):
    return _jwt(secret=None, algorithm="none")


async def _tampered(srv):
    header, payload, signature = (await srv.mint(OTHER_ROOM, "viewer")).split(".")
    good_payload = _jwt().split(".")[1]  # claims for this room, signature of the other
    assert payload != good_payload
    return f"{header}.{good_payload}.{signature}"


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@pytest.mark.parametrize(
    "make_token",
    [
        _garbage,
        _admin_token,
        _expired,
        _other_room,
        _other_room_host,
        _wrong_secret,
        _no_exp,
        _unknown_role,
        _alg_none,
        _tampered,
    ],
    ids=lambda f: f.__name__.strip("_").replace("_", "-"),
)
async def test_bad_token_gets_unauthorized(live, subprotocol, make_token):
    sender, viewer = await stage(live, subprotocol, join=False)
    token = await make_token(live)
    await sender.send({"op": "join", "id": CID, "room": ROOM, "token": token})
    assert_error(await next_reply(sender), "unauthorized", cid=CID)
    # The same connection can still join, with a good token.
    joined = await sender.join(ROOM, token=await live.mint(ROOM, "viewer", user_id="alice"))
    alice = live.viewer_id("alice")  # her pseudonym (PROTOCOL.md, "Privacy")
    assert joined["you"]["role"] == "viewer" and joined["you"]["id"] == alice
    (events,) = await sender_carries_on(sender, [viewer])
    assert [e["text"] for e in events] == ["still here"]
    assert events[0]["user"]["id"] == alice


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_screen_sending_danmaku_gets_forbidden(live, subprotocol):
    await live.create_room(ROOM)
    viewer = await live.connect(other(subprotocol))
    await viewer.join(ROOM)
    screen = await live.connect(subprotocol)
    joined = await screen.join(ROOM, token=await live.mint(ROOM, "screen"))
    assert joined["you"]["role"] == "screen"
    await screen.send({"op": "danmaku", "id": CID, "text": "from the wall"})
    assert_error(await next_reply(screen), "forbidden", cid=CID)
    # The screen stays connected and keeps watching; the viewer keeps sending.
    pong = await screen.command("ping")
    assert pong == {"type": "pong", "id": screen.next_id}
    ack = await viewer.command("danmaku", text="hello wall")
    for client in (screen, viewer):
        events = await events_until(client, ack["event"])
        assert [e["text"] for e in events] == ["hello wall"]


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_anonymous_join_of_a_token_only_room_gets_anonymous_not_allowed(live, subprotocol):
    await live.create_room(ROOM, allow_anonymous=False)
    viewer = await live.connect(other(subprotocol))
    await viewer.join(ROOM, token=await live.mint(ROOM, "viewer"))
    sender = await live.connect(subprotocol)
    await sender.send({"op": "join", "id": CID, "room": ROOM, "name": "anon"})
    assert_error(await next_reply(sender), "anonymous_not_allowed", cid=CID)
    joined = await sender.join(ROOM, token=await live.mint(ROOM, "viewer", name="Bob"))
    assert joined["you"]["name"] == "Bob"
    (events,) = await sender_carries_on(sender, [viewer])
    assert [e["text"] for e in events] == ["still here"]


# --- rates -------------------------------------------------------------------------------


def _assert_retry_after(reply, rate):
    retry = reply["retry_after_ms"]
    assert type(retry) is int and 0 < retry <= 1000 / rate, reply
    return retry


async def _wait_retry_after(retry_ms):
    # Waiting the time the server asked for is the behaviour under test, not a
    # synchronisation: the bucket refills with the clock. 50 ms covers rounding.
    await asyncio.sleep(retry_ms / 1000 + 0.05)


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_commands_over_the_connection_rate_get_rate_limited(server_factory, subprotocol):
    limits = {"viewer_commands_per_s": SLOW_RATE, "viewer_command_burst": 2}
    async with server_factory(limits=limits) as srv:
        sender, viewer = await stage(srv, subprotocol)  # the join took 1 of 2 tokens
        first = await sender.command("danmaku", text="first")
        assert first["type"] == "ack", first
        await sender.send({"op": "danmaku", "id": CID, "text": "too fast"})
        reply = await next_reply(sender)
        assert_error(reply, "rate_limited", cid=CID, extra=RETRY)
        await _wait_retry_after(_assert_retry_after(reply, SLOW_RATE))
        again = await sender.command("danmaku", text="after waiting")
        assert again["type"] == "ack", again
        events = await events_until(viewer, again["event"])
        assert [e["text"] for e in events] == ["first", "after waiting"]


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@pytest.mark.parametrize(
    ("bad", "code"),
    [
        pytest.param({"id": 5}, "malformed", id="malformed"),
        pytest.param({"op": "dance", "id": 5}, "unknown_op", id="unknown-op"),
        pytest.param({"op": "danmaku", "id": 5, "text": ""}, "empty_text", id="empty-text"),
        pytest.param(
            {"op": "danmaku", "id": 5, "text": "x" * 5000}, "frame_too_large", id="too-large"
        ),
    ],
)
async def test_refused_frames_count_against_the_rate(server_factory, subprotocol, bad, code):
    """ "Every frame counts against the connection's rate, malformed ones included." """
    limits = {"viewer_commands_per_s": SLOW_RATE, "viewer_command_burst": 2}
    async with server_factory(limits=limits) as srv:
        sender, viewer = await stage(srv, subprotocol)  # the join took 1 of 2 tokens
        await sender.send(bad)
        assert (await next_reply(sender))["code"] == code
        await sender.send({"op": "danmaku", "id": CID, "text": "one too many"})
        reply = await next_reply(sender)
        assert_error(reply, "rate_limited", cid=CID, extra=RETRY)
        await _wait_retry_after(_assert_retry_after(reply, SLOW_RATE))
        again = await sender.command("danmaku", text="after waiting")
        assert again["type"] == "ack", again
        events = await events_until(viewer, again["event"])
        assert [e["text"] for e in events] == ["after waiting"]


@pytest.mark.parametrize("role", ["host", "moderator"])
async def test_staff_have_the_staff_rate_not_the_viewer_rate(server_factory, role):
    limits = {"viewer_commands_per_s": SLOW_RATE, "viewer_command_burst": 2}
    async with server_factory(limits=limits) as srv:
        staff, viewer = await stage(srv, "hudong.v1.json", join=False)
        await staff.join(ROOM, token=await srv.mint(ROOM, role))
        acks = [await staff.command("danmaku", text=f"staff {i}") for i in range(6)]
        assert [a["type"] for a in acks] == ["ack"] * 6, acks
        events = await events_until(viewer, acks[-1]["event"])
        assert [e["text"] for e in events] == [f"staff {i}" for i in range(6)]


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_danmaku_over_the_room_rate_get_room_rate_limited(server_factory, subprotocol):
    limits = {"room_danmaku_per_s": SLOW_RATE, "room_danmaku_burst": 2}
    async with server_factory(limits=limits) as srv:
        sender, viewer = await stage(srv, subprotocol)
        neighbour = await srv.connect(subprotocol)
        await neighbour.join(ROOM)
        for text in ("one", "two"):
            ack = await sender.command("danmaku", text=text)
            assert ack["type"] == "ack", ack
        await sender.send({"op": "danmaku", "id": CID, "text": "three"})
        reply = await next_reply(sender)
        assert_error(reply, "room_rate_limited", cid=CID, extra=RETRY)
        retry = _assert_retry_after(reply, SLOW_RATE)
        # The limit is the room's: another connection in it is refused too ...
        await neighbour.send({"op": "danmaku", "id": CID + 1, "text": "mine"})
        theirs = await next_reply(neighbour)
        assert_error(theirs, "room_rate_limited", cid=CID + 1, extra=RETRY)
        # ... and another room is not.
        outsider = await srv.connect(other(subprotocol))
        await outsider.join(OTHER_ROOM)
        assert (await outsider.command("danmaku", text="elsewhere"))["type"] == "ack"
        await _wait_retry_after(retry)
        again = await sender.command("danmaku", text="after waiting")
        assert again["type"] == "ack", again
        events = await events_until(viewer, again["event"])
        assert [e["text"] for e in events] == ["one", "two", "after waiting"]
