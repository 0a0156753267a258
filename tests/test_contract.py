"""One contract suite for every Store and Broker implementation (memory, Redis,
Redis Cluster). The guarantees tested are the ones server/backends/base.py states."""

import asyncio
import itertools
import random
import re
import time
import uuid
from collections import Counter

import pytest

from server.backends import (
    BackendUnavailable,
    BoxData,
    RoomExists,
    RoomNotFound,
    RoomRecord,
    open_backends,
)
from server.backends.memory import MemoryBroker, MemoryBrokerClient
from server.backends.retention import Cutoffs, Retention
from tests.conftest import UNIT
from tests.redis_fixtures import redis_server

BACKENDS = ["memory", "embedded", "redis", "cluster"]


@pytest.fixture(params=BACKENDS)
async def pair(request):
    """Two nodes' views of one shared backend: (store, broker_a, broker_b)."""
    kind = request.param
    if kind == "memory":
        from server.backends.memory import MemoryStore

        shared = MemoryBroker()
        store = MemoryStore()
        yield store, shared.connect(), shared.connect()
        return
    if kind == "embedded":
        from server.backends.embedded import EmbeddedStore

        shared = MemoryBroker()
        store = EmbeddedStore(request.getfixturevalue("tmp_path") / "hudong.db")
        try:
            yield store, shared.connect(), shared.connect()
        finally:
            await store.close()
        return
    url = (
        request.getfixturevalue("shared_redis").url
        if kind == "redis"
        else (request.getfixturevalue("shared_cluster"))
    )
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    a = open_backends(url, prefix=prefix)
    b = open_backends(url, prefix=prefix)
    try:
        yield a.store, a.broker, b.broker
    finally:
        for backends in (a, b):
            await backends.broker.close()
            await backends.store.close()


def room(room_id="r1", **settings):
    return RoomRecord(room_id, f"Room {room_id}", time.time(), 1, settings)


async def room_keys(store, room_id):
    """Every Redis key of a room (SCAN for its hash tag); None for the memory store."""
    conn = getattr(store, "conn", None)
    if conn is None:
        return None
    pattern = conn.key(room_id, "*")
    return {k.decode() async for k in conn.client.scan_iter(match=pattern, count=1000)}


# The stored key layout of a room (server/backends/redis.py): what a live room may hold.
ROOM_KEY = re.compile(
    r"[^{]*\{[^}]*\}:(room|version|interactions|tokens|token_expiry|presence|stats|participants|viewers"
    r"|replay|audit|ids"
    r"|i:.+:(rec|cnt|done))"
)


async def test_audit_log_is_kept_bounded_and_goes_with_its_room(pair):
    store, _, _ = pair
    await store.create_room(room())
    assert await store.audit_log("r1") == []
    await store.append_audit("r1", [{"id": f"e{i}", "action": "open"} for i in range(5)], keep=4)
    await store.append_audit("r1", [{"id": "e5", "action": "close"}], keep=4)
    await store.append_audit("r1", [], keep=4)
    assert [e["id"] for e in await store.audit_log("r1")] == ["e2", "e3", "e4", "e5"]
    assert (await store.audit_log("r1"))[-1] == {"id": "e5", "action": "close"}
    version = await store.room_version("r1")
    with pytest.raises(RoomNotFound):
        await store.append_audit("nope", [{"id": "x"}], keep=4)
    with pytest.raises(RoomNotFound):
        await store.audit_log("nope")
    assert await store.room_version("r1") == version  # not room state: no version step
    assert await room_keys(store, "nope") in (None, set())
    await store.delete_room("r1")
    assert await room_keys(store, "r1") in (None, set())
    await store.create_room(room())  # a new room of the same id starts with no log
    assert await store.audit_log("r1") == []


async def test_a_user_s_id_can_be_taken_out_of_the_audit_log(pair):
    store, _, _ = pair
    await store.create_room(room())
    ann = "ann.ä%1"  # Lua pattern and JSON characters, and a non-ASCII one
    entries = [
        {"id": "e0", "actor": {"id": ann, "role": "host"}, "target": {"user": "bob"}},
        {"id": "e1", "target": {"user": ann}, "detail": {"winners": ["bob", ann]}},
        {"id": "e2", "target": {"user": f"x{ann}"}, "detail": {ann: f"{ann} said hi"}},
        {"id": "e3", "target": {"user": "bob"}},
    ]
    await store.append_audit("r1", entries, keep=10)
    assert await store.redact_audit("r1", ann, "(erased)") == 2
    log = await store.audit_log("r1")
    assert [e["id"] for e in log] == ["e0", "e1", "e2", "e3"]
    assert log[0]["actor"] == {"id": "(erased)", "role": "host"}
    assert log[1]["target"] == {"user": "(erased)"}
    assert log[1]["detail"] == {"winners": ["bob", "(erased)"]}
    assert log[2:] == entries[2:]  # a longer id, a key, a text: not the user's id
    assert await store.redact_audit("r1", ann, "(erased)") == 0
    await store.append_audit("r1", [{"id": "e4"}], keep=10)  # appends go on after it
    assert [e["id"] for e in await store.audit_log("r1")][-2:] == ["e3", "e4"]
    with pytest.raises(RoomNotFound):
        await store.redact_audit("nope", ann, "(erased)")


