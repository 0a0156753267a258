"""The room service without sockets: a memory store, and a recording outbox in the
hub's place (server/rooms/outbox.py)."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

import pytest

from protocol.messages import CommandError
from server.auth import Authority, Identity
from server.backends.base import RoomRecord
from server.backends.memory import MemoryStore
from server.interactions.kind import Audience
from server.interactions.registry import Registry
from server.rooms.service import RoomService
from tests.conftest import SECRET

ROOM = "r"


class Outbox:
    """What the service told the hub."""

    def __init__(self) -> None:
        self.changed: list[tuple[str, str, int]] = []
        self.events: list[dict[str, Any]] = []
        self.notices: list[tuple[list[str], dict[str, Any] | None]] = []
        self.closed: list[tuple[str, set[str], str]] = []
        self.updated: list[RoomRecord] = []
        self.deleted: list[str] = []

    def interaction_changed(
        self, room_id: str, interaction_id: str, version: int, redefined: bool
    ) -> None:
        self.changed.append((room_id, interaction_id, version))

    def announce(
        self,
        room_id: str,
        event: dict[str, Any],
        notify: Collection[str] = (),
        notice: dict[str, Any] | None = None,
        private: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        self.events.append(event)
        if notice is not None:
            self.notices.append((sorted(notify), notice))
        for user, own in (private or {}).items():
            self.notices.append(([user], own))

    def close_users(self, room_id: str, user_ids: Collection[str], close: str, reason: str) -> None:
        self.closed.append((room_id, set(user_ids), close))

    def room_updated(self, record: RoomRecord) -> None:
        self.updated.append(record)

    def room_deleted(self, room_id: str) -> None:
        self.deleted.append(room_id)

    def online(self, room_id: str) -> int:
        return 0


def viewer(name: str) -> Identity:
    return Identity(f"v-{name}", name, "viewer", ROOM)


@pytest.fixture
async def service() -> RoomService:
    store = MemoryStore()
    await store.create_room(RoomRecord(ROOM, "Room", 0.0, 1, {}))
    rooms = RoomService(
        store, Registry(), Authority("admin-token-xxxxxxxx", SECRET), node_id="n1", shared=False
    )
    rooms.bind(Outbox())
    await rooms.enter(await rooms.room(ROOM), viewer("host"))
    return rooms


def outbox(rooms: RoomService) -> Outbox:
    sent = rooms.outbox()
    assert isinstance(sent, Outbox)
    return sent


async def poll(rooms: RoomService) -> None:
    options = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]
    spec = {"id": "p", "question": "Q?", "kind": "single", "options": options}
    await rooms.host(ROOM, "create", {"kind": "poll", "spec": spec})
    await rooms.host(ROOM, "open", {"interaction": "p"})


async def test_a_vote_is_acknowledged_once_committed_and_the_flush_carries_the_views(service):
    rooms = service
    await poll(rooms)
    await rooms.changes()  # what the creation changed
    ack = await rooms.participate(
        ROOM, viewer("ann"), "vote", "k1", {"interaction": "p", "option": "a"}
    )
    assert ack["duplicate"] is False and ack["version"] > 1
    again = await rooms.participate(
        ROOM, viewer("ann"), "vote", "k1", {"interaction": "p", "option": "a"}
    )
    assert again == {**ack, "duplicate": True}
    [change] = await rooms.changes()
    assert set(change.deltas) == {Audience.PUBLIC, Audience.SCREEN, Audience.STAFF}
    assert rooms.snapshot_views(ROOM, Audience.PUBLIC)[1]["p"]["results"]["voters"] == 1
    assert "p" in change.deltas[Audience.PUBLIC].patches  # a vote: a patch, not the view
    assert ("r", "p", ack["version"]) in outbox(rooms).changed  # relayed to other nodes
    assert await rooms.changes() == []  # nothing new


async def test_refusals_are_command_errors_that_change_nothing(service):
    rooms = service
    await poll(rooms)
    before = await rooms.interactions(ROOM, Audience.STAFF)
    for fields, code in (
        ({"interaction": "p", "option": "z"}, "unknown_option"),
        ({"interaction": "nope", "option": "a"}, "unknown_target"),
        ({"interaction": "checkin", "option": "a"}, "unknown_target"),
    ):
        with pytest.raises(CommandError) as refused:
            await rooms.participate(ROOM, viewer("ann"), "vote", "k", fields)
        assert refused.value.code == code
    with pytest.raises(CommandError) as refused:
        await rooms.host(ROOM, "reveal", {"interaction": "p"})
    assert refused.value.code == "illegal_transition"
    assert await rooms.interactions(ROOM, Audience.STAFF) == before


async def test_host_views_show_what_viewers_do_not(service):
    rooms = service
    options = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]
    spec = {
        "id": "h",
        "question": "Q?",
        "kind": "single",
        "options": options,
        "hide_results_until_reveal": True,
    }
    created = await rooms.host(ROOM, "create", {"kind": "poll", "spec": spec})
    assert created["view"]["results"]["hidden"] is False  # the host's view
    public = await rooms.interaction(ROOM, "h", Audience.PUBLIC)
    assert public["results"] == {"poll": "h", "kind": "single", "voters": 0, "hidden": True}


async def test_taps_are_merged_per_tick_and_committed_exactly_once(service):
    rooms = service
    for _ in range(5):
        await rooms.participate(ROOM, viewer("ann"), "react", None, {"emoji": "❤️", "count": 3})
    await rooms.participate(ROOM, viewer("bo"), "react", None, {"emoji": "🔥"})
    rooms.before_tick()
    [event] = outbox(rooms).events
    assert event == {"type": "reaction", "interaction": "reactions", "counts": {"❤️": 15, "🔥": 1}}
    rooms.before_tick()
    assert len(outbox(rooms).events) == 1  # nothing tapped since
    assert (await rooms.interaction(ROOM, "reactions", Audience.PUBLIC))["total"] == 0
    await rooms._commit_bursts()
    await rooms._commit_bursts()  # a second commit of the same totals changes nothing
    view = await rooms.interaction(ROOM, "reactions", Audience.PUBLIC)
    assert view["counts"]["❤️"] == 15 and view["total"] == 16
    await rooms.participate(ROOM, viewer("bo"), "react", None, {"emoji": "❤️", "count": 2})
    await rooms._commit_bursts()
    view = await rooms.interaction(ROOM, "reactions", Audience.PUBLIC)
    assert view["counts"]["❤️"] == 17 and view["total"] == 18


async def test_mutes_and_bans_hold_at_once_on_this_node(service):
    rooms = service
    await rooms.host(ROOM, "mute", {"user": "v-ann", "duration_s": 60})
    with pytest.raises(CommandError) as muted:
        rooms.check_danmaku(ROOM, viewer("ann"), "hi", time.time(), 7)
    assert muted.value.code == "muted" and muted.value.id == 7
    with pytest.raises(CommandError) as muted:
        await rooms.participate(ROOM, viewer("ann"), "post", "k", {"text": "hi"})
    assert muted.value.code == "muted"
    await rooms.host(ROOM, "ban", {"user": "v-bo"})
    assert outbox(rooms).closed[-1] == (ROOM, {"v-bo"}, "banned")
    with pytest.raises(CommandError) as banned:
        await rooms.enter(await rooms.room(ROOM), viewer("bo"))
    assert banned.value.code == "banned"
    host = Identity("v-bo", "Bo", "host", ROOM)  # bans are for viewers only
    await rooms.enter(await rooms.room(ROOM), host)
    listing = await rooms.moderation.listing(ROOM)
    assert [m["user"] for m in listing["muted"]] == ["v-ann"]
    assert listing["banned"] == [{"user": "v-bo"}]


async def test_a_draw_tells_its_winners_privately(service):
    rooms = service
    await rooms.host(ROOM, "create", {"kind": "draw", "spec": {"id": "d", "title": "Prize"}})
    await rooms.participate(ROOM, viewer("ann"), "enter", "k", {"interaction": "d"})
    ran = await rooms.host(ROOM, "run", {"interaction": "d"})
    assert ran["winners"] == ["v-ann"] and ran["view"]["state"]["phase"] == "drawn"
    [(users, notice)] = outbox(rooms).notices
    assert users == ["v-ann"] and notice is not None and notice["kind"] == "draw_won"
    assert (await rooms.audit(ROOM, "d", Audience.STAFF))["winners"] == ["v-ann"]
    public = await rooms.audit(ROOM, "d", Audience.PUBLIC)
    assert public["winners"] == ["v-ann"] and "entrants" not in public
    with pytest.raises(CommandError) as no_audit:
        await rooms.audit(ROOM, "checkin", Audience.PUBLIC)
    assert no_audit.value.code == "invalid_field"


async def test_a_deleted_room_is_refused_with_room_not_found(service):
    rooms = service
    await rooms.delete_room(ROOM)
    assert outbox(rooms).deleted == [ROOM]
    with pytest.raises(CommandError) as gone:
        await rooms.room(ROOM)
    assert gone.value.code == "room_not_found"


async def test_votes_use_the_node_s_copy_of_the_poll_until_a_host_action_changes_it(service):
    """A vote costs one store round trip, its own: the poll's definition is read from
    the store again only after a host action changed it, not after every vote."""
    rooms = service
    await poll(rooms)
    await rooms.changes()  # the flush that reads the new poll into the node's copy
    reads = 0
    store = rooms.store
    original = store.interactions

    async def counted(room_id: str) -> Any:
        nonlocal reads
        reads += 1
        return await original(room_id)

    store.interactions = counted  # type: ignore[method-assign]
    for i in range(20):
        fields = {"interaction": "p", "option": "ab"[i % 2]}
        await rooms.participate(ROOM, viewer(f"v{i}"), "vote", "k", fields)
    assert reads == 0
    await rooms.host(ROOM, "close", {"interaction": "p"})
    reads = 0
    with pytest.raises(CommandError) as closed:  # at once, not one flush later
        await rooms.participate(
            ROOM, viewer("late"), "vote", "k", {"interaction": "p", "option": "a"}
        )
    assert closed.value.code == "not_open" and reads == 1


async def test_a_room_no_longer_served_leaves_no_count_of_arrivals(service):
    """The burst count is taken at a flush of a room whose views changed; a room
    released before that (deleted, or its last viewer here left) must not keep it."""
    rooms = service
    await poll(rooms)
    await rooms.participate(ROOM, viewer("ann"), "vote", "k1", {"interaction": "p", "option": "a"})
    assert rooms.commits._arrived == {ROOM: 1}  # not taken yet: no flush has looked
    rooms.release(ROOM)
    assert rooms.commits._arrived == {}
    assert rooms.take_burst(ROOM) == 0


async def test_the_timeline_is_read_once_for_every_cockpit_that_asks_within_2_s():
    """GET …/timeline (LiveCounts.history): an answer is kept HISTORY_S, so twenty open
    cockpits cost one read of the history per room, and a minute written since shows at
    the next read."""
    from server.rooms.counts import HISTORY_S
    from server.rooms.timeline import TIMELINE_BOX

    store = MemoryStore()
    await store.create_room(RoomRecord(ROOM, "Room", 0.0, 1, {}))
    now = [1_800_000_010.0]
    rooms = RoomService(
        store,
        Registry(),
        Authority("admin-token-xxxxxxxx", SECRET),
        node_id="n1",
        shared=False,
        clock=lambda: now[0],
    )
    rooms.bind(Outbox())
    reads = []
    real = store.records

    async def records(room_id, box):
        reads.append(box)
        return await real(room_id, box)

    store.records = records  # type: ignore[method-assign]
    counts = rooms.counts
    first = [await counts.history(ROOM) for _ in range(20)]
    assert reads.count(TIMELINE_BOX) == 1 and first[0]["minutes"] == [], reads
    served = await rooms.views.serve(await rooms.room(ROOM))
    await counts.timeline.note(ROOM, served.stats, 3, (0, 0))  # this node's minute
    now[0] += HISTORY_S - 0.1
    assert await counts.history(ROOM) == first[0]  # still the kept answer
    now[0] += 0.1
    again = await counts.history(ROOM)
    assert reads.count(TIMELINE_BOX) == 2, reads
    assert [row["online"] for row in again["minutes"]] == [3], again
