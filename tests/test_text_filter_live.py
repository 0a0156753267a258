"""The text filter on a live node, over real sockets (issue 15, Acceptance 1, 2 and the
name part of 6; PROTOCOL.md, "Text filter"): danmaku, a wall post, a question, a
word-cloud answer and display names, as the viewers in the room see them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import UNIT, Client, LiveServer, running_server
from tests.test_wall_moderation import Recorder, acked, joined, refused, wall_view

ROOM = "stage"
# More commands a second than a phone's default bucket: each test sends a table of texts.
BRISK = {"viewer_commands_per_s": 100.0, "viewer_command_burst": 100}


@pytest.fixture
async def live() -> AsyncIterator[LiveServer]:
    async with running_server(limits=BRISK) as server:
        yield server


async def patch(live: LiveServer, **settings: Any) -> None:
    async with live.http() as http:
        r = await http.patch(f"/api/v1/rooms/{ROOM}", json={"settings": settings})
    assert r.status_code == 200, r.text


async def danmaku_texts(client: Client, until: str) -> list[str]:
    """The texts of the danmaku the client receives, up to the one whose text is ``until``."""
    texts: list[str] = []
    while until not in texts:
        batch = await client.recv_type("batch")
        texts += [e["text"] for e in batch["events"] if e.get("type") == "danmaku"]
    return texts


async def next_danmaku(client: Client) -> dict[str, Any]:
    """The next danmaku event the client receives."""
    while True:
        batch = await client.recv_type("batch")
        for event in batch["events"]:
            if event.get("type") == "danmaku":
                return event


async def test_danmaku_are_masked_refused_held_or_let_through(live: LiveServer) -> None:
    await live.create_room(ROOM)
    fan, _ = await joined(live, "viewer", "fan")
    watcher, _ = await joined(live, "viewer", "watcher")
    recorder = Recorder(watcher)

    masked = await acked(fan, "danmaku", text="主播 傻\u200b逼 哈哈")
    await refused(fan, "danmaku", "text_refused", text="操 你 媽")
    await refused(fan, "danmaku", "text_refused", text="ＣＡＯＮＩＭＡ")
    for link in ("www.evil.com", "evil。example。com", "加微信 abc123", "138 1234 5678"):
        await refused(fan, "danmaku", "links_not_allowed", text=link)
    held = await acked(fan, "danmaku", text="网赌 稳赚")
    assert held.get("held") is True and "event" not in held
    await acked(fan, "danmaku", text="666")
    repeat = await refused(fan, "danmaku", "duplicate_text", text="6 6 6")
    assert repeat["retry_after_ms"] > 0

    host, _ = await joined(live, "host", "host")
    await patch(live, allow_links=True)
    await acked(fan, "danmaku", text="see www.example.com")
    assert (await acked(host, "danmaku", text="官网 www.brand.cn"))["event"]

    async def seen() -> list[str]:
        await recorder.stop()
        texts = []
        for frame in recorder.raw:
            message = watcher.codec.decode(frame)
            for event in message.get("events", []) if message["type"] == "batch" else []:
                if event.get("type") == "danmaku":
                    texts.append(event["text"])
        return texts

    await asyncio.sleep(0.5 * UNIT)  # the last tick's batch
    texts = await seen()
    assert texts == ["主播 ＊＊ 哈哈", "666", "see www.example.com", "官网 www.brand.cn"]
    assert masked["event"]
    for word in ("傻", "操", "網賭", "网赌", "evil", "abc123", "1234"):
        assert not recorder.saw(word), word
    assert live.metric("hudong_text_decisions_total", action="mask", reason="blocklist") == 1
    assert live.metric("hudong_text_decisions_total", action="reject", reason="link") == 2
    assert live.metric("hudong_text_decisions_total", action="review", reason="blocklist") == 1
    assert live.metric("hudong_commands_total", op="danmaku", result="held") == 1


async def test_a_post_and_a_question_are_filtered_and_held_in_their_queues(
    live: LiveServer,
) -> None:
    await live.create_room(ROOM, wall_moderation="post")
    host, _ = await joined(live, "host", "host")
    fan, _ = await joined(live, "viewer", "fan")

    await refused(fan, "post", "links_not_allowed", key="p0", text="扫码 evil 点 com")
    shown = await acked(fan, "post", key="p1", text="这个 fuuuck 太好看了")
    assert shown["status"] == "approved"
    held = await acked(fan, "post", key="p2", text="兼职日结 私聊")
    assert held["status"] == "pending"  # into the queue although the room posts at once
    view = await wall_view(fan, lambda v: v["count"] == 1)
    assert [p["text"] for p in view["posts"]] == ["这个 ＊＊＊＊＊＊ 太好看了"]
    queue = await wall_view(host, lambda v: len(v.get("queue", [])) == 1)
    assert [p["text"] for p in queue["queue"]] == ["兼职日结 私聊"]

    spec = {"id": "ask", "title": "Ask"}
    await acked(host, "host", action="create", kind="qa", spec=spec)
    await acked(host, "host", action="open", interaction="ask")
    await refused(fan, "ask", "text_refused", interaction="ask", key="q0", text="去死吧 主播")
    await acked(fan, "ask", interaction="ask", key="q1", text="Is the ＳＨＩＴ waterproof?")
    hidden = await acked(fan, "ask", interaction="ask", key="q2", text="约炮吗")
    answer = {"action": "answer", "text": "no, the shit is not"}
    async with live.http() as http:
        board = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/ask")).json()
        question = next(q for q in board["questions"] if "waterproof" in q["text"])
        assert question["text"] == "Is the ＊＊＊＊ waterproof?"
        assert [q["hidden"] for q in board["questions"] if q["text"] == "约炮吗"] == [True]
        r = await http.post(
            f"/api/v1/rooms/{ROOM}/interactions/ask/actions",
            json={**answer, "question": question["id"]},
        )
        assert r.status_code == 200, r.text
    async with live.http(await live.mint(ROOM, "viewer")) as http:
        public = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/ask")).json()
    assert "约炮" not in str(public) and hidden["version"]
    answered = next(q for q in public["questions"] if q["id"] == question["id"])
    assert answered["answer"] == "no, the ＊＊＊＊ is not"

    spec = {"id": "w", "question": "One word?", "kind": "text", "max_answers": 3}
    await acked(host, "host", action="create", kind="poll", spec=spec)
    await acked(host, "host", action="open", interaction="w")
    await refused(fan, "vote", "links_not_allowed", interaction="w", key="a1", text="evil.com")
    await refused(fan, "vote", "text_refused", interaction="w", key="a2", text="裸聊")
    await acked(fan, "vote", interaction="w", key="a3", text="好看")


async def test_guests_cannot_take_a_staff_name(live: LiveServer) -> None:
    await live.create_room(ROOM)
    staff = await live.connect()
    await staff.join(ROOM, token=await live.mint(ROOM, "host", user_id="h", name="Alice Wang"))
    for name in (
        "主持人",
        "Host",
        "ｈｏｓｔ",
        "Host\u200b",
        "H\u200bost",
        "管理员 (admin)",
        "管理員",
        "Аdmin",  # Cyrillic А
        "official 官方",
        "Moderator",
        "alice wang",
        "ＡＬＩＣＥ  ＷＡＮＧ",
    ):
        guest = await live.connect()
        reply = await guest.command("join", room=ROOM, name=name)
        assert (reply["type"], reply.get("code")) == ("error", "name_reserved"), name
    guest = await live.connect()
    reply = await guest.command("join", room=ROOM, name="傻逼")
    assert reply.get("code") == "text_refused", reply
    fan = await live.connect()
    joined_fan = await fan.join(ROOM, name="Ghost \u202eeman")  # "host" inside a word: fine
    assert joined_fan["you"]["name"] == "Ghost eman"  # bidi override taken out
    # A guest's rename (its own token with a new name) is checked the same way.
    again = await live.connect()
    rename = await again.command("join", room=ROOM, token=joined_fan["token"], name="主持人 ")
    assert rename.get("code") == "name_reserved", rename
    # Roles, not names, mark staff in what everyone receives.
    await acked(staff, "danmaku", text="欢迎")
    event = await next_danmaku(fan)
    assert event["user"] == {"id": "h", "name": "Alice Wang", "role": "host"}


async def test_the_rooms_own_words_reach_the_filter(live: LiveServer) -> None:
    await live.create_room(ROOM)
    fan, _ = await joined(live, "viewer", "fan")
    await acked(fan, "danmaku", text="去买竞品")
    async with live.http() as http:
        words = [{"word": "竞品", "action": "reject"}, {"word": "spoiler", "action": "mask"}]
        r = await http.put(f"/api/v1/rooms/{ROOM}/blocklist", json={"words": words})
        assert r.status_code == 200, r.text
        room = (await http.get(f"/api/v1/rooms/{ROOM}")).json()
    assert "竞品" not in str(room)  # private: not among the settings every viewer gets
    await refused(fan, "danmaku", "text_refused", text="去买競品吧")
    await acked(fan, "danmaku", text="no SPOILER please")
    # (batches that came while waiting for answers were passed over: only the last one)
    texts = await danmaku_texts(fan, "no ＊＊＊＊＊＊＊ please")
    assert not any("SPOILER" in t or "競品" in t for t in texts), texts