async def test_rooms_crud_and_versions(pair):
    store, _, _ = pair
    created = await store.create_room(room("r1", allow_anonymous=False))
    with pytest.raises(RoomExists):
        await store.create_room(room("r1"))
    got = await store.get_room("r1")
    assert (got.id, got.title, got.version, got.settings) == (
        "r1",
        "Room r1",
        1,
        {"allow_anonymous": False},
    )
    assert abs(got.created_at - created.created_at) < 1e-6
    updated = await store.update_room("r1", title="New", settings={"allow_anonymous": True})
    assert (updated.title, updated.version, updated.settings) == (
        "New",
        2,
        {"allow_anonymous": True},
    )
    assert await store.room_version("r1") == 2
    await store.create_room(room("r2"))
    assert [r.id for r in await store.list_rooms()] == ["r1", "r2"]
    await store.delete_room("r1")
    with pytest.raises(RoomNotFound):
        await store.get_room("r1")
    with pytest.raises(RoomNotFound):
        await store.delete_room("r1")
    with pytest.raises(RoomNotFound):
        await store.update_room("r1", title="x")
    assert [r.id for r in await store.list_rooms()] == ["r2"]


async def test_rooms_are_counted_and_token_records_bounded(pair):
    store, _, _ = pair
    assert await store.room_count() == 0
    await store.create_room(room("r1"))
    await store.create_room(room("r2"))
    assert await store.room_count() == 2
    # Past ``keep``, the records that expire first are forgotten; expired ones always.
    await store.remember_token("r1", "gone", {"n": -1}, -5)
    for i, ttl in enumerate((300, 100, 400, 200)):
        await store.remember_token("r1", f"t{i}", {"n": i}, ttl, keep=3)
    kept = {h: await store.token_info("r1", h) for h in ("gone", "t0", "t1", "t2", "t3")}
    assert kept == {"gone": None, "t0": {"n": 0}, "t1": None, "t2": {"n": 2}, "t3": {"n": 3}}
    assert await store.token_info("r2", "t0") is None  # per room
    await store.delete_room("r1")
    assert await store.room_count() == 1


async def test_apply_replaces_contributions_and_is_idempotent(pair):
    store, _, _ = pair
    await store.create_room(room())
    r = await store.apply("r1", "poll1", "v1", "k1", {"choice": "a"}, {"a": 1})
    assert (r.status, r.counters) == ("applied", {"a": 1})
    first_version = r.version
    again = await store.apply("r1", "poll1", "v1", "k1", {"choice": "a"}, {"a": 1})
    assert (again.status, again.version, again.counters) == ("duplicate", first_version, {"a": 1})
    changed = await store.apply("r1", "poll1", "v1", "k2", {"choice": "b"}, {"b": 1})
    assert changed.status == "applied" and changed.version == first_version + 1
    assert changed.counters == {"b": 1}  # a counter at 0 disappears
    await store.apply("r1", "poll1", "v2", "k1", {"choice": "b"}, {"b": 1})
    assert (await store.counters("r1", "poll1")).get("b") == 2
    assert await store.records("r1", "poll1") == {"v1": {"choice": "b"}, "v2": {"choice": "b"}}
    assert await store.room_version("r1") == changed.version + 1


async def test_once_and_withdraw(pair):
    store, _, _ = pair
    await store.create_room(room())
    first = await store.apply("r1", "qa/q1", "v1", "k1", {"up": True}, {"q:q1": 1}, once=True)
    assert first.status == "applied"
    second = await store.apply("r1", "qa/q1", "v1", "k2", {"up": True}, {"q:q1": 1}, once=True)
    assert (second.status, second.counters) == ("already_done", {"q:q1": 1})
    assert (await store.apply("r1", "qa/q1", "v1", "k1", {}, {}, once=True)).status == ("duplicate")
    gone = await store.apply("r1", "qa/q1", "v1", "k3", None, {})
    assert (gone.status, gone.counters) == ("applied", {})
    assert await store.records("r1", "qa/q1") == {}


async def test_store_matches_the_reference_tally(pair):
    """The store applies contributions exactly as server.interactions.base.Tally does."""
    from server.interactions.base import Contribution, Tally

    store, _, _ = pair
    await store.create_room(room())
    tally = Tally()
    steps = [
        ("v1", "a", {"o:a": 1}, False),
        ("v2", "a", {"o:b": 1}, False),
        ("v1", "a", {"o:a": 1}, False),
        ("v1", "b", {"o:b": 1, "n": 1}, False),
        ("v3", "a", {"o:c": 2}, True),
        ("v3", "b", {"o:a": 1}, True),
        ("v2", "c", {"o:c": 1}, False),
    ]
    caps = {"o:c": 2}
    for viewer, key, deltas, once in steps:
        mine = await store.apply("r1", "p", viewer, key, {"d": deltas}, deltas, caps, once)
        ref = tally.apply(viewer, Contribution({"d": deltas}, deltas, once=once), key, caps)
        assert (mine.status, mine.counters, mine.capped_field) == (
            ref.status,
            dict(ref.counters),
            ref.capped_field,
        ), (viewer, key)


