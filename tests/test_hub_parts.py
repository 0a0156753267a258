"""The hub's parts without sockets: intake, fan-out, the state flush per audience,
degrade levels, admission, upkeep. Connections are stand-ins with a transport that
records what was written; the room layer is the real one on a memory store."""

from __future__ import annotations

import asyncio
import dataclasses
import zlib
from typing import Any

import pytest

from protocol.codec import JSON, MSGPACK, Codec
from protocol.delta import Delta, HeldViews
from protocol.messages import CommandError, Danmaku, Join, OpRule, Participate, online
from server.auth import Authority, Identity
from server.backends import open_backends
from server.backends.base import RoomRecord
from server.config import Settings
from server.hub.degrade import DegradeLevel
from server.hub.fanout import Fanout
from server.hub.governor import Governor
from server.hub.hub import Hub
from server.hub.intake import Intake
from server.hub.presence import Presence
from server.hub.room import BURST_BACKLOG, STATE_DEFER_S, LiveRoom, state_interval_s
from server.interactions.registry import Registry
from server.metrics import Metrics
from server.moderation.ratelimit import FairShare, TokenBucket
from server.rooms.service import RoomService
from tests.conftest import SECRET

SETTINGS = Settings()


class Transport:
    """Records the bytes written; ``buffered`` stands for what the kernel did not take."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.buffered = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed:
            raise RuntimeError("closed")
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered


class Conn:
    """A connection as the hub's parts use it (server/hub/connection.py)."""

    def __init__(self, codec: Codec = JSON, audience: str = "public") -> None:
        self.codec = codec
        self.audience = audience
        self.deflate = False
        self.transport = Transport()
        self.paused = False
        self.paused_since = 0.0
        self.needs_snapshot = False
        self.closing = False
        self.identity: Identity | None = None
        self.room: Any = None
        self.last_seen = 0.0
        self.opened_at = 0.0
        self.last_danmaku = -1e9
        self.sent: list[dict[str, Any]] = []
        self.closed_with: str | None = None

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def close(self, name: str, reason: str = "", *, abort_after: float = 0.0) -> None:
        self.closing = True
        self.closed_with = name


def payload(frame: bytes) -> bytes:
    """The payload of one unmasked server frame (RFC 6455 section 5.2)."""
    size = frame[1] & 0x7F
    if size < 126:
        return frame[2:]
    return frame[4:] if size == 126 else frame[10:]


def room_with(*conns: Conn) -> LiveRoom:
    room = LiveRoom(RoomRecord("r", "R", 0.0), 50, FairShare(1000, 2000, 0.0))
    for conn in conns:
        room.add(conn, conn.audience)  # type: ignore[arg-type]
    return room


# --- intake ------------------------------------------------------------------------------------


def test_intake_refuses_what_the_protocol_refuses_and_labels_it_boundedly():
    intake = Intake(SETTINGS.limits, {"vote": OpRule()})
    bucket = TokenBucket(5, 10, 0.0)
    take = lambda data: intake.take(JSON, bucket, data, 0.0)  # noqa: E731
    assert take(b"x" * 5000)[1].code == "frame_too_large"  # type: ignore[union-attr]
    assert take(b"{nope")[1].code == "malformed"  # type: ignore[union-attr]
    label, refused = take(b'{"op": "no-such-op"}')
    assert label == "invalid" and refused.code == "unknown_op"  # type: ignore[union-attr]
    label, command = take(b'{"op": "vote", "interaction": "p", "key": "k", "option": "a"}')
    assert label == "vote" and isinstance(command, Participate) and command.key == "k"
    label, command = take(b'{"op": "danmaku", "id": 3, "text": " hi "}')
    assert isinstance(command, Danmaku) and command.text == "hi"
    for _ in range(10):
        take(b'{"op": "ping"}')
    label, refused = take(b'{"op": "ping", "id": 9}')
    assert isinstance(refused, CommandError) and refused.code == "rate_limited"
    assert refused.id == 9 and refused.extra["retry_after_ms"] > 0


# --- fan-out -------------------------------------------------------------------------------------


