"""The wall, moderation, room modes, host views and guest identities on a live node
(PROTOCOL.md, "Wall", "Moderation", "join", "danmaku")."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import UNIT, Client, LiveServer

ROOM = "stage"
REJECTED = "buy cheap followers here"


async def joined(live: LiveServer, role: str, user_id: str) -> tuple[Client, dict[str, Any]]:
    client = await live.connect()
    reply = await client.join(ROOM, token=await live.mint(ROOM, role, user_id=user_id))
    return client, reply


async def acked(client: Client, op: str, **fields: Any) -> dict[str, Any]:
    reply = await client.command(op, **fields)
    assert reply["type"] == "ack", reply
    return reply


async def refused(client: Client, op: str, code: str, **fields: Any) -> dict[str, Any]:
    reply = await client.command(op, **fields)
    assert (reply["type"], reply.get("code")) == ("error", code), reply
    return reply


async def wall_view(client: Client, until: Any, timeout: float = 5.0) -> dict[str, Any]:
    """The wall's view from the first ``state`` message that satisfies ``until``."""
    deadline = asyncio.get_running_loop().time() + timeout * UNIT
    while True:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, "no state message with the expected wall view"
        message = await client.recv(left / UNIT)
        view = message.get("interactions", {}).get("wall") if message["type"] == "state" else None
        if view is not None and until(view):
            return view