async def test_caps_refuse_without_changing_anything(pair):
    store, _, _ = pair
    await store.create_room(room())
    caps = {"sauce:bbq": 2}
    for viewer in ("v1", "v2"):
        r = await store.apply("r1", "cd", viewer, "k", {}, {"sauce:bbq": 1}, caps)
        assert r.status == "applied"
    before = await store.room_version("r1")
    capped = await store.apply("r1", "cd", "v3", "k", {}, {"sauce:bbq": 1}, caps)
    assert (capped.status, capped.capped_field) == ("capped", "sauce:bbq")
    assert await store.room_version("r1") == before
    assert await store.records("r1", "cd") == {"v1": {}, "v2": {}}
    # a viewer moving away frees stock for another
    await store.apply("r1", "cd", "v1", "k2", {}, {"sauce:mayo": 1}, caps)
    assert (await store.apply("r1", "cd", "v3", "k", {}, {"sauce:bbq": 1}, caps)).status == (
        "applied"
    )


async def test_concurrent_applies_keep_exact_counts(pair):
    store, _, _ = pair
    await store.create_room(room())
    choices = itertools.cycle(["a", "b", "c"])
    calls = [
        store.apply("r1", "p", f"v{i}", "k", {"c": c}, {c: 1})
        for i, c in zip(range(300), choices, strict=False)
    ]
    calls += [store.apply("r1", "p", f"v{i}", "k", {}, {}) for i in range(0, 300, 7)]  # retries
    results = await asyncio.gather(*calls)
    assert sum(r.status == "applied" for r in results) == 300
    assert await store.counters("r1", "p") == {"a": 100, "b": 100, "c": 100}


async def test_interactions_tokens_presence_replay(pair):
    store, _, _ = pair
    await store.create_room(room())
    v = await store.put_interaction("r1", "poll1", {"status": "open", "n": 1})
    assert v == 2
    assert await store.interactions("r1") == {"poll1": {"status": "open", "n": 1}}
    with pytest.raises(RoomNotFound):
        await store.put_interaction("nope", "x", {})
    await store.remember_token("r1", "abc", {"role": "host"}, 60)
    assert await store.token_info("r1", "abc") == {"role": "host"}
    assert await store.token_info("r1", "zzz") is None
    await store.set_presence("r1", "node-a", 10, 30)
    await store.set_presence("r1", "node-b", 5, 30)
    await store.set_presence("r1", "node-c", 7, -1)  # already expired
    assert await store.presence("r1") == 15
    await store.create_room(room("r2"))
    await store.set_presence("r2", "node-a", 4, 30)
    rooms = ["r1", "r2", "nope"]  # a room without presence (or at all) counts 0
    assert await store.presence_many(rooms) == {"r1": 15, "r2": 4, "nope": 0}
    assert await store.presence_many([]) == {}
    await store.set_node_stats("r1", "node-a", {"danmaku": 4, "votes": 1}, 30)
    await store.set_node_stats("r1", "node-b", {"danmaku": 2}, 30)
    await store.set_node_stats("r1", "node-c", {"danmaku": 100}, -1)  # already expired
    assert await store.room_stats("r1") == {"danmaku": 6, "votes": 1}
    await store.set_node_stats("r1", "node-b", {"danmaku": 3}, 30)  # a node's new report
    assert await store.room_stats("r1") == {"danmaku": 7, "votes": 1}
    assert await store.room_stats("nope") == {}
    assert await store.participants("r1") == 0
    await store.add_participants("r1", {"ann", "bob"})  # from node a
    await store.add_participants("r1", {"bob", "cy"})  # node b: bob moved over
    await store.add_participants("r1", set())
    assert await store.participants("r1") == 3
    await store.add_participants("r1", [f"fan{i}" for i in range(2500)])  # more than one call
    assert abs(await store.participants("r1") - 2503) <= 2503 * 0.02
    await store.add_participants("nope", {"ann"})  # a deleted room: nothing to count
    assert await store.participants("nope") == 0
    # Unique viewers: counted apart from the participants, once over every node.
    assert await store.unique_viewers("r1") == 0
    await store.add_viewers("r1", {"ann", "bob", "dan"})  # joined on node a
    await store.add_viewers("r1", {"bob", "eve"})  # node b: bob is seen on both
    await store.add_viewers("r1", set())
    assert await store.unique_viewers("r1") == 4
    assert abs(await store.participants("r1") - 2503) <= 2503 * 0.02  # not mixed in
    await store.add_viewers("nope", {"ann"})
    assert await store.unique_viewers("nope") == 0
    await store.append_replay("r1", [{"n": i} for i in range(5)], keep=3)
    await store.append_replay("r1", [{"n": 5}], keep=3)
    assert await store.replay("r1", 10) == [{"n": 3}, {"n": 4}, {"n": 5}]
    assert await store.replay("r1", 2) == [{"n": 4}, {"n": 5}]
    await store.append_replay("r1", [{"n": 6}], keep=0)  # keeping none empties it
    assert await store.replay("r1", 10) == []
    await store.delete_room("r1")
    assert await store.replay("r1", 10) == []
    assert await store.room_stats("r1") == {}
    assert await store.participants("r1") == 0
    assert await store.unique_viewers("r1") == 0