def test_a_batch_is_encoded_once_per_codec_and_the_same_bytes_go_to_everyone():
    metrics = Metrics()
    fanout = Fanout(metrics, detach=lambda conn: None)
    json_a, json_b, staff = Conn(JSON), Conn(JSON), Conn(JSON, "staff")
    binary = Conn(MSGPACK)
    slow = Conn(JSON)
    slow.paused = True
    room = room_with(json_a, json_b, staff, binary, slow)
    room.pending = [{"type": "danmaku", "id": "n.1", "text": "666"}]
    fanout.tick([room], lambda r: DegradeLevel.NORMAL)
    assert json_a.transport.written == json_b.transport.written == staff.transport.written
    [frame] = json_a.transport.written
    assert JSON.decode(payload(frame))["events"][0]["text"] == "666"
    assert MSGPACK.decode(payload(binary.transport.written[0]))["seq"] == 1
    assert slow.transport.written == [] and slow.needs_snapshot
    assert metrics.registry.get_sample_value("hudong_batch_encodes_total", {"codec": "json"}) == 1
    assert metrics.registry.get_sample_value("hudong_drops_total", {"reason": "slow_consumer"}) == 1


def test_one_deflated_frame_for_every_compressing_viewer_and_the_plain_one_for_the_rest():
    metrics = Metrics()
    fanout = Fanout(metrics, detach=lambda conn: None)
    zipped_a, zipped_b, plain = Conn(JSON), Conn(JSON, "staff"), Conn(JSON)
    zipped_a.deflate = zipped_b.deflate = True
    room = room_with(zipped_a, zipped_b, plain)
    texts = ["哈哈哈哈哈", "前方高能", "666", "哈哈哈哈哈", "主播加油😂"] * 4
    room.pending = [{"type": "danmaku", "id": f"n.{i}", "text": t} for i, t in enumerate(texts)]
    fanout.tick([room], lambda r: DegradeLevel.NORMAL)
    [frame] = zipped_a.transport.written
    assert zipped_b.transport.written[0] is frame  # built once, written to both
    [plain_frame] = plain.transport.written
    assert frame[0] & 0x40 and not plain_frame[0] & 0x40  # RSV1: compressed (RFC 7692)
    inflated = zlib.decompressobj(-15).decompress(payload(frame) + b"\x00\x00\xff\xff")
    assert inflated == payload(plain_frame)
    assert [e["text"] for e in JSON.decode(inflated)["events"]] == texts
    assert len(frame) * 3 < len(plain_frame)
    sent = metrics.registry.get_sample_value("hudong_bytes_out_total", {"codec": "json"})
    assert sent == 2 * len(frame) + len(plain_frame)
    # A batch under deflate.MIN_BYTES goes plain to everyone: the same bytes.
    room.pending = [{"type": "danmaku", "id": "n.99", "text": "6"}]
    fanout.tick([room], lambda r: DegradeLevel.NORMAL)
    assert zipped_a.transport.written[1] == plain.transport.written[1]
    assert not zipped_a.transport.written[1][0] & 0x40


def test_a_closed_transport_is_detached_without_stopping_the_others():
    gone: list[Conn] = []
    metrics = Metrics()
    fanout = Fanout(metrics, detach=gone.append)  # type: ignore[arg-type]
    broken, broken_zipped, fine = Conn(), Conn(), Conn()
    broken.transport.closed = broken_zipped.transport.closed = True
    broken_zipped.deflate = True
    room = room_with(broken, broken_zipped, fine)
    room.pending = [{"type": "danmaku", "id": "n.1", "text": "x"}]
    fanout.tick([room], lambda r: DegradeLevel.NORMAL)
    assert set(gone) == {broken, broken_zipped} and len(fine.transport.written) == 1
    # only what was written is counted
    sample = metrics.registry.get_sample_value
    assert sample("hudong_frames_out_total", {"codec": "json"}) == 1
    assert sample("hudong_bytes_out_total", {"codec": "json"}) == len(fine.transport.written[0])