class Recorder:
    """Keeps every message a connection receives, to assert what never arrived."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.raw: list[bytes] = []
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            async for frame in self.client.ws:
                self.raw.append(frame if isinstance(frame, bytes) else frame.encode())
        except ConnectionClosed:
            pass

    def saw(self, text: str) -> bool:
        return any(text.encode() in frame for frame in self.raw)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def rest(live: LiveServer, method: str, path: str, **body: Any) -> dict[str, Any]:
    async with live.http() as http:
        r = await http.request(method, f"/api/v1/rooms/{ROOM}{path}", json=body or None)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_pre_moderated_post_reaches_the_wall_only_after_approval(live):
    """A post waits in the queue that only hosts see; approved, it reaches every viewer
    and screen; a rejected post never leaves the server."""
    await live.create_room(ROOM)
    host, host_joined = await joined(live, "host", "host")
    assert host_joined["snapshot"]["interactions"]["wall"]["queue"] == []
    screen, screen_joined = await joined(live, "screen", "wall-screen")
    assert "queue" not in screen_joined["snapshot"]["interactions"]["wall"]
    watcher = Recorder(screen)
    viewer, _ = await joined(live, "viewer", "fan")

    good = await acked(viewer, "post", key="p1", text="Love this launch!")
    bad = await acked(viewer, "post", key="p2", text=REJECTED)
    assert (good["status"], good["duplicate"]) == ("pending", False)
    retry = await acked(viewer, "post", key="p1", text="Love this launch!")
    assert (retry["duplicate"], retry["post"]) == (True, good["post"])  # one post per key

    queued = await wall_view(host, lambda v: len(v["queue"]) == 2)
    assert [p["text"] for p in queued["queue"]] == ["Love this launch!", REJECTED]
    assert queued["posts"] == [] and queued["pending"] == 2
    assert {p["viewer_id"] for p in queued["queue"]} == {live.viewer_id("fan")}

    await acked(host, "host", action="reject", interaction="wall", post=bad["post"])
    await acked(host, "host", action="approve", interaction="wall", post=good["post"])
    shown = await wall_view(viewer, lambda v: v["count"] == 1)
    assert [p["text"] for p in shown["posts"]] == ["Love this launch!"]
    assert "queue" not in shown and "viewer_id" not in shown["posts"][0]
    host_view = await wall_view(host, lambda v: v["count"] == 1)
    assert (host_view["pending"], host_view["rejected"], host_view["queue"]) == (0, 1, [])

    _, late_joined = await joined(live, "viewer", "late")
    assert [p["text"] for p in late_joined["snapshot"]["interactions"]["wall"]["posts"]] == [
        "Love this launch!"
    ]
    await asyncio.sleep(0.5 * UNIT)  # a state flush after the last change
    await watcher.stop()
    assert watcher.saw("Love this launch!")
    assert not watcher.saw(REJECTED), "a rejected post reached a screen"
    async with live.http(await live.mint(ROOM, "viewer")) as http:
        public = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/wall")).json()
    assert REJECTED not in str(public)


async def test_post_moderation_pins_and_takes_posts_off(live):
    await live.create_room(ROOM, wall_moderation="post")
    host, _ = await joined(live, "host", "host")
    viewer, _ = await joined(live, "viewer", "fan")
    first = await acked(viewer, "post", key="a", text="first")
    assert first["status"] == "approved"
    second = await acked(viewer, "post", key="b", text="second")
    view = await wall_view(viewer, lambda v: v["count"] == 2)
    assert [p["text"] for p in view["posts"]] == ["second", "first"]  # newest first
    await acked(host, "host", action="pin", interaction="wall", post=first["post"])
    view = await wall_view(viewer, lambda v: v["posts"][0]["pinned_at"] is not None)
    assert [p["text"] for p in view["posts"]] == ["first", "second"]  # pinned first
    await acked(host, "host", action="reject", interaction="wall", post=second["post"])
    view = await wall_view(viewer, lambda v: v["count"] == 1)
    assert [p["text"] for p in view["posts"]] == ["first"]
    reply = await host.command("host", action="pin", interaction="wall", post=second["post"])
    assert (reply["code"], reply["phase"]) == ("illegal_transition", "rejected"), reply
    await acked(host, "host", action="close", interaction="wall")
    await refused(viewer, "post", "not_open", key="c", text="late")


async def test_retract_removes_a_danmaku_everywhere(live):
    await live.create_room(ROOM)
    moderator, _ = await joined(live, "moderator", "mod")
    viewer, _ = await joined(live, "viewer", "fan")
    sent = await acked(viewer, "danmaku", text="spoiler!")
    kept = await acked(viewer, "danmaku", text="nice")
    ack = await acked(moderator, "host", action="retract", event=sent["event"])
    assert ack["event"] == sent["event"]
    while True:
        message = await viewer.recv_type("batch")
        retracts = [e for e in message["events"] if e["type"] == "retract"]
        if retracts:
            assert retracts[0]["id"] == sent["event"] and type(retracts[0]["ts"]) is int
            break
    _, late = await joined(live, "viewer", "late")
    assert [e["id"] for e in late["snapshot"]["recent"]] == [kept["event"]]


async def test_mute_refuses_text_but_not_votes_and_ends(live):
    await live.create_room(ROOM)
    async with live.http() as http:
        body = {"kind": "qa", "spec": {"id": "qa", "title": "Ask"}}
        assert (await http.post(f"/api/v1/rooms/{ROOM}/interactions", json=body)).is_success
        opened = await http.post(
            f"/api/v1/rooms/{ROOM}/interactions/qa/actions", json={"action": "open"}
        )
        assert opened.is_success
    host, _ = await joined(live, "host", "host")
    viewer, _ = await joined(live, "viewer", "loud")
    loud = live.viewer_id("loud")  # its pseudonym, the id the wire shows
    muted = await acked(host, "host", action="mute", user=loud, duration_s=60)
    assert muted["muted_until"] > time.time() * 1000
    reply = await refused(viewer, "danmaku", "muted", text="hey")
    assert 50_000 < reply["retry_after_ms"] <= 60_000
    await refused(viewer, "post", "muted", key="p", text="hey")
    await refused(viewer, "ask", "muted", interaction="qa", key="q", text="hey?")
    await acked(viewer, "checkin", key="c")  # state-changing commands still work
    listed = await rest(live, "GET", "/moderation")
    assert [m["user"] for m in listed["muted"]] == [loud]
    await acked(host, "host", action="unmute", user=loud)
    await acked(viewer, "danmaku", text="hey")
    assert (await rest(live, "GET", "/moderation")) == {"muted": [], "banned": []}


async def test_ban_closes_and_refuses_until_unbanned(live):
    await live.create_room(ROOM)
    host, _ = await joined(live, "host", "host")
    token = await live.mint(ROOM, "viewer", user_id="troll")
    troll = await live.connect()
    await troll.join(ROOM, token=token)
    await rest(live, "POST", "/moderation", action="ban", user=live.viewer_id("troll"))
    with pytest.raises(ConnectionClosed):
        while True:
            await troll.recv()
    assert troll.ws.close_code == 4003
    again = await live.connect()
    await refused(again, "join", "banned", room=ROOM, token=token)
    await acked(host, "host", action="unban", user=live.viewer_id("troll"))
    back = await live.connect()
    await back.join(ROOM, token=token)


async def test_a_moderator_cannot_ban_or_mute_the_host_out(live):
    await live.create_room(ROOM)
    host, _ = await joined(live, "host", "boss")
    moderator, _ = await joined(live, "moderator", "mod")
    await acked(moderator, "host", action="ban", user="boss")
    await acked(moderator, "host", action="mute", user="boss", duration_s=600)
    await acked(host, "danmaku", text="still here")  # not closed, not muted
    again, _ = await joined(live, "host", "boss")  # and may join again
    await acked(again, "host", action="unban", user="boss")
    await acked(host, "host", action="ban", user="mod")
    await acked(moderator, "danmaku", text="me too")
    # A viewer token for the same id is another user, its pseudonym (PROTOCOL.md,
    # "Privacy"); banned by that id, it is refused: the record is the user's.
    token = await live.mint(ROOM, "viewer", user_id="mod")
    viewer = await live.connect()
    await viewer.join(ROOM, token=token)
    await acked(host, "host", action="ban", user=live.viewer_id("mod"))
    again = await live.connect()
    await refused(again, "join", "banned", room=ROOM, token=token)


async def test_room_modes_shape_who_sends_danmaku(live):
    await live.create_room(ROOM, mode="staff")
    host, _ = await joined(live, "host", "host")
    viewer, _ = await joined(live, "viewer", "fan")
    await refused(viewer, "danmaku", "danmaku_paused", text="hi")
    await acked(host, "danmaku", text="welcome")
    async with live.http() as http:
        r = await http.patch(
            f"/api/v1/rooms/{ROOM}", json={"settings": {"mode": "slow", "slow_mode_s": 30}}
        )
        assert r.is_success, r.text
    await viewer.recv_type("snapshot")
    await acked(viewer, "danmaku", text="first")
    reply = await refused(viewer, "danmaku", "slow_mode", text="second")
    assert 25_000 < reply["retry_after_ms"] <= 30_000
    await acked(host, "danmaku", text="staff are never slowed")
    await acked(host, "danmaku", text="staff are never slowed, twice")


async def open_poll(live: LiveServer, also: dict[str, dict[str, Any]] | None = None) -> None:
    """Poll ``p`` (options ``a`` and ``b``), open, and the interactions in ``also`` (kind:
    spec) as created."""
    poll = {
        "id": "p",
        "question": "?",
        "kind": "single",
        "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}],
    }
    async with live.http() as http:
        for kind, spec in {"poll": poll, **(also or {})}.items():
            r = await http.post(
                f"/api/v1/rooms/{ROOM}/interactions", json={"kind": kind, "spec": spec}
            )
            assert r.is_success, r.text
        r = await http.post(f"/api/v1/rooms/{ROOM}/interactions/p/actions", json={"action": "open"})
        assert r.is_success, r.text


async def test_a_guest_keeps_its_identity_with_its_token(live):
    """An anonymous viewer gets a token in `joined`; joining again with it is the same
    viewer, so a retried vote with the same key counts once."""
    await live.create_room(ROOM)
    await open_poll(live)
    first = await live.connect()
    hello = await first.join(ROOM, name="小明")
    assert hello["you"]["id"].startswith("guest-") and isinstance(hello["token"], str)
    await acked(first, "vote", interaction="p", key="v1", option="a")
    await first.close()
    second = await live.connect()
    again = await second.join(ROOM, token=hello["token"])
    assert again["you"] == hello["you"] and "token" not in again
    retry = await acked(second, "vote", interaction="p", key="v1", option="a")
    assert retry["duplicate"] is True
    async with live.http() as http:
        view = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/p")).json()
    assert view["results"]["voters"] == 1


async def test_a_renamed_guest_is_the_same_guest(live):
    """A guest that joins again with its token and a new name keeps its id: its second
    ballot replaces the first (1 voter, not 2), and its check-in and draw entry stay."""
    await live.create_room(ROOM)
    await open_poll(live, also={"draw": {"id": "d", "title": "Prize"}})
    first = await live.connect()
    hello = await first.join(ROOM, name="小明")
    await acked(first, "vote", interaction="p", key="v1", option="a")
    await acked(first, "checkin", key="c1")
    await acked(first, "enter", interaction="d", key="e1")
    await first.close()

    second = await live.connect()
    renamed = await second.join(ROOM, token=hello["token"], name="Xiaoming")
    assert renamed["you"] == {**hello["you"], "name": "Xiaoming"}
    assert isinstance(renamed["token"], str) and renamed["token"] != hello["token"]
    await acked(second, "vote", interaction="p", key="v2", option="b")
    assert (await acked(second, "checkin", key="c2"))["already"] is True
    await refused(second, "enter", "already_done", interaction="d", key="e2")
    await acked(second, "danmaku", text="hi")
    await second.close()

    # The new token carries the new name; the old one still works, under its own name.
    third = await live.connect()
    assert (await third.join(ROOM, token=renamed["token"]))["you"]["name"] == "Xiaoming"
    async with live.http() as http:
        poll = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/p")).json()
        draw = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/d")).json()
    assert poll["results"]["voters"] == 1
    assert [o["count"] for o in poll["results"]["options"]] == [0, 1]
    assert draw["entrants"] == 1


async def test_a_name_in_join_never_renames_a_minted_token(live):
    """Only the server's guest tokens take a name from join: an integrator's viewer,
    even one whose id looks like a guest's, keeps the name its token was given."""
    await live.create_room(ROOM)
    for user_id in ("u-7", "guest-0123456789"):
        client = await live.connect()
        token = await live.mint(ROOM, "viewer", user_id=user_id)
        joined = await client.join(ROOM, token=token, name="Someone else")
        assert joined["you"]["id"] == live.viewer_id(user_id)  # its pseudonym
        assert joined["you"]["name"] != "Someone else"
        assert "token" not in joined
        await client.close()


