"""The contract suite, continued: one viewer's data (server/backends/viewers.py) on
every backend of tests/test_contract.py (memory, embedded, Redis, Redis Cluster):
what :meth:`Store.viewer_data` finds, and that :meth:`Store.erase_viewer` leaves no
trace of the viewer anywhere in the store (on Redis: every key SCANned and every value
read; on SQLite: every row of every table), while the others' data and the tallies
stay consistent. And presence notes keep no idempotency keys."""

import json
import sqlite3

import orjson
import pytest

from server.backends import RoomNotFound
from tests.test_contract import pair, room  # noqa: F401  (the fixture)

VIEWER = "viewer-7f3a9c"
NAME = "Alice Zhang 张"
OTHER = "viewer-0b1d2e"


async def everything(store, *, without: tuple[str, ...] = ()) -> bytes:
    """Every byte the store keeps: on Redis every key under the store's prefix and every
    value, field and member; on SQLite every row of every table but those ``without``
    names; in memory the rooms."""
    conn = getattr(store, "conn", None)
    if conn is not None:
        client, parts = conn.client, []
        async for key in client.scan_iter(match=conn.prefix + "*", count=1000):
            parts.append(key)
            kind = (await client.type(key)).decode()
            if kind == "string":
                parts.append(await client.get(key))
            elif kind == "hash":
                for field, value in (await client.hgetall(key)).items():
                    parts += [field, value]
            elif kind == "list":
                parts += await client.lrange(key, 0, -1)
            elif kind == "set":
                parts += list(await client.smembers(key))
            elif kind == "zset":
                parts += await client.zrange(key, 0, -1)
            else:
                raise AssertionError(f"a {kind} key {key!r} the test does not read")
        return b"\n".join(parts)
    path = getattr(store, "path", None)
    if path is not None:
        db = sqlite3.connect(path)
        try:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            tables = [t for t in tables if t not in without]
            cells = [c for t in tables for row in db.execute(f"SELECT * FROM {t}") for c in row]
        finally:
            db.close()
        return b"\n".join(c if isinstance(c, bytes) else str(c).encode() for c in cells)
    parts = []
    for room_id, kept in store._rooms.items():
        parts += [room_id.encode(), repr(kept.record).encode(), *kept.interactions]
        parts += [*kept.interactions.values(), *kept.replay, *map(str.encode, kept.participants)]
        parts += map(str.encode, kept.viewers)
        parts += [info for info, _ in kept.tokens.values()]
        for box, held in kept.contributions.items():
            parts += [box.encode(), *map(str.encode, held.records), *held.records.values()]
            parts += [*map(str.encode, held.done), orjson.dumps(held.counters)]
    return b"\n".join(p if isinstance(p, bytes) else p.encode() for p in parts)


def traces(blob: bytes) -> list[str]:
    """Which of the viewer's id and name (raw, or as JSON escapes them) the bytes hold."""
    found = []
    for text in (VIEWER, NAME, json.dumps(NAME)[1:-1], "Alice"):
        if text.encode() in blob:
            found.append(text)
    return found


async def seed(store):
    await store.create_room(room())
    await store.apply("r1", "poll", VIEWER, "k1", {"choice": "a"}, {"a": 1})
    await store.apply("r1", "poll", OTHER, "k1", {"choice": "a"}, {"a": 1})
    question = {"viewer_id": VIEWER, "name": NAME, "text": "when is the draw?"}
    # a record under its own id, its key naming the asker (as server/interactions/qa.py)
    await store.apply("r1", "qa/questions", "q123", f"{VIEWER}|ask1", question, {"open": 1})
    await store.apply("r1", "qa/q123", OTHER, "up1", {"up": True}, {"up": 1})
    await store.apply("r1", "~moderation", VIEWER, "mod-1", {"banned": True}, {})
    await store.apply(
        "r1", "presence", VIEWER, "p-1", {"name": NAME, "at": 1}, {"n": 1}, versioned=False
    )
    await store.apply(
        "r1", "presence", OTHER, "p-2", {"name": "Bob", "at": 1}, {"n": 1}, versioned=False
    )
    await store.remember_token("r1", "a" * 64, {"role": "viewer", "user_id": VIEWER}, 3600)
    await store.remember_token("r1", "b" * 64, {"role": "viewer", "user_id": OTHER}, 3600)
    user = {"id": VIEWER, "name": NAME, "role": "viewer"}
    other = {"id": OTHER, "name": "Bob", "role": "viewer"}
    await store.append_replay(
        "r1",
        [
            {"type": "danmaku", "id": "e1", "text": "hello", "user": user},
            {"type": "danmaku", "id": "e2", "text": "hi", "user": other},
            {"type": "danmaku", "id": "e3", "text": "666", "user": user},
        ],
        keep=100,
    )
    await store.put_interaction("r1", "draw1", {"kind": "draw", "winners": [VIEWER, OTHER]})
    await store.add_participants("r1", [VIEWER, OTHER])
    await store.add_viewers("r1", [VIEWER, OTHER])