def test_state_goes_to_each_audience_once_per_codec():
    fanout = Fanout(Metrics(), detach=lambda conn: None)
    viewer, screen, host = Conn(JSON, "public"), Conn(JSON, "screen"), Conn(MSGPACK, "staff")
    room = room_with(viewer, screen, host)
    views = {
        "public": {"p": {"results": {"hidden": True}}},
        "staff": {"p": {"results": {"hidden": False}}},
    }
    deltas = {
        "public": Delta(6, 7, views["public"]),
        "staff": Delta(5, 7, {}, {"p": {"results": {"hidden": False}}}),
    }
    fanout.send_state(room, deltas)
    public = JSON.decode(payload(viewer.transport.written[0]))
    assert (public["base"], public["version"], public["interactions"]) == (6, 7, views["public"])
    assert "patches" not in public
    staff = MSGPACK.decode(payload(host.transport.written[0]))
    assert (staff["base"], staff["interactions"], staff["patches"]) == (5, {}, views["staff"])
    assert screen.transport.written == []  # nothing changed for screens


# --- degrade levels and upkeep ------------------------------------------------------------


def test_a_moved_online_count_reaches_everyone_at_most_once_a_second():
    fanout = Fanout(Metrics(), detach=lambda conn: None)
    viewer, screen, host = Conn(JSON, "public"), Conn(JSON, "screen"), Conn(MSGPACK, "staff")
    room = room_with(viewer, screen, host)

    def told(now: float) -> list[int]:
        """What the hub's state flush does at ``now``; the counts it sent."""
        due = Presence.changed([room], now)
        for r, count in due:
            fanout.broadcast(r, online(r.id, count))
        return [count for _, count in due]

    room.viewers = 1
    assert told(10.0) == [1]
    room.viewers = 2
    assert told(10.5) == []  # moved, but the room heard a count half a second ago
    assert told(11.0) == [2]
    assert told(15.0) == []  # nothing moved
    room.online_elsewhere = 38  # presence read the count on the other nodes
    assert told(15.1) == [40]
    assert [JSON.decode(payload(f))["online"] for f in viewer.transport.written] == [1, 2, 40]
    assert screen.transport.written == viewer.transport.written
    assert MSGPACK.decode(payload(host.transport.written[-1])) == {
        "type": "online",
        "room": "r",
        "online": 40,
    }


def test_a_slow_tick_is_caught_up_a_backlogged_one_escalates_and_floors_only_raise():
    governor = Governor(SETTINGS.hub, Metrics())
    assert governor.note_tick(0.09, 0) is None
    assert governor.note_tick(0.6, 0) is None  # six times the 100 ms budget: caught up
    why = governor.note_tick(0.05, 200_000_000)  # but 200 MB left in viewers' buffers
    assert why is not None and "200.0 MB buffered" in why
    assert governor.apply(governor.controller.level, why) and governor.level == 2
    governor.floor = 3
    governor.apply(DegradeLevel.NORMAL, "floor")
    assert governor.level == 3
    room = room_with()
    room.record = RoomRecord("r", "R", 0.0, settings={"degrade_floor": 3})
    governor.floor = 0
    governor.apply(DegradeLevel.NORMAL, "calm")
    assert governor.level == 0 and governor.room_level(room) == 3


def test_buffered_bytes_are_the_worst_tick_plus_the_paused_connections():
    governor = Governor(SETTINGS.hub, Metrics())
    governor.note_tick(0.01, 1000)
    governor.note_tick(0.01, 5000)
    paused = Conn()
    paused.transport.buffered = 300_000
    assert governor.measure([paused]).buffered_bytes == 305_000  # type: ignore[list-item]
    assert governor.measure([]).buffered_bytes == 0  # a new second


# --- the hub with the room layer, no sockets ----------------------------------------------


@pytest.fixture
async def hub() -> Any:
    backends = open_backends("memory://")
    await backends.store.create_room(RoomRecord("r", "R", 0.0))
    rooms = RoomService(
        backends.store, Registry(), Authority("a" * 40, SECRET), node_id="n", shared=False
    )
    hub = Hub(SETTINGS, backends, rooms, Metrics())
    rooms.bind(hub)
    return hub


