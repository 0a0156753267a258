"""The state flush of a room with many interactions (server/rooms/views.py): a flush
after votes reads only what they changed, and what a host changed here, on another
node or behind the node's back still reaches the views. State messages carry changes
against a version (server/rooms/deltas.py): applied to the views a client held, they
give the views the node holds, also for a client handed a snapshot mid-flush."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from protocol.delta import HeldViews, apply_patch, merge_patch
from server.auth import Authority, Identity
from server.backends.base import RoomRecord
from server.backends.memory import MemoryStore
from server.interactions.kind import Audience
from server.interactions.registry import Registry
from server.rooms.service import RoomService
from tests.conftest import SECRET, UNIT, Client, running_server
from tests.test_room_service import Outbox

ROOM = "r"
POLLS = 20
OPTIONS = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]


class CountingStore(MemoryStore):
    """A memory store that counts the reads a flush may skip."""

    def __init__(self) -> None:
        super().__init__()
        self.definition_reads = 0
        self.version_reads = 0

    async def interactions(self, room_id: str) -> Any:
        self.definition_reads += 1
        return await super().interactions(room_id)

    async def room_version(self, room_id: str) -> int:
        self.version_reads += 1
        return await super().room_version(room_id)


def node(store: MemoryStore, name: str) -> RoomService:
    rooms = RoomService(
        store, Registry(), Authority("admin-token-xxxxxxxx", SECRET), node_id=name, shared=True
    )
    rooms.bind(Outbox())
    return rooms


def viewer(name: str) -> Identity:
    return Identity(f"v-{name}", name, "viewer", ROOM)


async def vote(rooms: RoomService, who: str, poll: str, option: str = "a") -> dict[str, Any]:
    fields = {"interaction": poll, "option": option}
    return await rooms.participate(ROOM, viewer(who), "vote", f"k-{who}-{poll}", fields)


def public(change: Any) -> dict[str, Any]:
    """The public delta's views, whole (patches applied to the node's previous views)."""
    delta = change.deltas[Audience.PUBLIC]
    return {**delta.interactions, **{i: {"patched": p} for i, p in delta.patches.items()}}


class Follower:
    """One client per audience of the room, kept current from deltas alone."""

    def __init__(self, rooms: RoomService) -> None:
        self.rooms = rooms
        self.held: dict[str, HeldViews] = {}
        for audience in Audience:
            self.join(audience)

    def join(self, audience: Audience) -> None:
        version, views = self.rooms.snapshot_views(ROOM, audience)
        self.held[audience] = HeldViews()
        self.held[audience].snapshot({"version": version, "interactions": views})

    def take(self, changes: list[Any]) -> None:
        for change in changes:
            for audience, delta in change.deltas.items():
                message = {
                    "base": delta.base,
                    "version": delta.version,
                    "interactions": delta.interactions,
                    "patches": delta.patches,
                }
                assert self.held[audience].state(message) is not None, "a gap"

    def check(self) -> None:
        for audience in Audience:
            _, views = self.rooms.snapshot_views(ROOM, audience)
            assert self.held[audience].views == views, audience


@pytest.fixture
async def many() -> tuple[CountingStore, RoomService]:
    """A served room with POLLS open polls."""
    store = CountingStore()
    await store.create_room(RoomRecord(ROOM, "Room", 0.0, 1, {}))
    rooms = node(store, "n1")
    await rooms.enter(await rooms.room(ROOM), viewer("host"))
    for i in range(POLLS):
        spec = {"id": f"p{i}", "question": "Q?", "kind": "single", "options": OPTIONS}
        await rooms.host(ROOM, "create", {"kind": "poll", "spec": spec})
        await rooms.host(ROOM, "open", {"interaction": f"p{i}"})
    await rooms.changes()
    return store, rooms


async def test_a_flush_after_votes_shows_them_without_rereading_the_definitions(many):
    store, rooms = many
    reads, versions = store.definition_reads, store.version_reads
    follower = Follower(rooms)
    before = {i: follower.held[Audience.PUBLIC].views[i] for i in ("p3", "p7")}
    acks = [await vote(rooms, "ann", "p3"), await vote(rooms, "bo", "p7", "b")]
    [change] = await rooms.changes()
    delta = change.deltas[Audience.PUBLIC]
    assert sorted(public(change)) == ["p3", "p7"]  # only what the votes changed
    assert not delta.interactions  # a vote is a small change: patches, not whole views
    _, now = rooms.snapshot_views(ROOM, Audience.PUBLIC)
    for iid in ("p3", "p7"):  # the patch turns the view held before into the new one
        assert apply_patch(before[iid], delta.patches[iid]) == now[iid]
        assert now[iid]["results"]["voters"] == 1
    # the state's version says both votes are in it
    assert delta.version >= max(a["version"] for a in acks)
    assert store.definition_reads == reads
    # the version alone is read (a relayed mark may have been lost): once for the flush
    assert store.version_reads == versions + 1


async def test_a_host_action_on_another_node_reaches_this_one(many):
    store, rooms = many
    other = node(store, "n2")
    await other.enter(await other.room(ROOM), viewer("host2"))
    closed = await other.host(ROOM, "close", {"interaction": "p5"})
    # the relay's stale message: redefined, a host action
    rooms.stale(ROOM, "p5", closed["version"], True)
    follower = Follower(rooms)
    changes = await rooms.changes()
    follower.take(changes)
    follower.check()
    assert follower.held[Audience.PUBLIC].views["p5"]["status"]["phase"] == "closed"
    assert changes[0].deltas[Audience.PUBLIC].version >= closed["version"]
    with pytest.raises(Exception) as refused:  # this node knows it is closed now
        await vote(rooms, "cy", "p5")
    assert getattr(refused.value, "code", None) == "not_open"


async def test_votes_on_another_node_reach_this_one_with_their_version(many):
    store, rooms = many
    other = node(store, "n2")
    await other.enter(await other.room(ROOM), viewer("host2"))
    ack = await vote(other, "dee", "p1")
    rooms.stale(ROOM, "p1", ack["version"], False)
    follower = Follower(rooms)
    changes = await rooms.changes()
    follower.take(changes)
    follower.check()
    assert follower.held[Audience.PUBLIC].views["p1"]["results"]["voters"] == 1
    assert changes[0].deltas[Audience.PUBLIC].version >= ack["version"]


async def test_a_resync_finds_what_changed_behind_the_nodes_back(many):
    store, rooms = many
    other = node(store, "n2")
    await other.enter(await other.room(ROOM), viewer("host2"))
    spec = {"id": "late", "question": "Q?", "kind": "single", "options": OPTIONS}
    await other.host(ROOM, "create", {"kind": "poll", "spec": spec})  # no relay message
    assert await rooms.changes() == []
    follower = Follower(rooms)
    rooms.resync()
    [change] = await rooms.changes()
    delta = change.deltas[Audience.PUBLIC]
    assert delta.interactions["late"]["status"]["phase"] == "draft"  # new: whole
    assert delta.version == await store.room_version(ROOM)
    follower.take([change])
    follower.check()


async def test_deltas_keep_every_audience_current_through_many_changes(many):
    """Votes, host actions and a new interaction over several flushes: each audience's
    client, kept from deltas alone, holds what the node holds after each."""
    _, rooms = many
    follower = Follower(rooms)
    for step in range(6):
        await vote(rooms, f"v{step}", f"p{step}")
        await vote(rooms, f"w{step}", "p0", "b")
        if step == 2:
            await rooms.host(ROOM, "close", {"interaction": "p1"})
        if step == 4:
            spec = {"id": "new", "question": "Q?", "kind": "single", "options": OPTIONS}
            await rooms.host(ROOM, "create", {"kind": "poll", "spec": spec})
        follower.take(await rooms.changes())
        follower.check()


async def test_a_snapshot_handed_out_before_a_flush_is_brought_current_by_it(many):
    """A join refreshes the views (a snapshot is never older than the store) before
    the flush sends them: the next state message must be right both for those who
    hold the previous message's views and for the joiner, even for a view that
    changed again after the join."""
    _, rooms = many
    early = Follower(rooms)
    await vote(rooms, "ann", "p2")
    await vote(rooms, "bo", "p3")
    await rooms.enter(await rooms.room(ROOM), viewer("late"))  # refreshes p2 and p3
    late = Follower(rooms)  # holds p2 and p3 with one vote each, unsent
    await rooms.host(ROOM, "close", {"interaction": "p2"})  # p2 changes again
    changes = await rooms.changes()
    assert "p2" in changes[0].deltas[Audience.PUBLIC].interactions  # whole, for both
    early.take(changes)
    late.take(changes)
    early.check()
    late.check()


async def test_a_client_that_missed_a_state_message_sees_a_gap(many):
    _, rooms = many
    follower = Follower(rooms)
    await vote(rooms, "ann", "p2")
    await rooms.changes()  # this one is missed
    await vote(rooms, "bo", "p3")
    [change] = await rooms.changes()
    delta = change.deltas[Audience.PUBLIC]
    held = follower.held[Audience.PUBLIC]
    message = {"base": delta.base, "version": delta.version, "patches": delta.patches}
    assert held.state(message) is None and held.gaps == 1
    follower.join(Audience.PUBLIC)  # the snapshot it asks for
    assert held is not follower.held[Audience.PUBLIC]
    assert follower.held[Audience.PUBLIC].views["p3"]["results"]["voters"] == 1


def test_merge_patches_round_trip_and_refuse_what_they_cannot_say():
    old = {"id": "p", "results": {"voters": 1, "counts": {"a": 1}}, "gone": 1, "list": [1]}
    new = {"id": "p", "results": {"voters": 2, "counts": {"a": 1, "b": 1}}, "list": [1, 2]}
    patch = merge_patch(old, new)
    assert patch == {"results": {"voters": 2, "counts": {"b": 1}}, "list": [1, 2], "gone": None}
    assert apply_patch(old, patch) == new
    assert apply_patch(new, patch) == new  # applying again changes nothing
    assert merge_patch(new, new) == {}
    assert merge_patch({"a": 1}, {"a": None}) is None  # null would remove it
    assert merge_patch({"a": 1}, {"a": {"b": None}}) is None
    assert merge_patch({"a": True}, {"a": 1}) == {"a": 1}


# --- over real sockets, on the memory backend and on Redis -------------------------------


@pytest.fixture(params=["memory", "redis"])
async def node_of(request: Any) -> Any:
    if request.param == "memory":
        async with running_server() as live:
            yield live
        return
    url = request.getfixturevalue("shared_redis").url
    prefix = f"dv{uuid.uuid4().hex[:8]}:"
    async with running_server(server={"redis_url": url, "redis_prefix": prefix}) as live:
        yield live


async def until_version(client: Client, version: int) -> None:
    """Read until the client's views (kept from deltas) are at ``version`` or later."""
    while client.held.version is None or client.held.version < version:
        await client.recv(timeout=10)