async def test_broker_delivers_to_subscribers_in_order(pair):
    _, a, b = pair
    got_a, got_b = [], []
    done = asyncio.Event()

    def on_a(room_id, payload):
        got_a.append((room_id, bytes(payload)))

    gone = set()  # rooms b has unsubscribed from
    late = []

    def on_b(room_id, payload):
        if room_id in gone:
            late.append((room_id, bytes(payload)))
        got_b.append((room_id, bytes(payload)))
        if len(got_b) == 50:
            done.set()

    await a.start(on_a)
    await b.start(on_b)
    await b.subscribe("r1")
    await b.subscribe("r2")  # returns once the subscriptions are live: no settling sleep
    sent = [("r1", f"m{i}".encode()) for i in range(25)]
    await a.publish_many(sent)
    for i in range(25, 50):
        sent.append(("r2" if i % 2 else "r1", f"m{i}".encode()))
        await a.publish(*sent[-1])
    await a.publish("r3", b"nobody listens")
    await asyncio.wait_for(done.wait(), 10)
    # In publish order per room: on a cluster r1 and r2 live on different shards,
    # whose connections deliver independently of each other.
    for room_id in ("r1", "r2"):
        assert [p for r, p in got_b if r == room_id] == [p for r, p in sent if r == room_id]
    assert sorted(got_b) == sorted(sent)
    assert got_a == []  # a subscribed to nothing
    if isinstance(a, MemoryBrokerClient):  # never echoes to the publisher (Redis does)
        await a.subscribe("r9")
        await b.subscribe("r9")
        await a.publish("r9", b"to the others")
        for _ in range(100):
            if got_b[-1][0] == "r9":
                break
            await asyncio.sleep(0.01)
        assert got_b[-1] == ("r9", b"to the others") and got_a == []
    await a.publish("r1", b"in flight")  # delivered before unsubscribe returns, or never
    await b.unsubscribe("r1")
    gone.add("r1")
    await a.publish("r1", b"after unsubscribe")
    await a.publish("r2", b"still here")
    for _ in range(100):
        if got_b[-1][1] == b"still here":
            break
        await asyncio.sleep(0.05)
    assert got_b[-1] == ("r2", b"still here")
    assert b"after unsubscribe" not in [p for _, p in got_b]
    assert late == []


async def test_relay_publishes_and_keeps_the_replay_of_rooms_that_exist(pair):
    """Broker.relay: one flush's publications reach the subscribers in order per room,
    and its events land in the shared replay list, trimmed to ``keep``; a deleted room
    still gets its publication (its deletion is news) but no replay list back."""
    store, a, b = pair
    got = []
    arrived = asyncio.Event()

    def on_b(room_id, payload):
        got.append((room_id, bytes(payload)))
        arrived.set()

    await a.start(lambda room_id, payload: None)
    await b.start(on_b)
    for room_id in ("r1", "r2"):
        await store.create_room(room(room_id))
        await b.subscribe(room_id)
    sent = []
    for n in range(3):  # the first flush starts r1's list, the next extend and trim it
        items = [("r1", f"m{n}".encode()), ("r2", f"x{n}".encode())]
        await a.relay(items, store, {"r1": [{"n": 2 * n}, {"n": 2 * n + 1}]}, 4)
        sent += items
    await a.relay([], store, {"r2": [{"n": 0}]}, 4)  # a replay append alone
    for _ in range(200):
        if len(got) == len(sent):
            break
        arrived.clear()
        await asyncio.wait_for(arrived.wait(), 10)
    for room_id in ("r1", "r2"):
        assert [p for r, p in got if r == room_id] == [p for r, p in sent if r == room_id]
    assert await store.replay("r1", 10) == [{"n": n} for n in range(2, 6)]
    assert await store.replay("r2", 10) == [{"n": 0}]
    await store.delete_room("r1")
    await a.relay([("r1", b"gone")], store, {"r1": [{"n": 9}]}, 4)
    await a.relay([("r1", b"gone again")], store, {"r1": [{"n": 10}]}, 4)
    for _ in range(200):
        if got[-1] == ("r1", b"gone again"):
            break
        await asyncio.sleep(0.01)
    assert got[-2:] == [("r1", b"gone"), ("r1", b"gone again")]
    assert await store.replay("r1", 10) == []
    assert await room_keys(store, "r1") in (None, set())
    await a.relay([("r2", b"last")], store, {"r2": [{"n": 1}]}, 0)  # keeping none empties it
    assert await store.replay("r2", 10) == []


async def test_redis_outage_raises_backend_unavailable_and_recovers(shared_redis):
    backends = open_backends(shared_redis.url, prefix=f"t{uuid.uuid4().hex[:8]}:")
    store = backends.store
    try:
        await store.create_room(room())
        shared_redis.stop()
        with pytest.raises(BackendUnavailable):
            await store.apply("r1", "p", "v1", "k", {}, {"a": 1})
        shared_redis.start()
        for _ in range(50):
            try:
                await store.ping()
                break
            except BackendUnavailable:
                await asyncio.sleep(0.1)
        # Redis here keeps nothing on disk, so the room is gone after the restart;
        # what matters is that the same client works again without being recreated.
        await store.create_room(room("r9"))
        assert (await store.apply("r9", "p", "v1", "k", {}, {"a": 1})).status == "applied"
    finally:
        await store.close()


