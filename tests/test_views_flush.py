"""The state flush of a room with many interactions (server/rooms/views.py): a flush
after votes reads only what they changed, and what a host changed here, on another
node or behind the node's back still reaches the views."""

from __future__ import annotations

from typing import Any

import pytest

from server.auth import Authority, Identity
from server.backends.base import RoomRecord
from server.backends.memory import MemoryStore
from server.interactions.kind import Audience
from server.interactions.registry import Registry
from server.rooms.service import RoomService
from tests.conftest import SECRET
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
    acks = [await vote(rooms, "ann", "p3"), await vote(rooms, "bo", "p7", "b")]
    [change] = await rooms.changes()
    public = change.views[Audience.PUBLIC]
    assert sorted(public) == ["p3", "p7"]  # only what the votes changed
    assert public["p3"]["results"]["voters"] == 1
    assert public["p7"]["results"]["voters"] == 1
    # the state's version says both votes are in it
    assert change.version >= max(a["version"] for a in acks)
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
    [change] = await rooms.changes()
    assert change.views[Audience.PUBLIC]["p5"]["status"]["phase"] == "closed"
    assert change.version >= closed["version"]
    with pytest.raises(Exception) as refused:  # this node knows it is closed now
        await vote(rooms, "cy", "p5")
    assert getattr(refused.value, "code", None) == "not_open"


async def test_votes_on_another_node_reach_this_one_with_their_version(many):
    store, rooms = many
    other = node(store, "n2")
    await other.enter(await other.room(ROOM), viewer("host2"))
    ack = await vote(other, "dee", "p1")
    rooms.stale(ROOM, "p1", ack["version"], False)
    [change] = await rooms.changes()
    assert change.views[Audience.PUBLIC]["p1"]["results"]["voters"] == 1
    assert change.version >= ack["version"]


async def test_a_resync_finds_what_changed_behind_the_nodes_back(many):
    store, rooms = many
    other = node(store, "n2")
    await other.enter(await other.room(ROOM), viewer("host2"))
    spec = {"id": "late", "question": "Q?", "kind": "single", "options": OPTIONS}
    await other.host(ROOM, "create", {"kind": "poll", "spec": spec})  # no relay message
    assert await rooms.changes() == []
    rooms.resync()
    [change] = await rooms.changes()
    assert change.views[Audience.PUBLIC]["late"]["status"]["phase"] == "draft"
    assert change.version == await store.room_version(ROOM)