async def joined(hub: Hub, role: str, codec: Codec = JSON) -> Conn:
    conn = Conn(codec)
    hub.connections.add(conn)  # type: ignore[arg-type]
    conn.bucket = TokenBucket(500, 1000, 0.0)  # type: ignore[attr-defined]
    user = f"{role}-{len(hub.connections)}"
    token, _ = hub.rooms.authority.mint("r", role, user, role, 60)  # type: ignore[attr-defined]
    await hub.handle_async(conn, Join(1, "r", token, None))  # type: ignore[arg-type]
    assert conn.sent[-1]["type"] == "joined", conn.sent
    return conn


async def test_join_then_a_vote_reaches_each_audience_through_one_state_flush(hub):
    viewer = await joined(hub, "viewer")
    screen = await joined(hub, "screen")
    host = await joined(hub, "host")
    assert (viewer.audience, screen.audience, host.audience) == ("public", "screen", "staff")
    options = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]
    spec = {
        "id": "p",
        "question": "Q?",
        "kind": "single",
        "options": options,
        "hide_results_until_reveal": True,
    }
    await hub.rooms.host("r", "create", {"kind": "poll", "spec": spec})
    await hub.rooms.host("r", "open", {"interaction": "p"})
    await hub.flush_state()
    held = {}
    for conn in (viewer, screen, host):  # each kept current from its snapshot and deltas
        held[conn] = HeldViews()
        held[conn].snapshot(conn.sent[0]["snapshot"])
        for frame in conn.transport.written:
            message = JSON.decode(payload(frame))
            if message["type"] == "state":
                assert held[conn].state(message) is not None
        conn.transport.written.clear()
    vote = Participate(2, "vote", "k1", {"interaction": "p", "option": "a"})
    await hub.handle_async(viewer, vote)  # type: ignore[arg-type]
    ack = viewer.sent[-1]
    assert ack["type"] == "ack" and ack["id"] == 2 and ack["duplicate"] is False
    await hub.flush_state()
    for conn in (viewer, host):
        [frame] = conn.transport.written
        assert held[conn].state(JSON.decode(payload(frame))) is not None
    public = held[viewer].views["p"]
    staff = held[host].views["p"]
    assert public["results"] == {"poll": "p", "kind": "single", "voters": 1, "hidden": True}
    assert staff["results"]["options"][0]["count"] == 1
    assert screen.transport.written  # screens see what viewers see


def test_a_crowd_gets_its_state_less_often_so_one_room_costs_at_most_a_tenth_of_a_core():
    level_0 = 0.25
    assert state_interval_s(1, level_0) == level_0
    assert state_interval_s(2_500, level_0) == level_0
    assert state_interval_s(5_000, level_0) == pytest.approx(0.5)
    assert state_interval_s(20_000, level_0) == state_interval_s(100_000, level_0) == 2.0
    assert state_interval_s(5_000, 0.75) == 0.75  # a degraded node's longer interval wins


async def test_a_crowded_room_keeps_its_changes_until_its_state_is_due(hub, monkeypatch):
    clock = [1000.0]
    hub._clock = lambda: clock[0]
    viewers = [await joined(hub, "viewer") for _ in range(3)]
    options = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]
    spec = {"id": "p", "question": "Q?", "kind": "single", "options": options}
    await hub.rooms.host("r", "create", {"kind": "poll", "spec": spec})
    await hub.rooms.host("r", "open", {"interaction": "p"})
    await hub.flush_state()  # the room's first state: it was never sent one
    # Three connections cost as much as 3,000 would: the room's state is due every 0.6 s.
    monkeypatch.setattr("server.hub.room.STATE_WRITE_S", 2e-2)
    written = [len(v.transport.written) for v in viewers]
    vote = Participate(2, "vote", "k1", {"interaction": "p", "option": "a"})
    await hub.handle_async(viewers[0], vote)  # type: ignore[arg-type]
    clock[0] += 0.3
    await hub.flush_state()
    assert [len(v.transport.written) for v in viewers] == written  # kept, not dropped
    clock[0] += 0.3
    await hub.flush_state()
    for viewer, before in zip(viewers, written, strict=True):
        [frame] = viewer.transport.written[before:]
        message = JSON.decode(payload(frame))
        changed = {**message["interactions"], **message.get("patches", {})}
        assert message["type"] == "state" and "p" in changed