async def test_unversioned_bookkeeping_leaves_the_room_version(pair):
    store, _, _ = pair
    await store.create_room(room())
    before = await store.room_version("r1")
    r = await store.apply("r1", "presence", "v1", "p1", {"at": 1}, {"n": 1}, versioned=False)
    assert (r.status, r.version) == ("applied", before)
    assert await store.room_version("r1") == before
    assert await store.records("r1", "presence") == {"v1": {"at": 1}}


# --- missing rooms ---------------------------------------------------------------------

# Every Store method that names a room raises RoomNotFound for a missing one ...
MISSING_RAISES = {
    "get_room": lambda s, r: s.get_room(r),
    "update_room": lambda s, r: s.update_room(r, title="x", settings={"a": 1}),
    "delete_room": lambda s, r: s.delete_room(r),
    "room_version": lambda s, r: s.room_version(r),
    "remember_token": lambda s, r: s.remember_token(r, "h", {"role": "host"}, 60),
    "token_info": lambda s, r: s.token_info(r, "h"),
    "put_interaction": lambda s, r: s.put_interaction(r, "p", {"n": 1}),
    "interactions": lambda s, r: s.interactions(r),
    "apply": lambda s, r: s.apply(r, "p", "v1", "k9", {"c": "a"}, {"a": 1}),
    "apply unversioned": lambda s, r: s.apply(r, "p", "v1", "k8", None, {}, versioned=False),
    "counters": lambda s, r: s.counters(r, "p"),
    "records": lambda s, r: s.records(r, "p"),
    "read": lambda s, r: s.read(r, ["p"], ["p"]),
    "viewer_data": lambda s, r: s.viewer_data(r, "v1"),
    "erase_viewer": lambda s, r: s.erase_viewer(r, "v1"),
    "prune": lambda s, r: s.prune(r, Cutoffs.at(time.time(), Retention()), time.time()),
}
# ... and the best-effort bookkeeping is a no-op, or empty, for one.
MISSING_IGNORED = {
    "set_presence": lambda s, r: s.set_presence(r, "node-a", 3, 30),
    "set_node_stats": lambda s, r: s.set_node_stats(r, "node-a", {"danmaku": 1}, 30),
    "add_participants": lambda s, r: s.add_participants(r, ["ann", "bob"]),
    "add_viewers": lambda s, r: s.add_viewers(r, ["ann", "bob"]),
    "append_replay": lambda s, r: s.append_replay(r, [{"n": 1}], keep=10),
}
MISSING_EMPTY = {
    "presence": (lambda s, r: s.presence(r), 0),
    "room_stats": (lambda s, r: s.room_stats(r), {}),
    "participants": (lambda s, r: s.participants(r), 0),
    "unique_viewers": (lambda s, r: s.unique_viewers(r), 0),
    "replay": (lambda s, r: s.replay(r, 10), []),
}


@pytest.mark.parametrize("state", ["never created", "deleted"])
async def test_a_missing_room_raises_or_stays_empty_and_gains_no_keys(pair, state):
    store, _, _ = pair
    await store.create_room(room("other"))  # a neighbour that must not be disturbed
    if state == "deleted":
        await store.create_room(room("ghost"))
        await store.apply("ghost", "p", "v1", "k1", {"c": "a"}, {"a": 1})
        await store.remember_token("ghost", "h", {"role": "host"}, 60)
        await store.set_presence("ghost", "node-a", 1, 30)
        await store.append_replay("ghost", [{"n": 0}], keep=10)
        await store.add_viewers("ghost", ["v1"])
        await store.delete_room("ghost")
    wrong = []
    for name, call in MISSING_RAISES.items():
        try:
            got = await call(store, "ghost")
        except RoomNotFound:
            continue
        wrong.append(f"{name} returned {got!r}")
    for name, call in MISSING_IGNORED.items():
        if (got := await call(store, "ghost")) is not None:
            wrong.append(f"{name} returned {got!r}")
    for name, (call, empty) in MISSING_EMPTY.items():
        if (got := await call(store, "ghost")) != empty:
            wrong.append(f"{name} returned {got!r}")
    assert wrong == []
    assert [r.id for r in await store.list_rooms()] == ["other"]
    assert await room_keys(store, "ghost") in (None, set())
    assert await store.room_version("other") == 1


# --- atomic create and delete ----------------------------------------------------------


