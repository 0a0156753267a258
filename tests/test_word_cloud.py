"""A word cloud keeps several answers per viewer (issue 13, item 3; PROTOCOL.md, "Viewer
commands", `vote`): each answer adds to the cloud, a repeat changes nothing, one past
`max_answers` (default 3) is refused, and a retry stays a duplicate."""

from __future__ import annotations

from typing import Any

from tests.conftest import Client, LiveServer

ROOM = "cloud"


async def answer(viewer: Client, text: str, key: str) -> dict[str, Any]:
    return await viewer.command("vote", interaction="w", text=text, key=key)


async def cloud(live: LiveServer) -> dict[str, Any]:
    async with live.http() as http:
        view = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/w")).json()
    results: dict[str, Any] = view["results"]
    return results


def terms(results: dict[str, Any]) -> dict[str, int]:
    return {t["term"]: t["count"] for t in results["terms"]}


async def open_cloud(live: LiveServer, **spec: Any) -> Client:
    await live.create_room(ROOM)
    host = await live.connect()
    await host.join(ROOM, token=await live.mint(ROOM, "host"))
    spec = {"id": "w", "question": "One word for the launch?", "kind": "text", **spec}
    for op, fields in (("create", {"kind": "poll", "spec": spec}), ("open", {"interaction": "w"})):
        reply = await host.command("host", action=op, **fields)
        assert reply["type"] == "ack", reply
    return host


async def test_each_viewer_adds_up_to_three_answers_and_none_replaces_another(live: LiveServer):
    await open_cloud(live)
    ann, bob = await live.connect(), await live.connect()
    for viewer, user_id in ((ann, "ann"), (bob, "bob")):
        await viewer.join(ROOM, token=await live.mint(ROOM, "viewer", user_id=user_id))
    for text, key in (("番茄酱", "a1"), ("cheese", "a2"), ("lettuce", "a3")):
        assert (await answer(ann, text, key))["type"] == "ack"
    assert (await answer(bob, "番茄酱", "b1"))["type"] == "ack"
    # Before: ann's later answers replaced "番茄酱", which bob alone then held.
    want = {"番茄酱": 2, "cheese": 1, "lettuce": 1}
    results = await cloud(live)
    assert terms(results) == want
    assert results["voters"] == 2  # viewers, not answers

    # The same answer again is the one already sent; a retry is a duplicate.
    again = await answer(ann, "cheese", "a4")
    assert again["type"] == "ack" and not again["duplicate"], again
    retry = await answer(ann, "lettuce", "a3")
    assert retry["type"] == "ack" and retry["duplicate"], retry
    # A fourth new answer is refused with the limit, and changes nothing.
    refused = await answer(ann, "onion", "a5")
    assert refused["type"] == "error" and refused["code"] == "already_done", refused
    assert refused["limit"] == 3, refused
    assert terms(await cloud(live)) == want

    async with live.http() as http:
        rows = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/w/export")).json()["rows"]
    ann_id, bob_id = live.viewer_id("ann"), live.viewer_id("bob")  # pseudonyms
    assert sorted((row["viewer"], row["choice"]) for row in rows) == sorted(
        [(ann_id, "cheese"), (ann_id, "lettuce"), (ann_id, "番茄酱"), (bob_id, "番茄酱")]
    )


async def test_a_draw_among_a_word_cloud_s_voters_counts_each_viewer_once(live: LiveServer):
    host = await open_cloud(live)
    ann = await live.connect()
    await ann.join(ROOM, token=await live.mint(ROOM, "viewer", user_id="ann"))
    for text, key in (("one", "1"), ("two", "2"), ("three", "3")):
        assert (await answer(ann, text, key))["type"] == "ack"
    draw = {"id": "d", "title": "Voters", "winners": 3, "source": "poll", "poll_id": "w"}
    for op, fields in (("create", {"kind": "draw", "spec": draw}), ("run", {"interaction": "d"})):
        reply = await host.command("host", action=op, **fields)
        assert reply["type"] == "ack", reply
    async with live.http() as http:
        audit = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/d/audit")).json()
    assert audit["entrants"] == [live.viewer_id("ann")], audit


async def test_with_one_answer_each_the_next_answer_replaces_it(live: LiveServer):
    await open_cloud(live, max_answers=1)
    ann = await live.connect()
    await ann.join(ROOM, token=await live.mint(ROOM, "viewer", user_id="ann"))
    for text, key in (("first", "1"), ("second", "2")):
        assert (await answer(ann, text, key))["type"] == "ack"
    assert terms(await cloud(live)) == {"second": 1}


async def test_max_answers_out_of_range_is_refused_with_the_field(live: LiveServer):
    await live.create_room(ROOM)
    host = await live.connect()
    await host.join(ROOM, token=await live.mint(ROOM, "host"))
    spec = {"id": "w", "question": "?", "kind": "text", "max_answers": 11}
    reply = await host.command("host", action="create", kind="poll", spec=spec)
    assert reply["type"] == "error" and reply["code"] == "invalid_field", reply
    assert "max_answers" in reply["message"], reply