async def test_deltas_over_sockets_keep_views_and_a_gap_brings_a_snapshot(node_of: Any) -> None:
    live = node_of
    await live.create_room(ROOM)
    host = await live.connect()
    await host.join(ROOM, token=await live.mint(ROOM, "host", sub="h", name="Host"))
    spec = {"id": "p", "question": "Q?", "kind": "single", "options": OPTIONS}
    assert (await host.command("host", action="create", kind="poll", spec=spec))["type"] == "ack"
    opened = await host.command("host", action="open", interaction="p")
    await until_version(host, opened["version"])  # flushed: for every audience at once
    steady, gappy = await live.connect(), await live.connect("hudong.v1.msgpack")
    await steady.join(ROOM)
    await gappy.join(ROOM)
    voters = [await live.connect() for _ in range(4)]
    for v in voters:
        await v.join(ROOM)

    async def vote_as(n: int) -> int:
        reply = await voters[n].command("vote", interaction="p", option="ab"[n % 2], key=f"k{n}")
        return int(reply["version"])

    # Votes arrive as patches; the views kept from them are the node's.
    gappy.apply_deltas = False
    version = await vote_as(0)
    message = await gappy.recv_type("state", timeout=10)
    assert "p" in message.get("patches", {}), message  # a patch, not the whole view
    assert message["base"] < message["version"]
    await until_version(gappy, version)
    # gappy misses the next state message (read past its views, as a paused connection)
    version = await vote_as(1)
    while True:
        missed = gappy.codec.decode(_raw(await gappy.ws.recv()))
        if missed["type"] == "state":
            break
    # the one after shows the gap: it asks for a snapshot and is current again
    version = await vote_as(2)
    asked = await gappy.recv_type("snapshot", timeout=10)
    assert gappy.held.gaps == 1 and asked["snapshot"]["version"] >= version
    version = await vote_as(3)
    await until_version(gappy, version)
    await until_version(steady, version)
    fresh = await live.connect()
    joined = await fresh.join(ROOM)
    assert steady.held.gaps == 0
    assert steady.held.views == gappy.held.views == joined["snapshot"]["interactions"]
    assert steady.held.views["p"]["results"]["voters"] == 4