async def test_create_delete_apply_storms_leave_a_whole_room_or_none(pair):
    """Many concurrent creates, deletes and writes on one room id: afterwards the room is
    either whole (listed, counters that match its records, only its own keys) or gone
    without a trace (no key left on Redis)."""
    store, _, _ = pair
    rng = random.Random(20240611)
    outcomes = Counter()
    for round_ in range(8):
        rid = f"storm{round_}"
        calls = [("create", store.create_room(room(rid))) for _ in range(10)]
        calls += [("delete", store.delete_room(rid)) for _ in range(8 + round_ % 3)]
        for i in range(60):
            choice = "abc"[i % 3]
            apply = store.apply(rid, "p", f"v{i % 20}", f"k{i}", {"c": choice}, {choice: 1})
            calls.append(("apply", apply))
        calls += [("put", store.put_interaction(rid, "p", {"n": i})) for i in range(5)]
        calls += [("update", store.update_room(rid, settings={"n": i})) for i in range(5)]
        calls += [("token", store.remember_token(rid, f"t{i}", {}, 60)) for i in range(5)]
        for name, call in itertools.islice(itertools.cycle(MISSING_IGNORED.items()), 12):
            calls.append((name, call(store, rid)))
        rng.shuffle(calls)
        results = await asyncio.gather(*(c for _, c in calls), return_exceptions=True)
        done = Counter()
        for (name, _), result in zip(calls, results, strict=True):
            if isinstance(result, (RoomNotFound, RoomExists)):
                continue
            assert not isinstance(result, BaseException), (name, result)
            done[name] += 1
        # each successful delete removed what one successful create had made
        assert done["create"] - done["delete"] in (0, 1), done
        exists = done["create"] - done["delete"] == 1
        outcomes[exists] += 1
        listed = rid in [r.id for r in await store.list_rooms()]
        assert listed == exists
        keys = await room_keys(store, rid)
        if not exists:
            with pytest.raises(RoomNotFound):
                await store.get_room(rid)
            assert keys in (None, set())
            continue
        record = await store.get_room(rid)
        assert record.version == await store.room_version(rid)
        records = await store.records(rid, "p")
        assert await store.counters(rid, "p") == Counter(r["c"] for r in records.values())
        assert keys is None or all(ROOM_KEY.fullmatch(k) for k in keys), keys
        await store.delete_room(rid)
        assert await room_keys(store, rid) in (None, set())
        assert rid not in [r.id for r in await store.list_rooms()]
    assert sum(outcomes.values()) == 8


async def test_a_second_create_raises_room_exists_and_changes_nothing(pair):
    store, _, _ = pair
    first = await store.create_room(room("r1", allow_anonymous=False))
    await store.apply("r1", "p", "v1", "k", {"c": "a"}, {"a": 1})
    results = await asyncio.gather(
        *(store.create_room(room("r1")) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, RoomExists) for r in results), results
    got = await store.get_room("r1")
    assert (got.title, got.settings, got.version) == (first.title, {"allow_anonymous": False}, 2)
    assert await store.counters("r1", "p") == {"a": 1}


# --- one read of several boxes ---------------------------------------------------------


async def test_read_gives_counters_and_records_of_several_boxes(pair):
    store, _, _ = pair
    await store.create_room(room())
    await store.apply("r1", "poll/a", "v1", "k", {"c": "x"}, {"x": 1})
    await store.apply("r1", "poll/a", "v2", "k", {"c": "y"}, {"y": 1})
    await store.apply("r1", "poll/b", "v1", "k", {"n": 2}, {"n": 2})
    await store.apply("r1", "poll/b", "v1", "k2", None, {})  # withdrawn: counters at 0 go
    data = await store.read("r1", ["poll/a", "poll/b", "never"], ["poll/a", "poll/b", "never"])
    assert data == BoxData(
        counters={"poll/a": {"x": 1, "y": 1}, "poll/b": {}, "never": {}},
        records={"poll/a": {"v1": {"c": "x"}, "v2": {"c": "y"}}, "poll/b": {}, "never": {}},
    )
    assert data.counters["poll/a"] == await store.counters("r1", "poll/a")
    assert data.records["poll/a"] == await store.records("r1", "poll/a")
    assert await store.read("r1", [], []) == BoxData({}, {})
    only = await store.read("r1", counters=["poll/a"], records=())
    assert only == BoxData({"poll/a": {"x": 1, "y": 1}}, {})


async def test_read_gives_single_holders_records_without_the_whole_box(pair):
    """A kind that needs one viewer's records of a large box reads just those."""
    store, _, _ = pair
    await store.create_room(room())
    await store.apply("r1", "poll/a", "v1", "k", {"c": "x"}, {"x": 1})
    await store.apply("r1", "poll/a", "v2", "k", {"c": "y"}, {"y": 1})
    await store.apply("r1", "poll/a/more", "v1#1", "k", {"c": "z"}, {"z": 1})
    data = await store.read(
        "r1",
        ["poll/a"],
        (),
        [("poll/a", "v1"), ("poll/a", "v3"), ("poll/a/more", "v1#1"), ("never", "v1")],
    )
    assert data.held == {"poll/a": {"v1": {"c": "x"}}, "poll/a/more": {"v1#1": {"c": "z"}}}
    assert data.counters == {"poll/a": {"x": 1, "y": 1}}
    assert data.records == {}
    assert (await store.read("r1", [], [], [("never", "v1")])).held == {}
    with pytest.raises(RoomNotFound):
        await store.read("nowhere", [], [], [("poll/a", "v1")])


# --- live subscriptions ----------------------------------------------------------------


