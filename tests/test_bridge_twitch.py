"""The Twitch bridge (server/bridges/twitch.py) against a local fake of Twitch's IRC over
WebSocket, speaking the documented protocol with the sample lines of
tests/data/bridges/twitch_irc.txt; and the runner that turns its chat into a room's danmaku
(server/bridges/runner.py), seen by a viewer over a real socket. No network."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from server.bridges.base import BridgeError, ChatMessage, PlatformModeration
from server.bridges.twitch import MalformedLine, TwitchAdapter, event_of, parse_line
from tests.conftest import UNIT, Client, LiveServer, running_server

SAMPLES = Path(__file__).parent / "data" / "bridges" / "twitch_irc.txt"
CHANNEL = "hudongtest"
ROOM = "stream"


def sample_lines() -> dict[str, list[str]]:
    """The sample lines, by the section note above them."""
    sections: dict[str, list[str]] = {}
    current = ""
    for line in SAMPLES.read_text(encoding="utf-8").splitlines():
        if line.startswith("# --"):
            current = line[4:].strip().split()[0]
        elif line and not line.startswith("#"):
            sections.setdefault(current, []).append(line)
    return sections


SECTIONS = sample_lines()


def privmsg(n: int, user: int, text: str, channel: str = CHANNEL) -> str:
    return (
        f"@display-name=User{user};id=msg-{n};tmi-sent-ts=1700000000{n:03d};user-id={user}"
        f" :user{user}!user{user}@user{user}.tmi.twitch.tv PRIVMSG #{channel} :{text}"
    )


# --- the parser, with the recorded lines ------------------------------------------------


def test_recorded_chat_lines_parse_to_messages_in_order():
    events = [event_of(parse_line(line), CHANNEL) for line in SECTIONS["chat"]]
    assert events == [
        ChatMessage("1337", "Kappa Keepo Kappa", "ronni", "b34ccfc7-4977-403a-8a94-33c6bac34fb8",
                    1507246572.675),
        ChatMessage("2002", "1", "Viewer Two", "4a1f0e4c-6c8a-4b4f-9c4e-6a3c1c6f2b10",
                    1507246573.675),
        ChatMessage("3003", "waves", "cheer;fan", "9b0a3f1d-0d4b-4e67-8a5c-1e3f4b5a6c7d",
                    1507246574.675),
    ]  # fmt: skip


def test_recorded_moderation_lines_parse_to_signals():
    events = [event_of(parse_line(line), CHANNEL) for line in SECTIONS["moderation"]]
    assert events == [
        PlatformModeration("delete", message_id="b34ccfc7-4977-403a-8a94-33c6bac34fb8"),
        PlatformModeration("timeout", sender="2002", seconds=350.0),
        PlatformModeration("ban", sender="1337"),
        None,  # the whole chat cleared: not followed
    ]


def test_login_and_keepalive_lines_are_no_chat():
    for line in SECTIONS["the"] + SECTIONS["keepalive"]:
        assert event_of(parse_line(line), CHANNEL) is None
    ping = parse_line("PING :tmi.twitch.tv")
    assert (ping.command, ping.params) == ("PING", ["tmi.twitch.tv"])


def test_malformed_lines_are_refused_with_the_parser_error():
    malformed = SECTIONS["malformed:"]
    assert len(malformed) == 8
    for line in malformed:
        with pytest.raises(MalformedLine):
            event_of(parse_line(line), CHANNEL)
    for line in ("", "x" * 9000, "PRIVMSG\0"):
        with pytest.raises(MalformedLine):
            parse_line(line)


def test_a_channel_is_a_twitch_login():
    assert TwitchAdapter("#HudongTest", {}).channel == "hudongtest"
    for bad in ("", "has space", "a" * 26, "名字"):
        with pytest.raises(ValueError):
            TwitchAdapter(bad, {})


# --- a local fake of Twitch ----------------------------------------------------------------

Script = Callable[[ServerConnection, "FakeTwitch"], Awaitable[None]]


class FakeTwitch:
    """Twitch's chat server as documented: answers the login, then runs one script per
    connection (the last one again for any further connection)."""

    def __init__(self, scripts: list[Script]) -> None:
        self.scripts = scripts
        self.connections = 0
        self.heard: list[list[str]] = []  # each connection's lines from the client
        self.joined = asyncio.Event()
        self.url = ""

    async def handler(self, ws: ServerConnection) -> None:
        index = min(self.connections, len(self.scripts) - 1)
        self.connections += 1
        heard: list[str] = []
        self.heard.append(heard)
        reader = asyncio.get_running_loop().create_task(self._read(ws, heard))
        try:
            await self.wait_for(heard, lambda: any(h.startswith("JOIN ") for h in heard))
            await ws.send("\r\n".join(SECTIONS["the"]) + "\r\n")
            self.joined.set()
            await self.scripts[index](ws, self)
        finally:
            reader.cancel()

    async def _read(self, ws: ServerConnection, heard: list[str]) -> None:
        with contextlib.suppress(Exception):
            async for frame in ws:
                heard.extend(line for line in str(frame).split("\r\n") if line)

    async def wait_for(self, heard: list[str], ready: Callable[[], bool]) -> None:
        for _ in range(int(500 * UNIT)):
            if ready():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the client never did it; it sent {heard}")


@contextlib.asynccontextmanager
async def fake_twitch(*scripts: Script) -> AsyncIterator[FakeTwitch]:
    fake = FakeTwitch(list(scripts))
    async with serve(fake.handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        fake.url = f"ws://127.0.0.1:{port}"
        yield fake


async def idle(ws: ServerConnection, fake: FakeTwitch) -> None:
    await ws.wait_closed()


async def test_the_adapter_logs_in_answers_pings_and_reads_in_order():
    async def script(ws: ServerConnection, fake: FakeTwitch) -> None:
        await ws.send("PING :tmi.twitch.tv\r\n")
        lines = [privmsg(1, 11, "first"), *SECTIONS["malformed:"], privmsg(2, 12, "second")]
        await ws.send("\r\n".join(lines) + "\r\n")  # several lines in one frame
        await ws.send(privmsg(3, 11, "third") + "\r\n")
        await ws.send(SECTIONS["keepalive"][1] + "\r\n")  # RECONNECT: the stream ends
        await ws.wait_closed()

    async with fake_twitch(script) as fake:
        adapter = TwitchAdapter(CHANNEL, {"url": fake.url})
        got = [e async for e in adapter.events(None)]
    assert [(e.sender, e.text, e.id) for e in got if isinstance(e, ChatMessage)] == [
        ("11", "first", "msg-1"),
        ("12", "second", "msg-2"),
        ("11", "third", "msg-3"),
    ]
    assert adapter.skipped == len(SECTIONS["malformed:"])
    heard = fake.heard[0]
    assert heard[:3] == [
        "CAP REQ :twitch.tv/tags twitch.tv/commands",
        "NICK justinfan12345",
        f"JOIN #{CHANNEL}",
    ]
    assert "PONG :tmi.twitch.tv" in heard


async def test_a_token_logs_in_with_pass_and_a_refused_one_is_not_retried():
    async def refuse(ws: ServerConnection, fake: FakeTwitch) -> None:
        await ws.send(":tmi.twitch.tv NOTICE * :Login authentication failed\r\n")
        await ws.wait_closed()

    async with fake_twitch(refuse) as fake:
        adapter = TwitchAdapter(CHANNEL, {"url": fake.url, "token": "abc", "login": "mybot"})
        with pytest.raises(BridgeError) as caught:
            async for _ in adapter.events(None):
                pass
    assert caught.value.retry is False
    assert fake.heard[0][1:3] == ["PASS oauth:abc", "NICK mybot"]


async def test_a_dropped_connection_is_a_retryable_error():
    async def drop(ws: ServerConnection, fake: FakeTwitch) -> None:
        await ws.send(privmsg(1, 11, "one") + "\r\n")
        ws.transport.abort()

    async with fake_twitch(drop) as fake:
        adapter = TwitchAdapter(CHANNEL, {"url": fake.url})
        got: list[Any] = []
        with pytest.raises(BridgeError) as caught:
            async for event in adapter.events(None):
                got.append(event)
    assert caught.value.retry is True
    assert [e.text for e in got] == ["one"]


# --- the runner: a room's viewer sees the chat --------------------------------------------


async def danmaku_texts(viewer: Client, want: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The danmaku and retract events the viewer gets, until ``want`` danmaku arrived."""
    events: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout * UNIT
    while sum(e["type"] == "danmaku" for e in events) < want:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"only these arrived: {events}"
        message = await viewer.recv(left / UNIT)
        if message["type"] == "batch":
            events.extend(e for e in message["events"] if e["type"] in ("danmaku", "retract"))
    return events


