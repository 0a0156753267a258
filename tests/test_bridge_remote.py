"""``hudong bridge``, a bridge in a process of its own (server/bridges/remote.py): a fake
Twitch's chat goes over the node's WebSocket as ``bridge`` commands with a host token, and a
viewer sees it as danmaku under the same rules as a bridge the node runs; other roles and
malformed events are refused."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection

from server.bridges.base import ChatMessage, PlatformModeration
from server.bridges.remote import RemoteBridge, event_from_wire, event_to_wire
from server.bridges.twitch import TwitchAdapter
from server.cli import main
from tests.conftest import running_server
from tests.test_bridge_twitch import CHANNEL, ROOM, FakeTwitch, danmaku_texts, fake_twitch, privmsg


def test_events_go_over_the_wire_and_back_unchanged():
    for event in (
        ChatMessage("1337", "hi", "ronni", "m-1", 1700000000.5, "c9"),
        ChatMessage("2", "no extras"),
        PlatformModeration("delete", message_id="m-1"),
        PlatformModeration("timeout", sender="2", seconds=60.0),
    ):
        assert event_from_wire(event_to_wire(event), 100) == event


async def test_a_bridge_process_sends_the_chat_into_the_room_over_the_websocket():
    async def chat(ws: ServerConnection, fake: FakeTwitch) -> None:
        lines = [
            privmsg(1, 11, "one"),
            privmsg(1, 11, "one"),  # a repeat
            privmsg(2, 12, "去你妈的"),  # the text filter refuses it
            "@target-user-id=11 :tmi.twitch.tv CLEARCHAT #hudongtest :user11",
            privmsg(3, 11, "after the ban"),
            privmsg(4, 13, "two"),
        ]
        await ws.send("\r\n".join(lines) + "\r\n")
        await ws.wait_closed()

    async with fake_twitch(chat) as fake, running_server() as live:
        await live.create_room(ROOM)
        viewer = await live.connect()
        await viewer.join(ROOM)
        token = await live.mint(ROOM, "host", user_id="bridge-proc", name="Bridge")
        adapter = TwitchAdapter(CHANNEL, {"url": fake.url})
        remote = RemoteBridge(adapter, live.ws_url, ROOM, token, backoff_min_s=0.01)
        task = asyncio.get_running_loop().create_task(remote.run())
        try:
            events = await danmaku_texts(viewer, 2)
            assert [e["text"] for e in events if e["type"] == "danmaku"] == ["one", "two"]
            assert events[0]["user"]["id"] == live.viewer_id("twitch:11")
            for _ in range(100):
                if sum(remote.refused.values()) == 2:
                    break
                await asyncio.sleep(0.02)
            assert remote.refused == {"text_refused": 1, "banned": 1} and remote.sent == 3
            async with live.http() as http:
                listing = (await http.get(f"/api/v1/rooms/{ROOM}/bridges")).json()
                moderation = (await http.get(f"/api/v1/rooms/{ROOM}/moderation")).json()
            (bridge,) = listing["bridges"]
            assert (bridge["id"], bridge["node"]) == ("twitch:hudongtest", "remote")
            assert bridge["status"]["messages"] == 2
            assert moderation["banned"] == [{"user": live.viewer_id("twitch:11")}]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_only_a_host_may_bridge_and_events_are_checked():
    async with running_server() as live:
        await live.create_room(ROOM)
        host = await live.connect()
        await host.join(ROOM, token=await live.mint(ROOM, "host", user_id="h"))
        moderator = await live.connect()
        await moderator.join(ROOM, token=await live.mint(ROOM, "moderator", user_id="m"))
        viewer = await live.connect()
        await viewer.join(ROOM)
        message = {"sender": "1", "text": "hi"}
        for client in (moderator, viewer):
            reply = await client.command("bridge", platform="twitch", channel="x", event=message)
            assert (reply["type"], reply["code"]) == ("error", "forbidden"), reply
        for fields, code in (
            ({"platform": "myspace", "channel": "x", "event": message}, "invalid_field"),
            ({"platform": "twitch", "channel": "bad login", "event": message}, "invalid_field"),
            (
                {"platform": "twitch", "channel": "x", "event": {"text": "no sender"}},
                "invalid_field",
            ),
            ({"platform": "twitch", "channel": "x", "event": {"action": "nuke"}}, "invalid_field"),
            ({"platform": "twitch", "channel": "x", "event": "hi"}, "invalid_field"),
            ({"platform": "twitch", "channel": "x"}, "invalid_field"),
        ):
            reply = await host.command("bridge", **fields)
            assert (reply["type"], reply["code"]) == ("error", code), (fields, reply)
        reply = await host.command("bridge", platform="twitch", channel="x", event=message)
        assert reply["type"] == "ack" and reply["event"], reply


@pytest.mark.parametrize(
    "argv",
    [
        ["bridge", "r", "--url", "http://127.0.0.1:1", "--platform", "myspace", "--channel", "x",
         "--token", "t"],
        ["bridge", "r", "--url", "http://127.0.0.1:1", "--platform", "twitch", "--channel",
         "not a login", "--token", "t"],
        ["bridge", "r", "--url", "http://127.0.0.1:1", "--platform", "twitch", "--channel", "x"],
    ],
)  # fmt: skip
def test_the_command_refuses_what_it_cannot_run(argv, monkeypatch):
    monkeypatch.delenv("HUDONG_TOKEN", raising=False)
    assert main(argv) == 2


async def test_an_event_the_node_did_not_answer_is_sent_again_after_a_reconnect_once():
    async def chat(ws: ServerConnection, fake: FakeTwitch) -> None:
        await ws.send(privmsg(1, 11, "in flight") + "\r\n")
        await ws.wait_closed()

    async with fake_twitch(chat) as fake, running_server() as live:
        await live.create_room(ROOM)
        viewer = await live.connect()
        await viewer.join(ROOM)
        real = live.hub.bridged
        assert real is not None
        calls = 0

        async def dropped_once(room_id: str, command: Any) -> dict[str, Any]:
            nonlocal calls
            calls += 1
            if calls == 1:  # the node takes it, and the connection drops before the ack
                reply = await real(room_id, command)
                for conn in list(live.hub.connections):
                    if conn.identity is not None and conn.identity.role == "host":
                        conn.close("server_restart", "the test drops it")
                return reply
            return await real(room_id, command)

        live.hub.bridged = dropped_once
        token = await live.mint(ROOM, "host", user_id="bridge-proc")
        adapter = TwitchAdapter(CHANNEL, {"url": fake.url})
        remote = RemoteBridge(adapter, live.ws_url, ROOM, token, backoff_min_s=0.01)
        task = asyncio.get_running_loop().create_task(remote.run())
        try:
            events = await danmaku_texts(viewer, 1)

            def repeats() -> float:
                return live.metric(
                    "hudong_bridged_messages_total", platform="twitch", result="duplicate"
                )

            for _ in range(200):
                if calls >= 2 and repeats() == calls - 1:
                    break
                await asyncio.sleep(0.02)
            # Sent again on the new connection (and said again by the fake, which repeats
            # its script on the platform's reconnect too), and dropped there as a repeat.
            assert calls >= 2 and repeats() == calls - 1, (calls, repeats())
            with pytest.raises(TimeoutError):
                await danmaku_texts(viewer, 1, timeout=0.3)
            assert [e["text"] for e in events] == ["in flight"]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