async def test_a_burst_gets_its_acks_before_its_state_for_at_most_a_second(hub, monkeypatch):
    clock = [1000.0]
    hub._clock = lambda: clock[0]
    viewer = await joined(hub, "viewer")
    options = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]
    spec = {"id": "p", "question": "Q?", "kind": "single", "options": options}
    await hub.rooms.host("r", "create", {"kind": "poll", "spec": spec})
    await hub.rooms.host("r", "open", {"interaction": "p"})
    await hub.flush_state()
    burst = [BURST_BACKLOG]  # a burst's votes arrived since the last flush, or queued
    monkeypatch.setattr(hub.rooms, "take_burst", lambda room_id: burst[0])
    vote = Participate(2, "vote", "k1", {"interaction": "p", "option": "a"})
    await hub.handle_async(viewer, vote)  # type: ignore[arg-type]
    before = len(viewer.transport.written)
    clock[0] += 0.5
    await hub.flush_state()  # the first flush that holds it back
    assert len(viewer.transport.written) == before  # held while the burst goes on
    clock[0] += STATE_DEFER_S - 0.25
    await hub.flush_state()
    assert len(viewer.transport.written) == before  # still within STATE_DEFER_S of it
    clock[0] += 0.25
    await hub.flush_state()  # but never longer
    assert len(viewer.transport.written) == before + 1

    async def vote_then_flush(n: int, option: str) -> int:
        await hub.handle_async(
            viewer, Participate(n, "vote", f"k{n}", {"interaction": "p", "option": option})
        )  # type: ignore[arg-type]
        clock[0] += 0.25
        await hub.flush_state()
        return len(viewer.transport.written) - before

    burst[0] = BURST_BACKLOG - 1  # an ordinary flow does not hold it
    assert await vote_then_flush(3, "b") == 2
    burst[0] = BURST_BACKLOG  # the next burst is held from its own first flush
    assert await vote_then_flush(4, "a") == 2


async def test_a_settings_change_sends_one_snapshot_per_audience_the_same_bytes_to_all(hub):
    viewers = [await joined(hub, "viewer") for _ in range(3)]
    packer = await joined(hub, "viewer", MSGPACK)
    host = await joined(hub, "host")
    live = hub.live["r"]
    for conn in (*viewers, packer, host):
        conn.transport.written.clear()
    viewers[2].paused = True  # over its high mark: a snapshot of its own when it drains
    settings = {**live.record.settings, "mode": "slow"}
    hub.room_updated(
        dataclasses.replace(live.record, version=live.record.version + 1, settings=settings)
    )
    [first], [second] = viewers[0].transport.written, viewers[1].transport.written
    assert first is second  # built and encoded once, written to both
    message = JSON.decode(payload(first))
    assert (
        message["type"] == "snapshot" and message["snapshot"]["room"]["settings"]["mode"] == "slow"
    )
    [packed] = packer.transport.written
    assert MSGPACK.decode(payload(packed))["snapshot"] == message["snapshot"]
    [staff] = host.transport.written
    assert staff is not first and JSON.decode(payload(staff))["type"] == "snapshot"
    assert viewers[2].transport.written == [] and viewers[2].needs_snapshot


async def test_a_screen_may_not_vote_and_level_3_refuses_new_connections(hub):
    screen = await joined(hub, "screen")
    with pytest.raises(CommandError) as refused:
        await hub.handle_async(screen, Participate(3, "vote", "k", {"interaction": "p"}))  # type: ignore[arg-type]
    assert refused.value.code == "forbidden"
    assert hub.admission_refusal() is None
    hub.set_floor(3)
    assert "level 3" in (hub.admission_refusal() or "")
    notices = [m for m in screen.sent if m.get("kind") == "degrade"]
    assert notices[-1]["level"] == 3
    await asyncio.sleep(0)