def _raw(data: bytes | str) -> bytes:
    return data if isinstance(data, bytes) else data.encode()


async def test_a_resync_after_votes_sends_no_snapshot_but_a_changed_room_sends_one(
    shared_redis: Any,
) -> None:
    """On Redis the room's version is the room's counter, and every vote moves it: the
    resync (every 15 s) re-reads a record that is newer but says nothing new. It is kept
    quietly; only a record that changed (another node's settings) goes to every member."""
    prefix = f"dv{uuid.uuid4().hex[:8]}:"
    async with running_server(
        server={"redis_url": shared_redis.url, "redis_prefix": prefix}
    ) as live:
        await live.create_room(ROOM)
        host = await live.connect()
        await host.join(ROOM, token=await live.mint(ROOM, "host", sub="h", name="Host"))
        spec = {"id": "p", "question": "Q?", "kind": "single", "options": OPTIONS}
        assert (await host.command("host", action="create", kind="poll", spec=spec))[
            "type"
        ] == "ack"
        opened = await host.command("host", action="open", interaction="p")
        viewer = await live.connect()
        await viewer.join(ROOM)
        reply = await viewer.command("vote", interaction="p", option="a", key="k")
        await until_version(viewer, max(reply["version"], opened["version"]))

        live.hub.resync()
        await asyncio.sleep(0.3 * UNIT)  # the re-read is under way, then done
        assert (await host.command("danmaku", text="after the resync"))["type"] == "ack"
        seen = [await viewer.recv()]
        while seen[-1]["type"] != "batch":
            seen.append(await viewer.recv())
        assert [m["type"] for m in seen if m["type"] == "snapshot"] == [], seen
        assert [e["text"] for e in seen[-1]["events"]] == ["after the resync"]
        assert viewer.held.gaps == 0

        # another node's change, seen at the resync: every member gets the new record
        await live.app.state.rooms.store.update_room(ROOM, title="Renamed", settings={})
        live.hub.resync()
        snapshot = (await viewer.recv_type("snapshot"))["snapshot"]
        assert snapshot["room"]["title"] == "Renamed"