async def test_a_retried_question_is_asked_once(live):
    await live.create_room(ROOM)
    async with live.http() as http:
        await http.post(
            f"/api/v1/rooms/{ROOM}/interactions",
            json={"kind": "qa", "spec": {"id": "qa", "title": "Ask"}},
        )
        await http.post(f"/api/v1/rooms/{ROOM}/interactions/qa/actions", json={"action": "open"})
    viewer, _ = await joined(live, "viewer", "curious")
    first = await acked(viewer, "ask", interaction="qa", key="k1", text="When?")
    again = await acked(viewer, "ask", interaction="qa", key="k1", text="When?")
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert again["version"] == first["version"]
    async with live.http() as http:
        view = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/qa")).json()
    assert [q["text"] for q in view["questions"]] == ["When?"]


async def test_stats_count_the_last_minute(live):
    await live.create_room(ROOM)
    a, _ = await joined(live, "viewer", "a")
    b, _ = await joined(live, "viewer", "b")
    await joined(live, "viewer", "lurker")
    await joined(live, "host", "host")  # the console and the screens are not viewers
    await joined(live, "screen", "wall")
    for text in ("1", "2", "3"):
        await acked(a, "danmaku", text=text)
    await acked(b, "checkin", key="c")
    await acked(b, "post", key="p", text="hi")
    stats = await rest(live, "GET", "/stats")
    assert stats == {
        "room": ROOM,
        "online": 3,
        "unique_viewers": 3,  # a, b and the lurker; staff and screens are not viewers
        "participants": 2,
        "danmaku_per_min": 3,
        "votes_per_min": 1,
        "posts_per_min": 1,
        "reactions_per_min": 0,
        "degrade": 0,
        "degrade_name": "normal",
    }