async def add_bridge(live: LiveServer, platform: str, channel: str) -> dict[str, Any]:
    async with live.http() as http:
        r = await http.post(
            f"/api/v1/rooms/{ROOM}/bridges", json={"platform": platform, "channel": channel}
        )
    assert r.status_code == 201, r.text
    bridge: dict[str, Any] = r.json()
    return bridge


async def test_chat_reaches_a_viewer_in_order_once_across_a_reconnect_with_moderation():
    first_gone = asyncio.Event()
    go_on = asyncio.Event()

    async def first(ws: ServerConnection, fake: FakeTwitch) -> None:
        for n in (1, 2, 3):
            await ws.send(privmsg(n, 11 if n != 2 else 12, f"line {n}") + "\r\n")
        await go_on.wait()
        ws.transport.abort()  # the connection drops
        first_gone.set()

    async def second(ws: ServerConnection, fake: FakeTwitch) -> None:
        lines = [
            privmsg(3, 11, "line 3"),  # a repeat: dropped by id
            privmsg(4, 12, "line 4"),
            privmsg(5, 13, "去你妈的"),  # the room's text filter rejects it
            privmsg(6, 11, "line 6"),
        ]
        await ws.send("\r\n".join(lines) + "\r\n")
        await go_on.wait()
        await ws.send(
            "@target-msg-id=msg-4 :tmi.twitch.tv CLEARMSG #hudongtest :line 4\r\n"
            "@room-id=1;target-user-id=12 :tmi.twitch.tv CLEARCHAT #hudongtest :user12\r\n"
            "@ban-duration=60;target-user-id=11 :tmi.twitch.tv CLEARCHAT #hudongtest :user11\r\n"
        )
        after = [
            privmsg(7, 12, "banned now"),
            privmsg(9, 11, "muted now"),
            privmsg(8, 14, "line 8"),
        ]
        await ws.send("\r\n".join(after) + "\r\n")
        await ws.wait_closed()

    async with fake_twitch(first, second) as fake:
        bridges = {"twitch": {"url": fake.url}, "backoff_min_s": 0.01, "backoff_max_s": 0.05}
        async with running_server(bridges=bridges) as live:
            await live.create_room(ROOM)
            viewer = await live.connect()
            await viewer.join(ROOM)
            bridge = await add_bridge(live, "twitch", "HudongTest")
            assert bridge["id"] == "twitch:hudongtest"
            events = await danmaku_texts(viewer, 3)
            go_on.set()
            await first_gone.wait()
            events += await danmaku_texts(viewer, 3)
            texts = [e["text"] for e in events if e["type"] == "danmaku"]
            assert texts[:5] == ["line 1", "line 2", "line 3", "line 4", "line 6"]
            assert texts[5] == "line 8"  # not "banned now" nor "muted now", and "line 3" once
            pseudonym = live.viewer_id("twitch:12")
            by_text = {e["text"]: e for e in events if e["type"] == "danmaku"}
            assert by_text["line 2"]["user"] == {
                "id": pseudonym,
                "name": "User12",
                "role": "viewer",
            }
            retracted = [e["id"] for e in events if e["type"] == "retract"]
            assert retracted == [by_text["line 4"]["id"]]
            async with live.http() as http:
                moderation = (await http.get(f"/api/v1/rooms/{ROOM}/moderation")).json()
                listing = (await http.get(f"/api/v1/rooms/{ROOM}/bridges")).json()
                audit = (await http.get(f"/api/v1/rooms/{ROOM}/audit-log")).json()
            assert moderation["banned"] == [{"user": pseudonym}]
            assert [m["user"] for m in moderation["muted"]] == [live.viewer_id("twitch:11")]
            (status,) = [b["status"] for b in listing["bridges"]]
            assert status["state"] == "connected" and status["messages"] == 6
            assert status["refusals"] == {"text_refused": 1, "banned": 1, "muted": 1}, status
            assert status["errors"] == 1 and fake.connections == 2
            actions = [(e["action"], e["actor"]["id"]) for e in audit["entries"]]
            assert ("bridge.add", "admin") in actions and ("moderation.ban", "system") in actions
            assert live.metric("hudong_bridged_messages_total", platform="twitch", result="ok") == 6
            assert live.metric("hudong_bridged_messages_total", platform="twitch",
                               result="duplicate") == 1  # fmt: skip
            assert live.metric("hudong_bridges_connected", platform="twitch") == 1
            assert live.metric("hudong_bridge_errors_total", platform="twitch") == 1
            async with live.http() as http:
                r = await http.delete(f"/api/v1/rooms/{ROOM}/bridges/twitch/hudongtest")
                assert r.status_code == 204, r.text
                again = await http.delete(f"/api/v1/rooms/{ROOM}/bridges/twitch/hudongtest")
                assert again.status_code == 404
                listing = (await http.get(f"/api/v1/rooms/{ROOM}/bridges")).json()
            assert listing["bridges"] == [] and "twitch" in listing["platforms"]
            assert live.metric("hudong_bridges_connected", platform="twitch") == 0