async def test_viewer_data_finds_everything_held_about_the_viewer(pair):  # noqa: F811
    store, _, _ = pair
    await seed(store)
    data = await store.viewer_data("r1", VIEWER)
    assert data.records == {
        "poll": {VIEWER: {"choice": "a"}},
        "qa/questions": {"q123": {"viewer_id": VIEWER, "name": NAME, "text": "when is the draw?"}},
        "~moderation": {VIEWER: {"banned": True}},
        "presence": {VIEWER: {"name": NAME, "at": 1}},
    }
    assert data.keys == 3  # the vote's, the question's, the ban's; presence keeps none
    assert data.tokens == [{"role": "viewer", "user_id": VIEWER}]
    assert [e["id"] for e in data.replay] == ["e1", "e3"]
    assert data.interactions == ["draw1"]
    assert data.participant in (True, None)  # None: a HyperLogLog keeps no ids (Redis)
    # reading changed nothing
    assert (await store.viewer_data("r1", VIEWER)).records == data.records
    with pytest.raises(RoomNotFound):
        await store.viewer_data("nope", VIEWER)


async def test_erase_leaves_no_trace_and_keeps_the_rest_consistent(pair):  # noqa: F811
    store, _, _ = pair
    await seed(store)
    assert traces(await everything(store)) == [VIEWER, NAME, "Alice"]
    before = await store.room_version("r1")
    erased, version = await store.erase_viewer("r1", VIEWER)
    assert version == before + 1 == await store.room_version("r1")
    assert set(erased.records) == {"poll", "qa/questions", "~moderation", "presence"}
    assert traces(await everything(store)) == []
    # the others' data is all there, and the tallies are the sums of what is held
    assert await store.records("r1", "poll") == {OTHER: {"choice": "a"}}
    assert await store.counters("r1", "poll") == {"a": 1}
    assert await store.records("r1", "qa/questions") == {}
    assert await store.counters("r1", "qa/questions") == {}
    assert await store.counters("r1", "qa/q123") == {"up": 1}
    assert await store.records("r1", "~moderation") == {}
    assert await store.records("r1", "presence") == {OTHER: {"name": "Bob", "at": 1}}
    assert await store.counters("r1", "presence") == {"n": 1}
    assert await store.token_info("r1", "a" * 64) is None
    assert await store.token_info("r1", "b" * 64) == {"role": "viewer", "user_id": OTHER}
    assert [e["id"] for e in await store.replay("r1", 10)] == ["e2"]
    [state] = (await store.interactions("r1")).values()
    assert state["winners"][1] == OTHER and state["winners"][0].startswith("erased-")
    assert await store.participants("r1") >= 1
    assert await store.unique_viewers("r1") >= 1  # Redis: a HyperLogLog keeps no ids
    # the other viewer's retried vote is still recognised; the erased one is not
    again = await store.apply("r1", "poll", OTHER, "k1", {"choice": "a"}, {"a": 1})
    assert again.status == "duplicate"
    # nothing left: a second erasure finds nothing and leaves the version
    left, same = await store.erase_viewer("r1", VIEWER)
    assert left.empty() and same == version
    with pytest.raises(RoomNotFound):
        await store.erase_viewer("nope", VIEWER)


async def test_presence_notes_keep_no_keys_and_stay_bounded(pair):  # noqa: F811
    """1,900 joins and leaves of 1,000 viewers leave one record per viewer present and
    no idempotency key (issue 15: ``presence:done`` grew to 30,000 after 15,000 joins)."""
    store, _, _ = pair
    await store.create_room(room())
    for i in range(1000):
        viewer = f"guest-{i:05d}"
        await store.apply("r1", "presence", viewer, f"p-{i}a", {"at": i}, {"n": 1}, versioned=False)
        if i % 10:  # nine in ten leave again
            await store.apply("r1", "presence", viewer, f"p-{i}b", None, {}, versioned=False)
    assert len(await store.records("r1", "presence")) == 100
    assert await store.counters("r1", "presence") == {"n": 100}
    assert (await store.viewer_data("r1", "guest-00000")).keys == 0
    assert b"p-999" not in await everything(store)  # no note's key is kept anywhere
