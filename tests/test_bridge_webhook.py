"""The generic webhook bridge (server/bridges/webhook.py): signed HTTP posts become a room's
danmaku, seen by a viewer over a real socket; a bad signature, an old timestamp or a
malformed body changes nothing; a repeated id is dropped. Also the runner's cursor, kept
in the store and resumed (server/bridges/runner.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import orjson
import pytest

from server.bridges import webhook
from server.bridges.base import Adapter, ChatMessage, Event
from server.bridges.runner import BRIDGES_BOX, CURSORS_BOX
from tests.conftest import UNIT, Client, LiveServer, running_server

ROOM = "shop"
SECRET = "a shared secret of the shop's chat"
PATH = f"/api/v1/rooms/{ROOM}/bridges/webhook/shopchat"


def signed(
    body: dict[str, Any], *, secret: str = SECRET, at: float | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = orjson.dumps(body)
    ts = str(int(time.time() if at is None else at))
    headers = {
        "X-Hudong-Timestamp": ts,
        "X-Hudong-Signature": webhook.signature(secret, ts, raw),
        "Content-Type": "application/json",
    }
    return raw, headers


async def post(live: LiveServer, raw: bytes, headers: dict[str, str], path: str = PATH) -> Any:
    async with live.http(None) as http:
        return await http.post(path, content=raw, headers=headers)


async def texts(viewer: Client, want: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout * UNIT
    while len(got) < want:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"only these arrived: {got}"
        message = await viewer.recv(left / UNIT)
        if message["type"] == "batch":
            got.extend(e for e in message["events"] if e["type"] == "danmaku")
    return got


def test_the_signature_covers_the_timestamp_and_the_body():
    raw = b'{"sender":"u1","text":"hi"}'
    good = webhook.signature(SECRET, "1000", raw)
    webhook.verify(SECRET, "1000", good, raw, 1000.0, 300)
    for secret, ts, sig, body, now in (
        ("other secret", "1000", good, raw, 1000.0),
        (SECRET, "1001", good, raw, 1001.0),  # another timestamp
        (SECRET, "1000", good, raw + b" ", 1000.0),  # another body
        (SECRET, "1000", good, raw, 1301.0),  # too old
        (SECRET, "1000", None, raw, 1000.0),
        ("", "1000", webhook.signature("", "1000", raw), raw, 1000.0),  # no secret set
    ):
        with pytest.raises(webhook.Refused) as caught:
            webhook.verify(secret, ts, sig, body, now, 300)
        assert caught.value.status == 401


def test_bodies_are_checked():
    assert webhook.parse_body(b'{"sender":"u","text":"hi","id":"1"}', 100) == ChatMessage(
        "u", "hi", None, "1"
    )
    for bad in (
        b"[]",
        b"{",
        b'{"text":"hi"}',
        b'{"sender":"u","text":""}',
        b'{"sender":1,"text":"x"}',
        b'{"sender":"u","text":"x","extra":1}',
        b'{"sender":"u","text":"' + b"x" * 101 + b'"}',
    ):
        with pytest.raises(webhook.Refused) as caught:
            webhook.parse_body(bad, 100)
        assert caught.value.status == 400


async def test_signed_posts_become_danmaku_and_nothing_else_does():
    async with running_server(bridges={"webhook": {"secret": SECRET}}) as live:
        await live.create_room(ROOM)
        viewer = await live.connect()
        await viewer.join(ROOM)
        async with live.http() as http:
            r = await http.post(
                f"/api/v1/rooms/{ROOM}/bridges", json={"platform": "webhook", "channel": "shopchat"}
            )
            assert r.status_code == 201, r.text
        # Refused, each changing nothing:
        raw, headers = signed({"sender": "u1", "text": "forged", "id": "f"}, secret="wrong")
        assert (await post(live, raw, headers)).status_code == 401
        raw, headers = signed({"sender": "u1", "text": "replayed", "id": "r"}, at=time.time() - 900)
        assert (await post(live, raw, headers)).status_code == 401
        raw, headers = signed({"sender": "u1", "text": "tampered", "id": "t"})
        assert (await post(live, raw.replace(b"tampered", b"tampereD"), headers)).status_code == 401
        raw, headers = signed({"sender": "u1", "text": ""})
        assert (await post(live, raw, headers)).status_code == 400
        raw, headers = signed({"sender": "u1", "text": "nowhere"})
        other = f"/api/v1/rooms/{ROOM}/bridges/webhook/otherchat"
        assert (await post(live, raw, headers, other)).status_code == 404
        # Accepted, in order, a repeated id once:
        for body in (
            {"sender": "u1", "name": "Ann", "text": "hello", "id": "m1"},
            {"sender": "u2", "text": "second", "id": "m2"},
            {"sender": "u1", "name": "Ann", "text": "hello", "id": "m1"},
            {"sender": "u3", "text": "third", "id": "m3"},
        ):
            raw, headers = signed(body)
            r = await post(live, raw, headers)
            assert r.status_code == 202, r.text
        got = await texts(viewer, 3)
        assert [e["text"] for e in got] == ["hello", "second", "third"]
        assert got[0]["user"] == {
            "id": live.viewer_id("webhook:u1"),
            "name": "Ann",
            "role": "viewer",
        }
        assert (
            live.metric("hudong_bridged_messages_total", platform="webhook", result="duplicate")
            == 1
        )
        assert live.metric("hudong_bridged_messages_total", platform="webhook", result="ok") == 3


class CursorAdapter(Adapter):
    """A platform with a cursor: message n's cursor is n; it starts after the one given."""

    platform: ClassVar[str] = "cursored"
    said: ClassVar[list[str]] = ["one", "two", "three", "four"]
    upto: ClassVar[int] = 2  # how many it has said so far

    async def events(self, cursor: str | None) -> AsyncIterator[Event]:
        start = int(cursor) if cursor else 0
        for n in range(start, type(self).upto):
            yield ChatMessage(f"s{n}", self.said[n], id=f"c{n}", cursor=str(n + 1))
        await asyncio.Event().wait()


