"""A scripted event for the report's tests (issue 16, acceptance 3): a poll, a quiz, a
co-design, a keyword draw, Q&A, check-in and wall posts, played over real sockets; it
returns what it did, for the tests to compare the report with."""

from __future__ import annotations

import asyncio
from typing import Any

from server.interactions.kind import Audience
from server.interactions.qa import question_id
from tests.conftest import UNIT, LiveServer

ROOM = "launch"
FANS = {"fan0": "小明", "fan1": "Ann <i>", "fan2": "李雷", "fan3": "Bob"}
VOTES = {"fan0": "classic", "fan1": "classic", "fan2": "spicy", "fan3": "veggie"}
ANSWERS = {"fan0": "b", "fan1": "a", "fan2": "b"}  # "b" is right
PICKS = {"fan0": "sesame", "fan1": "sesame", "fan2": "brioche"}
QUESTIONS = {"fan0": "辣度可以选吗？", "fan1": "Is there a vegan bun?"}
UPVOTES = ("fan2", "fan3")  # both upvote fan0's question
POSTS = {"fan1": "Great show!", "fan2": "汉堡太香了"}
APPROVED = "fan1"  # the wall is moderated first (pre): one post is approved
MUTED = "fan3"
SAID = {"fan0": "汉堡真好吃", "fan3": "just watching"}  # the keyword is 汉堡
CHECKED_IN = ("fan0", "fan1", "fan2")


async def _ok(client: Any, op: str, **fields: Any) -> dict[str, Any]:
    reply: dict[str, Any] = await client.command(op, **fields)
    assert reply["type"] == "ack", reply
    return reply


async def play(live: LiveServer) -> dict[str, Any]:
    """Play the event in room ``ROOM``; return the viewers' ids by fan name."""
    await live.create_room(ROOM)
    host = await live.connect()
    await host.join(ROOM, token=await live.mint(ROOM, "host"))

    async def act(action: str, **fields: Any) -> dict[str, Any]:
        return await _ok(host, "host", action=action, **fields)

    options = [
        {"id": o, "label": label}
        for o, label in (("classic", "经典"), ("spicy", "香辣"), ("veggie", "蔬菜"))
    ]
    await act(
        "create",
        kind="poll",
        spec={"id": "poll", "question": "先尝哪款？", "kind": "single", "options": options},
    )
    await act("open", interaction="poll")
    quiz_q = {
        "id": "q1",
        "text": "一个汉堡几块肉饼？",
        "options": [{"id": "a", "label": "1"}, {"id": "b", "label": "2"}],
        "correct": "b",
    }
    await act(
        "create", kind="quiz", spec={"id": "quiz", "title": "汉堡知识", "questions": [quiz_q]}
    )
    await act("ask", interaction="quiz", question="q1")
    design = {
        "id": "burger",
        "title": "Build the burger",
        "slots": [
            {
                "id": "bun",
                "label": "Bun",
                "options": [{"id": o, "label": o.title()} for o in ("brioche", "sesame", "black")],
            }
        ],
    }
    await act("create", kind="codesign", spec=design)
    await act("open", interaction="burger")
    await act(
        "create",
        kind="draw",
        spec={
            "id": "draw",
            "title": "金汉堡",
            "winners": 1,
            "source": "keyword",
            "keyword": "汉堡",
        },
    )
    await act("create", kind="qa", spec={"id": "qa", "title": "问主厨"})
    await act("open", interaction="qa")

    fans = {}
    for sub, name in FANS.items():
        client = await live.connect()
        await client.join(ROOM, token=await live.mint(ROOM, "viewer", user_id=sub, name=name))
        fans[sub] = client
    await asyncio.sleep(0.3)  # the state flush refreshes the room's draw definitions
    for sub, option in VOTES.items():
        await _ok(fans[sub], "vote", key="v", interaction="poll", option=option)
    for sub, option in ANSWERS.items():
        await _ok(fans[sub], "answer", key="a", interaction="quiz", question="q1", option=option)
    for sub, option in PICKS.items():
        await _ok(fans[sub], "pick", key="p", interaction="burger", slot="bun", option=option)
    asked = {}
    for sub, text in QUESTIONS.items():
        asked[sub] = await _ok(fans[sub], "ask", key="q", interaction="qa", text=text)
    question = question_id(live.viewer_id("fan0"), "q")
    for sub in UPVOTES:
        await _ok(fans[sub], "upvote", key="u", interaction="qa", question=question)
    posts = {}
    for sub, text in POSTS.items():
        posts[sub] = (await _ok(fans[sub], "post", key="w", text=text))["post"]
    await act("approve", interaction="wall", post=posts[APPROVED])  # the other stays pending
    for sub in CHECKED_IN:
        await _ok(fans[sub], "checkin", key="c")
    for sub, text in SAID.items():
        await _ok(fans[sub], "danmaku", text=text)
    for _ in range(int(50 * UNIT)):
        view = await live.rooms.interaction(ROOM, "draw", Audience.STAFF)
        if view["entrants"] == 1:
            break
        await asyncio.sleep(0.1)
    drawn = await act("run", interaction="draw")
    await act("mute", user=live.viewer_id(MUTED), duration_s=600)
    await act("close", interaction="poll")
    await act("close", interaction="quiz")
    await act("reveal", interaction="quiz", question="q1")
    await act("lock", interaction="burger", slot="bun")
    await act("reveal", interaction="burger")
    ids = {sub: live.viewer_id(sub) for sub in FANS}
    return {"ids": ids, "winners": drawn["winners"], "question": question, "posts": posts}