async def test_a_publication_right_after_subscribe_returned_is_delivered(pair):
    """subscribe() returns once the subscription is live, on every shard of a cluster."""
    _, a, b = pair
    got = []
    all_in = asyncio.Event()

    def on_b(room_id, payload):
        got.append((room_id, bytes(payload)))
        if len(got) == 40:
            all_in.set()

    await a.start(lambda room_id, payload: None)
    await b.start(on_b)
    for i in range(20):  # one after another: each publication follows its own subscribe
        await b.subscribe(f"live{i}")
        await a.publish(f"live{i}", b"first")
    await asyncio.gather(*(b.subscribe(f"many{i}") for i in range(20)))
    await a.publish_many([(f"many{i}", b"first") for i in range(20)])
    await asyncio.wait_for(all_in.wait(), 10 * UNIT)
    assert sorted(got) == sorted(
        [(f"live{i}", b"first") for i in range(20)] + [(f"many{i}", b"first") for i in range(20)]
    )


async def test_subscribe_raises_backend_unavailable_when_redis_never_confirms():
    """A server that accepts the connection and never answers: subscribe() gives up."""

    async def silent(reader, writer):
        await reader.read()  # hold the connection open without a word
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backends = open_backends(f"redis://127.0.0.1:{port}/0", prefix="t:")
    backends.broker.subscribe_timeout_s = 0.5
    try:
        await backends.broker.start(lambda room_id, payload: None)
        started = time.monotonic()
        with pytest.raises(BackendUnavailable):
            await backends.broker.subscribe("r1")
        assert time.monotonic() - started < 4 * UNIT
    finally:
        await backends.broker.close()
        await backends.store.close()
        server.close()
        await server.wait_closed()


async def test_subscriptions_come_back_after_a_redis_restart():
    """While Redis is down subscribe() raises BackendUnavailable but the subscription stays
    wanted; after the restart the listener subscribes every wanted channel again."""
    with redis_server() as redis:
        prefix = f"t{uuid.uuid4().hex[:8]}:"
        a = open_backends(redis.url, prefix=prefix)
        b = open_backends(redis.url, prefix=prefix)
        got = asyncio.Queue()
        try:
            await a.broker.start(lambda room_id, payload: None)
            await b.broker.start(lambda room_id, payload: got.put_nowait((room_id, payload)))
            await b.broker.subscribe("before")
            await a.broker.publish("before", b"1")
            assert await asyncio.wait_for(got.get(), 5 * UNIT) == ("before", b"1")
            redis.stop()
            with pytest.raises(BackendUnavailable):
                await b.broker.subscribe("during")
            redis.start()
            deadline = time.monotonic() + 15 * UNIT
            while True:  # live again once the listener has reconnected
                try:
                    await b.broker.subscribe("before")
                    await b.broker.subscribe("during")
                    break
                except BackendUnavailable:
                    assert time.monotonic() < deadline, "the listener did not come back"
                    await asyncio.sleep(0.1)
            for room_id, payload in (("before", b"2"), ("during", b"3")):
                for _ in range(20):  # the publisher's pooled connections died with Redis
                    try:
                        await a.broker.publish(room_id, payload)
                        break
                    except BackendUnavailable:
                        await asyncio.sleep(0.1)
            assert {await asyncio.wait_for(got.get(), 5 * UNIT) for _ in range(2)} == {
                ("before", b"2"),
                ("during", b"3"),
            }
        finally:
            for backends in (a, b):
                await backends.broker.close()
                await backends.store.close()


# --- the cockpit's per-minute timeline (server/rooms/timeline.py), on every backend ---