async def test_the_cursor_is_kept_in_the_store_and_a_restarted_bridge_resumes_after_it():
    async with running_server() as live:
        await live.create_room(ROOM)
        bridges = live.app.state.bridges
        bridges.platforms["cursored"] = CursorAdapter
        viewer = await live.connect()
        await viewer.join(ROOM)
        await bridges.add(ROOM, "cursored", "chan", "admin")
        assert [e["text"] for e in await texts(viewer, 2)] == ["one", "two"]
        await bridges.stop()  # as when the node stops: the cursor is written
        held = await live.app.state.rooms.store.records(ROOM, CURSORS_BOX)
        assert held["cursored:chan"] == {"cursor": "2", "seen": ["c0", "c1"]}
        assert (
            "cursor"
            not in (await live.app.state.rooms.store.records(ROOM, BRIDGES_BOX))["cursored:chan"]
        )
        CursorAdapter.upto = 4
        await bridges.start()  # as when the node starts again
        assert [e["text"] for e in await texts(viewer, 2)] == ["three", "four"]
        await bridges.stop()


async def test_a_bridge_removed_while_its_cursor_is_written_stays_removed(monkeypatch):
    """The host's removal (here, or on another node) lands while the bridge's run writes its
    cursor, after anything the run read: the bridge stays removed, and its run stops."""
    async with running_server() as live:
        await live.create_room(ROOM)
        bridges = live.app.state.bridges
        store = bridges.store
        bridges.platforms["cursored"] = CursorAdapter
        CursorAdapter.upto = 2
        viewer = await live.connect()
        await viewer.join(ROOM)
        await bridges.add(ROOM, "cursored", "chan", "admin")
        assert [e["text"] for e in await texts(viewer, 2)] == ["one", "two"]
        run = bridges.runs[(ROOM, "cursored:chan")]
        apply, records = store.apply, store.records
        landed = []

        async def removal() -> None:
            if not landed:
                landed.append(True)
                await apply(ROOM, BRIDGES_BOX, "cursored:chan", "rm", None, {}, versioned=False)

        async def read_then_removal(room_id: str, box: str) -> Any:
            held = await records(room_id, box)
            await removal()
            return held

        async def removal_then_write(*args: Any, **kwargs: Any) -> Any:
            await removal()
            return await apply(*args, **kwargs)

        monkeypatch.setattr(store, "records", read_then_removal)
        monkeypatch.setattr(store, "apply", removal_then_write)
        run.cursor = "2"
        run._dirty = True
        await run.save_cursor(force=True)
        monkeypatch.undo()
        assert landed
        assert await store.records(ROOM, BRIDGES_BOX) == {}
        assert bridges.failover is not None
        await bridges.failover.tend(ROOM)  # the lease loop's next round
        assert (ROOM, "cursored:chan") not in bridges.runs
        assert (await bridges.listing(ROOM))["bridges"] == []
        # the cursor the run wrote after the removal went with it
        assert await store.records(ROOM, CURSORS_BOX) == {}