async def test_adding_a_bridge_refuses_bad_input_and_viewers():
    async with running_server() as live:
        await live.create_room(ROOM)
        async with live.http() as http:
            for body in (
                {"platform": "myspace", "channel": "x"},
                {"platform": "twitch", "channel": "not a login"},
                {"platform": "twitch"},
                {"platform": "twitch", "channel": "ok", "token": "no credentials here"},
            ):
                r = await http.post(f"/api/v1/rooms/{ROOM}/bridges", json=body)
                assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_field"), body
            listing = (await http.get(f"/api/v1/rooms/{ROOM}/bridges")).json()
        assert listing["bridges"] == []
        token = await live.mint(ROOM, "viewer", user_id="v1")
        async with live.http(token) as http:
            r = await http.post(
                f"/api/v1/rooms/{ROOM}/bridges", json={"platform": "twitch", "channel": "ok"}
            )
        assert r.status_code == 403


async def test_a_refused_login_stops_the_bridge_as_failed_without_retrying():
    async def refuse(ws: ServerConnection, fake: FakeTwitch) -> None:
        await ws.send(":tmi.twitch.tv NOTICE * :Login authentication failed\r\n")
        await ws.wait_closed()

    async with fake_twitch(refuse) as fake:
        bridges = {"twitch": {"url": fake.url, "token": "expired", "login": "bot"},
                   "backoff_min_s": 0.01, "backoff_max_s": 0.02}  # fmt: skip
        async with running_server(bridges=bridges) as live:
            await live.create_room(ROOM)
            await add_bridge(live, "twitch", CHANNEL)
            for _ in range(int(200 * UNIT)):
                async with live.http() as http:
                    (bridge,) = (await http.get(f"/api/v1/rooms/{ROOM}/bridges")).json()["bridges"]
                if bridge["status"]["state"] == "failed":
                    break
                await asyncio.sleep(0.02)
            assert bridge["status"]["state"] == "failed", bridge
            assert "authentication failed" in bridge["status"]["last_error"]
            await asyncio.sleep(0.1)  # many backoffs' worth: no second attempt
            assert fake.connections == 1
            assert fake.heard[0][1] == "PASS oauth:expired"