async def test_the_timeline_is_one_history_for_every_node_and_a_restarted_one(pair):
    from server.rooms.stats import RoomStats
    from server.rooms.timeline import KEEP_MINUTES, TIMELINE_BOX, Timeline

    store, _, _ = pair
    await store.create_room(room())
    now = [1_800_000_000.0 + 10]  # 10 s into a minute
    activities = ("danmaku", "votes")
    a = Timeline(store, "node-a", activities, lambda: now[0])
    b = Timeline(store, "node-b", activities, lambda: now[0])
    on_a, on_b = RoomStats(activities=activities), RoomStats(activities=activities)
    for i in range(3):
        on_a.add("danmaku", f"u{i}", now[0])
    on_b.add("votes", "u9", now[0])
    await a.note("r1", on_a, 5, (3, 6))
    await b.note("r1", on_b, 2, (4, 9))
    b.level = lambda room_id: 2  # b was overloaded for a moment
    await b.note("r1", on_b, 2, (4, 9))
    b.level = lambda room_id: 0
    await a.note("r1", on_a, 4, (3, 6))  # fewer online later in the minute: the most is kept
    now[0] += 60  # the next minute: a writes the last one's final counts, then this one's
    on_a.add("danmaku", "u1", now[0])
    await a.note("r1", on_a, 1, (3, 6))
    minute = (1_800_000_000 // 60) * 60_000
    fresh = Timeline(store, "node-c", activities, lambda: now[0])  # a restarted node
    series = await fresh.series("r1")
    assert series["minutes"] == [
        {"minute": minute, "online": 7, "participants": 4, "unique_viewers": 9, "degrade": 2}
        | {"danmaku": 3, "votes": 1},
        {"minute": minute + 60_000, "online": 1, "participants": 3, "unique_viewers": 6}
        | {"degrade": 0, "danmaku": 1, "votes": 0},
    ]
    assert series["nodes"] == [
        {"node": "node-a", "minute": minute + 60_000, "online": 1, "degrade": 0},
        {"node": "node-b", "minute": minute, "online": 2, "degrade": 2},
    ]
    assert series["peak_online"] == 7
    assert series == await a.series("r1") == await b.series("r1")
    # Three days after the event, no node serving the room: its report (made from this
    # series) still has every minute.
    later = Timeline(store, "node-d", activities, lambda: now[0] + 3 * 86400)
    assert await later.series("r1") == series
    # A day later, a node's first minute drops what is older than a day.
    now[0] += KEEP_MINUTES * 60
    await a.note("r1", on_a, 1, (3, 6))
    await a.note("r1", on_a, 1, (3, 6))
    now[0] += 60
    await a.note("r1", on_a, 2, (3, 6))
    kept = await store.records("r1", TIMELINE_BOX)
    assert sorted(r["m"] for r in kept.values()) == [now[0] // 60 - 1, now[0] // 60], kept
    series = await fresh.series("r1")
    assert [row["online"] for row in series["minutes"]] == [1, 2], series
    # Bookkeeping: the room's version does not grow; a deleted room takes it along.
    assert await store.room_version("r1") == 1
    await store.delete_room("r1")
    with pytest.raises(RoomNotFound):
        await a.note("r1", on_a, 3, (3, 6))  # a changed record: the same is not written again
    await store.create_room(room())
    assert (await fresh.series("r1"))["minutes"] == []


async def test_a_minute_s_turn_drops_the_expired_minute_unread_and_sweeps_hourly(pair):
    """At each minute's turn a node drops its own minute that fell out of the day without
    reading the box (a day of a node's minutes is 1,440 records, read by every served
    room at once); it reads the box, for every node's old records, once an hour (at a
    minute of the room's own) and after a gap in its minutes. A quiet minute's final
    record is not written twice."""
    from server.backends.base import Submission
    from server.rooms.stats import RoomStats
    from server.rooms.timeline import KEEP_MINUTES, TIMELINE_BOX, Timeline, holder, sweeps

    def entry(m: int, node: str) -> tuple[str, Submission]:
        record = {"m": m, "node": node, "online": 1}
        return TIMELINE_BOX, Submission(holder(m, node), "", record, {}, {}, False, False, True)

    store, _, _ = pair
    await store.create_room(room())
    hour = next(m for m in range(30_000_000, 30_000_100) if sweeps("r1", m))  # r1's sweep
    assert not any(sweeps("r1", m) for m in range(hour - 59, hour))  # once an hour
    now = [(hour - 4) * 60.0 + 10]
    # what a day ago left in the box: this node's minutes and those of a node now gone
    old = range(hour - 4 - KEEP_MINUTES - 2, hour + 3 - KEEP_MINUTES)
    await store.submit_many("r1", [entry(m, n) for m in old for n in ("node-a", "node-gone")])

    real_records, real_submit = store.records, store.submit_many
    reads: list[int] = []
    written: list[list[str]] = []

    async def records(room_id, box):
        if box == TIMELINE_BOX:
            reads.append(int(now[0] // 60))
        return await real_records(room_id, box)

    async def submit_many(room_id, items):
        written.append([s.viewer_id for _, s in items])
        return await real_submit(room_id, items)

    store.records, store.submit_many = records, submit_many
    a = Timeline(store, "node-a", ("danmaku",), lambda: now[0])
    quiet = RoomStats(activities=("danmaku",))
    await a.note("r1", quiet, 1, (0, 0))  # its first minute here
    for _ in range(3):  # three quiet turns in a row, none at a sweep's minute
        now[0] += 60
        await a.note("r1", quiet, 1, (0, 0))
    assert reads == [], reads
    # each turn: the minute that fell out of the day (this node's), and the new minute;
    # the last minute's final record is what was written in it, not written again
    assert written[1:] == [
        [holder(m - KEEP_MINUTES, "node-a"), holder(m, "node-a")] for m in range(hour - 3, hour)
    ], written
    left = {(r["node"], r["m"]) for r in (await real_records("r1", TIMELINE_BOX)).values()}
    assert ("node-a", hour - 1 - KEEP_MINUTES) not in left, left
    assert ("node-gone", hour - 1 - KEEP_MINUTES) in left, left  # not this node's to drop
    now[0] += 60  # r1's sweep: every node's expired minutes go, read from the box
    await a.note("r1", quiet, 1, (0, 0))
    assert reads == [hour], reads
    left = {(r["node"], r["m"]) for r in (await real_records("r1", TIMELINE_BOX)).values()}
    assert min(m for _, m in left) == hour + 1 - KEEP_MINUTES, left
    now[0] += 2 * 60  # a minute this node did not write: a gap, swept as well
    await a.note("r1", quiet, 1, (0, 0))
    assert reads == [hour, hour + 2], reads
    left = {(r["node"], r["m"]) for r in (await real_records("r1", TIMELINE_BOX)).values()}
    assert all(m > hour + 2 - KEEP_MINUTES for _, m in left), left  # the last of a day ago
