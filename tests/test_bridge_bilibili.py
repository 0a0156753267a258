"""The Bilibili bridge (issue 18): its wire codec against the sample frames and byte
vectors, and the adapter against a local fake of Bilibili's danmaku server
(tests/bili_fake.py): the auth it sends, messages in order from plain, zlib and brotli
bodies, heartbeats, malformed frames left out without harm, and stable ids across a
reconnect so that the runner can drop repeats."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import struct
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import brotli
import pytest

from server.bridges import bilibili_wire as wire
from server.bridges.base import BridgeError, ChatMessage, Event, PlatformModeration
from server.bridges.bilibili import DEFAULTS, BilibiliAdapter
from server.config import BiliBridgeSettings, ConfigError, Settings, load_settings, section_of
from tests import bili_fake as fake
from tests.bili_fake import FakeBilibili, Session
from tests.conftest import UNIT, free_port

SAMPLES = Path(__file__).resolve().parent / "data" / "bridges" / "bili"
LIMIT = 1 << 20


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def events_of(message: bytes) -> tuple[list[Event | None], list[str]]:
    found = wire.split(message, LIMIT)
    return [wire.command(p.body) for p in found.packets if p.op == wire.OP_COMMAND], found.problems


# --- the codec, on the sample frames ---------------------------------------------------


def test_the_samples_are_what_the_fake_makes():
    """The built samples are reproducible from tests/bili_fake.py (the README says how)."""
    made = fake.samples()
    assert sorted(made) == sorted(p.name for p in SAMPLES.glob("*.bin"))
    for name, data in made.items():
        if name.startswith(("danmu_zlib", "danmu_brotli")):
            # another version of the compressor may write other bytes for the same packets
            assert wire.split(sample(name), LIMIT) == wire.split(data, LIMIT), name
        else:
            assert sample(name) == data, name


def test_the_document_s_auth_packet_has_the_shape_the_bridge_sends():
    version, op, seq, body = fake.unpack(sample("auth_doc.bin"))
    assert (version, op, seq) == (1, 7, 1)
    theirs = json.loads(body)
    mine = fake.unpack(wire.auth_packet(22608112, 160148624, theirs["key"]))
    assert mine[:3] == (1, 7, 1)
    assert json.loads(mine[3]) == theirs


def test_the_auth_reply_and_heartbeat_reply_samples():
    [reply] = wire.split(sample("auth_reply.bin"), LIMIT).packets
    assert (reply.op, wire.auth_code(reply.body)) == (wire.OP_AUTH_REPLY, 0)
    [beat] = wire.split(sample("heartbeat_reply.bin"), LIMIT).packets
    assert (beat.op, wire.popularity(beat.body)) == (wire.OP_HEARTBEAT_REPLY, 2466)
    assert fake.unpack(wire.heartbeat_packet())[:2] == (1, wire.OP_HEARTBEAT)


def test_a_plain_danmu_msg():
    events, problems = events_of(sample("danmu_plain.bin"))
    assert not problems
    assert events == [
        ChatMessage(
            sender="6088969",
            text="白花300块[热]",
            name="tim1997",
            id="364b06e3c561af3d5921f1253d66c1d575",
            at=1723979200.649,
        )
    ]


def test_a_zlib_batch_in_order():
    events, problems = events_of(sample("danmu_zlib_batch.bin"))
    assert not problems
    assert [(e.sender, e.text, e.id) for e in events if isinstance(e, ChatMessage)] == [
        ("1001", "1", "a1"),
        ("1002", "２", "a2"),
        ("1003", "红色", "a3"),
    ]


def test_a_brotli_batch_in_order_with_a_block_and_a_guest_s_message():
    events, problems = events_of(sample("danmu_brotli_batch.bin"))
    assert not problems
    first, ban, guest, withdrawn = events
    assert isinstance(first, ChatMessage) and (first.sender, first.text) == ("1004", "A")
    assert ban == PlatformModeration(action="ban", sender="1005")
    # a guest connection sees uid 0: the sender's hash tells senders apart
    assert isinstance(guest, ChatMessage) and guest.sender == "~9f3c2a11"
    assert guest.text == "加个胸针" and guest.id and guest.id.startswith("h")
    # RECALL_DANMU_MSG's target_id is no message id the document names: not a deletion
    assert withdrawn is None


def test_the_document_s_brotli_frame_holds_a_command_the_bridge_ignores():
    assert events_of(sample("watched_change_brotli.bin")) == ([None], [])


def test_a_message_of_several_packets_and_a_suffixed_command_name():
    named = fake.danmu(7, "hi", id_str="x")
    named["cmd"] = "DANMU_MSG:4:0:2:2:2:0"
    message = fake.command(fake.danmu(6, "one", id_str="y")) + fake.command(named)
    events, problems = events_of(message)
    assert not problems
    assert [e.text for e in events if isinstance(e, ChatMessage)] == ["one", "hi"]


def test_ids_without_id_str_are_stable_and_tell_messages_apart():
    def only(obj):
        [event] = events_of(fake.command(obj))[0]
        assert isinstance(event, ChatMessage)
        return event.id

    same = only(fake.danmu(5, "1", ms=1000)), only(fake.danmu(5, "1", ms=1000))
    assert same[0] == same[1]
    assert only(fake.danmu(5, "2", ms=1000)) != same[0]
    assert only(fake.danmu(5, "1", ms=1001)) != same[0]
    assert only(fake.danmu(6, "1", ms=1000)) != same[0]


# --- malformed frames: left out, the good ones around them kept ------------------------

GOOD = fake.command(fake.danmu(1, "ok", id_str="g"))
BOMB = b"\0" * (LIMIT + 1)


MALFORMED = {
    "short-tail": (GOOD + b"\0\0\0\x10", "short of a 16-byte header"),
    "length-past-end": (GOOD + struct.pack(">IHHII", 400, 16, 0, 5, 0) + b"{}", "says 400 bytes"),
    "short-header": (GOOD + struct.pack(">IHHII", 20, 8, 0, 5, 0) + b"{}{}", "8-byte header"),
    "length-under-header": (GOOD + struct.pack(">IHHII", 10, 16, 0, 5, 0), "says 10 bytes"),
    "zlib-garbage": (GOOD + fake.packet(5, b"not zlib", version=2), "zlib batch does not inflate"),
    "zlib-cut": (GOOD + fake.packet(5, zlib.compress(GOOD)[:-4], version=2), "zlib batch is cut"),
    "brotli-garbage": (GOOD + fake.packet(5, b"not brotli", version=3), "brotli batch does not"),
    "brotli-cut": (GOOD + fake.packet(5, brotli.compress(GOOD)[:-2], version=3), "brotli batch is"),
    "zlib-bomb": (GOOD + fake.packet(5, zlib.compress(BOMB), version=2), "inflates past 1048576"),
    "brotli-bomb": (GOOD + fake.packet(5, brotli.compress(BOMB), version=3), "inflates past 104"),
    "unknown-version": (GOOD + fake.packet(5, b"{}", version=9), "unknown protocol version 9"),
}


def test_a_malformed_message_keeps_what_came_before_and_names_the_problem():
    for case, (message, problem) in MALFORMED.items():
        found = wire.split(message, LIMIT)
        assert [p.body for p in found.packets] == [GOOD[16:]], case
        assert len(found.problems) == 1 and problem in found.problems[0], (case, found.problems)


@pytest.mark.parametrize("version", [wire.VERSION_ZLIB, wire.VERSION_BROTLI])
def test_a_decompression_bomb_is_not_inflated_past_the_cap(version):
    """16 MiB of zeros, compressed to a few kilobytes: refused after about the cap (1 MiB),
    not after inflating it all."""
    zeros = b"\0" * (16 << 20)
    if version == wire.VERSION_ZLIB:
        body = zlib.compress(zeros, 1)
    else:
        body = brotli.compress(zeros, quality=1)
    del zeros
    message = fake.packet(5, body, version=version)
    tracemalloc.start()
    try:
        found = wire.split(message, LIMIT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found.packets == [] and "inflates past" in found.problems[0]
    assert peak < 8 * LIMIT, peak


def test_a_compressed_packet_inside_a_compressed_batch_is_left_out():
    inner = fake.zlib_batch(fake.danmu(2, "nested", id_str="n"))
    outer = fake.packet(5, brotli.compress(GOOD + inner), version=3)
    found = wire.split(outer, LIMIT)
    assert [p.body for p in found.packets] == [GOOD[16:]]
    assert found.problems == ["a compressed packet inside a compressed batch"]


def test_the_inflation_cap_holds_for_all_the_batches_of_a_message_together():
    batch = fake.packet(5, zlib.compress(GOOD * 1000), version=2)
    found = wire.split(batch * 3, len(GOOD) * 2500)
    assert len(found.packets) == 2000
    assert len(found.problems) == 1 and "inflates past" in found.problems[0]


BAD_COMMANDS = [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not an object with a cmd"),
    (b'{"info": []}', "not an object with a cmd"),
    (b'{"cmd": "DANMU_MSG"}', "without info"),
    (b'{"cmd": "DANMU_MSG", "info": [[], "x"]}', "without info"),
    (b'{"cmd": "DANMU_MSG", "info": [{}, "x", [1, "n"]]}', "is not a list"),
    (b'{"cmd": "DANMU_MSG", "info": [[], 5, [1, "n"]]}', "without a text"),
    (b'{"cmd": "DANMU_MSG", "info": [[], " ", [1, "n"]]}', "without a text"),
    (b'{"cmd": "DANMU_MSG", "info": [[], "x", ["1", "n"]]}', "sender id"),
    (b'{"cmd": "DANMU_MSG", "info": [[], "x", [-3, "n"]]}', "sender id"),
    (b'{"cmd": "DANMU_MSG", "info": [[], "x", [true, "n"]]}', "sender id"),
    (b'{"cmd": "DANMU_MSG", "info": [[], "x", [0, "n"]]}', "neither a sender id"),
    (b'{"cmd": "ROOM_BLOCK_MSG", "data": {"uname": "x"}}', "without the blocked"),
    (b'{"cmd": "ROOM_BLOCK_MSG", "uid": "12a"}', "without the blocked"),
]


def test_a_malformed_command_is_refused_with_a_reason():
    for body, problem in BAD_COMMANDS:
        with pytest.raises(wire.WireError, match=problem):
            wire.command(body)


def test_an_auth_reply_without_a_code_is_refused():
    for body in (b"", b"[]", b'{"code": "0"}', b'{"msg": 1}'):
        with pytest.raises(wire.WireError):
            wire.auth_code(body)


# --- the adapter against the fake server -----------------------------------------------


def adapter(server: FakeBilibili, room: str = "5050", **options: object) -> BilibiliAdapter:
    return BilibiliAdapter(room, {"url": server.url, "connect_timeout_s": 5 * UNIT, **options})


async def take(events: AsyncIterator[Event], count: int) -> list[Event]:
    out: list[Event] = []
    async with asyncio.timeout(5 * UNIT):
        async for event in events:
            out.append(event)
            if len(out) == count:
                break
    return out


async def until_error(events: AsyncIterator[Event]) -> tuple[list[Event], BridgeError]:
    out: list[Event] = []
    async with asyncio.timeout(5 * UNIT):
        try:
            async for event in events:
                out.append(event)
        except BridgeError as exc:
            return out, exc
    raise AssertionError(f"the events ended without a BridgeError after {out}")


async def test_it_sends_the_auth_then_yields_plain_zlib_and_brotli_messages_in_order():
    async with FakeBilibili() as server:
        server.sessions = [
            Session(
                [
                    fake.command(fake.danmu(11, "1", id_str="m1")),
                    fake.zlib_batch(
                        *(fake.danmu(12 + i, str(2 + i), id_str=f"m{2 + i}") for i in range(3))
                    ),
                    fake.brotli_batch(
                        fake.danmu(15, "5", id_str="m5"), fake.block(99), fake.recall(77)
                    ),
                    fake.command(fake.danmu(16, "6", id_str="m6")),
                ]
            )
        ]
        bridge = adapter(server, "5050", uid=321, key="the-key")
        async with contextlib.aclosing(bridge.events(None)) as events:
            got = await take(events, 7)
        assert server.paths == ["/sub"]
        assert server.auth_headers == [(1, 7, 1)]
        assert server.auths == [
            {
                "uid": 321,
                "roomid": 5050,
                "protover": 3,
                "platform": "web",
                "type": 2,
                "key": "the-key",
            }
        ]
    texts = [e.text for e in got if isinstance(e, ChatMessage)]
    assert texts == ["1", "2", "3", "4", "5", "6"]
    assert [e.id for e in got if isinstance(e, ChatMessage)] == [f"m{i}" for i in range(1, 7)]
    assert got[5] == PlatformModeration(action="ban", sender="99")  # the recall: nothing
    assert bridge.skipped == 0


async def test_a_guest_sends_no_key():
    async with FakeBilibili() as server:
        server.sessions = [Session([fake.command(fake.danmu(1, "x", id_str="1"))])]
        async with contextlib.aclosing(adapter(server).events(None)) as events:
            await take(events, 1)
    assert server.auths[0]["uid"] == 0 and "key" not in server.auths[0]


async def test_it_sends_heartbeats_and_reads_their_replies():
    async with FakeBilibili() as server:
        server.popularity = 31337
        bridge = adapter(server, heartbeat_s=0.02)
        async with contextlib.aclosing(bridge.events(None)) as events:
            reader = asyncio.ensure_future(anext(events))
            async with asyncio.timeout(5 * UNIT):
                while server.heartbeats < 3:
                    await server.beat.wait()
                    server.beat.clear()
                assert not reader.done()
                # a message after the replies: once it is read, so are they
                await server.push(fake.command(fake.danmu(3, "after", id_str="z")))
                event = await reader
    assert isinstance(event, ChatMessage) and event.text == "after"
    assert bridge.popularity == 31337
    assert bridge.skipped == 0


async def test_malformed_frames_are_skipped_and_counted_and_the_bridge_goes_on():
    garbage = [
        b"\x00\x01",  # shorter than a header
        fake.packet(5, b"x" * 64)[:40],  # a packet longer than the message
        fake.packet(5, b"not zlib", version=2),
        fake.packet(5, brotli.compress(b"\0" * (2 << 20)), version=3),  # a bomb over the cap
        fake.packet(5, b"{not json"),
        fake.command({"cmd": "DANMU_MSG", "info": "nope"}),
        fake.command({"cmd": "DANMU_MSG", "info": [[], "x", ["not a number", "n"]]}),
        "a text message",
    ]
    async with FakeBilibili() as server:
        server.sessions = [
            Session(
                [
                    fake.command(fake.danmu(1, "before", id_str="b")),
                    *garbage,
                    fake.command(fake.danmu(2, "after", id_str="a")),
                ]
            )
        ]
        bridge = adapter(server, max_inflated_bytes=1 << 20)
        async with contextlib.aclosing(bridge.events(None)) as events:
            got = await take(events, 2)
    assert [e.text for e in got if isinstance(e, ChatMessage)] == ["before", "after"]
    assert bridge.skipped == len(garbage)
    assert bridge.last_problem == "a text message (14 characters), not packets"


async def test_a_reconnect_resends_overlapping_messages_with_the_same_ids():
    """The fake closes after five messages and sends the last two again on the next
    connection (Bilibili has no cursor). Dropping repeats by id, as the runner does, gives
    each message once, in order; messages without an id_str keep their made-up id too."""

    def msg(n: int) -> dict[str, object]:
        id_str = f"id{n}" if n % 2 else None
        return fake.danmu(100 + n, f"m{n}", id_str=id_str, ms=1_700_000_000_000 + n)

    async with FakeBilibili() as server:
        server.sessions = [
            Session([fake.zlib_batch(*(msg(n) for n in range(1, 6)))], close=True),
            Session([fake.brotli_batch(*(msg(n) for n in range(4, 9)))]),
        ]
        bridge = adapter(server)
        first, error = await until_error(bridge.events(None))
        assert error.retry and "closed" in str(error)
        async with contextlib.aclosing(bridge.events(None)) as events:
            second = await take(events, 5)
    assert len(server.auths) == 2
    assert [e.text for e in first if isinstance(e, ChatMessage)] == [f"m{n}" for n in range(1, 6)]
    ids_first = {e.text: e.id for e in first if isinstance(e, ChatMessage)}
    ids_second = {e.text: e.id for e in second if isinstance(e, ChatMessage)}
    assert ids_first["m4"] == ids_second["m4"] and ids_first["m5"] == ids_second["m5"]
    seen: set[str | None] = set()
    kept = []
    for event in [*first, *second]:
        if isinstance(event, ChatMessage) and event.id not in seen:
            seen.add(event.id)
            kept.append(event.text)
    assert kept == [f"m{n}" for n in range(1, 9)]


async def test_a_refused_auth_is_a_bridge_error_that_says_not_to_retry():
    async with FakeBilibili(auth_code=-101) as server:
        got, error = await until_error(adapter(server).events(None))
    assert got == [] and not error.retry and "code -101" in str(error)


async def test_no_auth_reply_in_time_is_a_bridge_error():
    async with FakeBilibili(reply_auth=False) as server:
        got, error = await until_error(adapter(server, connect_timeout_s=0.2).events(None))
    assert got == [] and error.retry and "no auth reply" in str(error)


async def test_a_command_before_the_auth_reply_is_a_bridge_error():
    async with FakeBilibili() as server:
        server.before_auth_reply = [fake.command(fake.danmu(1, "early", id_str="e"))]
        got, error = await until_error(adapter(server).events(None))
    assert got == [] and error.retry and "before the auth reply" in str(error)


async def test_a_message_over_the_size_limit_closes_the_connection_with_a_bridge_error():
    async with FakeBilibili() as server:
        big = fake.command(fake.danmu(1, "x" * 5000, id_str="big"))
        server.sessions = [Session([fake.command(fake.danmu(1, "small", id_str="s")), big])]
        got, error = await until_error(adapter(server, max_message_bytes=4096).events(None))
    assert [e.text for e in got if isinstance(e, ChatMessage)] == ["small"]
    assert error.retry


async def test_no_server_is_a_bridge_error_to_retry():
    bridge = BilibiliAdapter("5050", {"url": f"ws://127.0.0.1:{free_port()}/sub"})
    got, error = await until_error(bridge.events(None))
    assert got == [] and error.retry and "cannot connect" in str(error)
    bridge = BilibiliAdapter("5050", {"url": "http://127.0.0.1:1/sub"})
    got, error = await until_error(bridge.events(None))
    assert got == [] and not error.retry and "bridges.bili.url" in str(error)


def test_a_room_id_that_is_not_a_positive_number_is_refused():
    for room in ["", "abc", "-5", "0", "12 34", "１２３", "9" * 30]:
        with pytest.raises(BridgeError) as caught:
            BilibiliAdapter(room, {})
        assert not caught.value.retry and "positive number" in str(caught.value)
    assert BilibiliAdapter(" 22608112 ", {}).room_id == 22608112


def test_bad_options_are_refused():
    for options in (
        {"uid": "me"},
        {"heartbeat_s": 0},
        {"max_message_bytes": -1},
        {"max_inflated_bytes": 0},
        {"connect_timeout_s": "x"},
    ):
        with pytest.raises(BridgeError) as caught:
            BilibiliAdapter("5050", options)
        assert not caught.value.retry and "bridges.bili" in str(caught.value), options


# --- [bridges.bili] in the configuration -----------------------------------------------


def test_the_adapter_reads_the_options_of_its_configuration_section():
    assert set(DEFAULTS) == {f.name for f in dataclasses.fields(BiliBridgeSettings)}
    assert DEFAULTS == dataclasses.asdict(BiliBridgeSettings())
    settings = Settings().replace(bridges={"bili": {"uid": 9, "key": "k"}})
    bridge = BilibiliAdapter("5050", dataclasses.asdict(section_of(settings, "bridges.bili")))
    assert (bridge.uid, bridge.key, bridge.url) == (9, "k", DEFAULTS["url"])


def test_bridges_bili_from_a_file_and_the_environment(tmp_path):
    path = tmp_path / "hudong.toml"
    path.write_text('[bridges.bili]\nurl = "ws://127.0.0.1:1/sub"\nuid = 12\n')
    settings = load_settings(path, environ={"HUDONG_BRIDGES_BILI_KEY": "secret-key"})
    assert settings.bridges.bili.url == "ws://127.0.0.1:1/sub"
    assert (settings.bridges.bili.uid, settings.bridges.bili.key) == (12, "secret-key")
    assert settings.hub == Settings().hub
    for text, problem in (
        ("[bridges.bili]\nnope = 1\n", "unknown setting bridges.bili.nope"),
        ("[bridges.twitter]\nx = 1\n", "unknown section [bridges.twitter]"),
        ("[bridges]\nbili = 3\n", "[bridges.bili] must be a table"),
        ("bridges = 3\n", "[bridges] must be a table"),
        ('[bridges.bili]\nuid = "x"\n', "bridges.bili.uid: expected int"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace("]", r"\]")):
            load_settings(path, environ={})


# --- through the runner, into a room ---------------------------------------------------


async def test_a_bili_bridge_brings_danmaku_to_a_room_once_across_a_reconnect():
    """The runner with the Bilibili adapter: a host adds the bridge over REST, the chat
    reaches a viewer as danmaku of `bili:<uid>` in order, the overlap the server resends
    after a reconnect comes once, a malformed frame changes nothing, and a ROOM_BLOCK_MSG
    bans the sender."""
    from tests.bili_fake import block, brotli_batch, command, danmu, zlib_batch
    from tests.conftest import running_server
    from tests.test_bridge_twitch import ROOM, add_bridge, danmaku_texts

    first = [danmu(101, "前排", id_str="a1"), danmu(102, "主播好", id_str="a2")]
    second = [
        danmu(102, "主播好", id_str="a2"),  # the overlap, sent again after the reconnect
        danmu(103, "来了来了", id_str="a3"),
    ]
    async with FakeBilibili() as bili:
        bili.sessions = [
            Session([zlib_batch(*first)], close=True),
            Session(
                [
                    b"\x00\x00\x00\x05garbage",
                    brotli_batch(*second),
                    command(block(103)),
                    command(danmu(103, "禁言后", id_str="a4")),
                    command(danmu(104, "最后一条", id_str="a5")),
                ]
            ),
        ]
        bridges = {"bili": {"url": bili.url}, "backoff_min_s": 0.01, "backoff_max_s": 0.05}
        async with running_server(bridges=bridges) as live:
            await live.create_room(ROOM)
            viewer = await live.connect()
            await viewer.join(ROOM)
            bridge = await add_bridge(live, "bili", "22608112")
            assert bridge["id"] == "bili:22608112"
            events = await danmaku_texts(viewer, 4)
            texts = [e["text"] for e in events if e["type"] == "danmaku"]
            assert texts == ["前排", "主播好", "来了来了", "最后一条"]
            by_text = {e["text"]: e for e in events if e["type"] == "danmaku"}
            assert by_text["前排"]["user"]["id"] == live.viewer_id("bili:101")
            assert by_text["前排"]["user"]["name"] == "user101"
            async with live.http() as http:
                moderation = (await http.get(f"/api/v1/rooms/{ROOM}/moderation")).json()
            assert moderation["banned"] == [{"user": live.viewer_id("bili:103")}]
