"""The hub: connections, the rooms they joined, and the loops that serve them.

The hub moves bytes. It knows connections, rooms, ticks, fan-out, backpressure and
degrade levels, and never what a poll is: commands that change state go to the room
layer (a :class:`~server.hub.ports.Rooms`), which answers and tells the hub, through
the outbox methods below, what to send. Danmaku stay here: they are the stream
(ARCHITECTURE.md, "How a danmaku travels"). Its parts: :mod:`.intake` (frames to
commands), :mod:`.commands` (their routing), :mod:`.fanout` (the tick and the state
flush), :mod:`.governor` (degrade levels), :mod:`.upkeep` (heartbeats, reaping),
:mod:`.presence` and :mod:`.relay` (other nodes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Coroutine
from typing import Any

from protocol.messages import Bridge, hello, store_unavailable
from protocol.messages import online as online_count
from server import __version__
from server.auth import STAFF_ROLES, Identity
from server.backends import Backends
from server.backends.base import BackendUnavailable, RoomRecord
from server.config import Settings, node_name
from server.hub.arrivals import JoinGate, LeaveGate, PresenceNotes
from server.hub.commands import Commands
from server.hub.connection import Connection
from server.hub.degrade import DegradeLevel
from server.hub.fanout import Fanout
from server.hub.governor import Governor
from server.hub.intake import Intake
from server.hub.loops import Loops
from server.hub.ports import Rooms
from server.hub.presence import Presence
from server.hub.quotas import Quotas
from server.hub.reads import Reads
from server.hub.relay import Relay
from server.hub.room import LiveRoom
from server.hub.stream import Stream
from server.hub.upkeep import Upkeep
from server.metrics import Metrics
from server.moderation.ratelimit import FairShare, TokenBucket
from server.origins import Origins

log = logging.getLogger("hudong.hub")


class Hub:
    """Serves this node's connections: admits and detaches them, routes their commands,
    holds the rooms they joined, and runs the tick, state, upkeep and health loops."""

    def __init__(
        self, settings: Settings, backends: Backends, rooms: Rooms, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.store = backends.store
        self.shared = backends.shared
        self.rooms = rooms
        self.metrics = metrics
        self.disconnects = metrics.disconnects
        self.node_id = node_name(settings)
        self.relay = Relay(
            backends.broker,
            backends.store,
            self.node_id,
            metrics,
            self.on_remote,
            enabled=backends.shared,
            replay_keep=settings.hub.replay_size,
            interval_s=settings.hub.relay_ms / 1000,
            on_gap=self.resync,
        )
        self.governor = Governor(settings.hub, metrics)
        self.fanout = Fanout(metrics, self.detach)
        self.connections: set[Connection] = set()
        self.upkeep = Upkeep(settings, metrics, self.detach, self.connections)
        self.presence = Presence(backends.store, self.node_id, metrics)
        self.intake = Intake(settings.limits, rooms.ops)
        self.quotas = Quotas(settings.limits)  # per address and per viewer (server/hub/quotas.py)
        # Joins and leaves in bursts: bounded work per slice (server/hub/arrivals.py).
        self.join_gate = JoinGate()
        self.leave_gate = LeaveGate()
        self.reads = Reads.of(settings.hub)  # held on a busy node (server/hub/reads.py)
        self.presence_notes = PresenceNotes(rooms.note_presence)
        self.live: dict[str, LiveRoom] = {}
        self.server_name = f"hudong/{__version__}"
        self.origins = Origins(settings)  # which pages may open /ws (server/origins.py)
        self.stream = Stream(
            self.live, rooms, self.relay, metrics, self.room_level, self.node_id, self.now
        )
        self.loops = Loops(self)
        # Commands from connections (server/hub/commands.py), as a connection calls them.
        self.commands = Commands(self)
        self.receive = self.commands.receive
        self.handle_async = self.commands.handle_async
        self.reply_error = self.commands.reply_error
        # RoomOutbox.announce: events go into the stream (here, and to the other nodes).
        self.announce = self.stream.announce
        # A ``bridge`` command's handler: the node's bridges (server/bridges/runner.py).
        self.bridged: Callable[[str, Bridge], Coroutine[Any, Any, dict[str, Any]]] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._shutting_down = False
        self._flushed_for_shutdown = False
        self._clock = time.monotonic
        limits = settings.limits
        self._hello_limits = {
            "max_command_bytes": limits.max_command_bytes,
            "max_frame_bytes": limits.max_frame_bytes,
            "max_text_chars": limits.max_text_chars,
            "commands_per_s": _wire_number(limits.viewer_commands_per_s),
            "command_burst": limits.viewer_command_burst,
        }

    # --- lifecycle ---------------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    @property
    def level(self) -> DegradeLevel:
        return self.governor.level

    async def start(self) -> None:
        await self.relay.start()
        await self.rooms.start()
        self.loops.start(self.shared)
        self.presence_notes.start()
        self.metrics.ready.set(1)

    @property
    def ready(self) -> bool:
        """Ready to take viewers: not shutting down nor at degrade level 3 (which refuses
        new connections), and the store and broker answer."""
        if self._shutting_down or self.level >= DegradeLevel.ESSENTIAL:
            return False
        return self.governor.store_ok and (
            not self.shared or bool(getattr(self.relay.broker, "healthy", True))
        )

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background coroutine, keeping a reference until it finishes."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def stop(self) -> None:
        self._shutting_down = True
        self.join_gate.close()
        self.leave_gate.close()
        self.reads.close()
        await self.presence_notes.stop()
        await self.rooms.stop()
        self.tick()
        await self.flush_state()
        await self.relay.stop()
        await self.loops.stop()

    def flush_before_shutdown(self) -> None:
        """Deliver what is pending before connections are told to reconnect."""
        self._shutting_down = True
        if not self._flushed_for_shutdown:
            self._flushed_for_shutdown = True
            self.tick()

    def admission_refusal(self) -> str | None:
        if self._shutting_down:
            return "server shutting down; reconnect to another node"
        if self.level >= DegradeLevel.ESSENTIAL:
            return "server overloaded (degrade level 3); retry later or on another node"
        return None

    def address_refusal(self, conn: Connection) -> str | None:
        return self.quotas.address_refusal(conn.address)

    # --- degrade levels ------------------------------------------------------------------

    def room_level(self, room: LiveRoom) -> DegradeLevel:
        return self.governor.room_level(room)

    def level_of(self, room_id: str) -> DegradeLevel:
        """The level a room is served at here (the node's, for a room without members)."""
        live = self.live.get(room_id)
        return self.room_level(live) if live is not None else self.level

    def set_level(self, automatic: DegradeLevel, why: str) -> None:
        """Apply the controller's level and the floors; tell the rooms whose level moved."""
        before = {room.id: self.room_level(room) for room in self.live.values()}
        self.governor.apply(automatic, why)
        for room in self.live.values():
            level = self.room_level(room)
            if level != before.get(room.id):
                self.notify_level(room, level)

    def set_floor(self, floor: int) -> None:
        """The admin's floor for this node (PUT /api/v1/degrade)."""
        self.governor.floor = floor
        self.set_level(self.governor.controller.level, f"admin floor {floor}")

    def notify_level(self, room: LiveRoom, level: DegradeLevel) -> None:
        notice = {
            "type": "notice",
            "kind": "degrade",
            "level": int(level),
            "name": level.name.lower(),
        }
        for conn in room.members():
            conn.send(notice)

    # --- connections -------------------------------------------------------------------

    def attach(self, conn: Connection) -> None:
        limits = self.settings.limits
        self.connections.add(conn)
        self.metrics.connections.labels(conn.codec.name).inc()
        self.metrics.connections_total.inc()
        now = self.now()
        conn.address_bucket = self.quotas.opened(conn.address, now)
        conn.bucket = TokenBucket(limits.viewer_commands_per_s, limits.viewer_command_burst, now)
        self.upkeep.track(conn, now)
        conn.send(
            hello(
                server=self.server_name,
                heartbeat_ms=round(self.settings.hub.heartbeat_s * 1000),
                limits=self._hello_limits,
            )
        )

    def note_paused(self, conn: Connection) -> None:
        """``conn``'s write buffer passed its high mark (upkeep closes it if it stays)."""
        self.upkeep.note_paused(conn)

    def detach(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        self.upkeep.forget(conn)
        self.quotas.closed(conn.address)
        self.metrics.connections.labels(conn.codec.name).dec()
        room: LiveRoom | None = conn.room
        if room is None or not room.discard(conn, conn.audience):
            return
        if conn.identity is not None and conn.identity.role == "viewer":
            self.quotas.viewer_left(room.id, conn.identity.user_id)
            room.viewers -= 1
            if self.loops.running:
                self.presence_notes.add(room.id, conn.identity, False)
        if not len(room):
            self.metrics.rooms_active.dec()
            if self.shared and self.live.get(room.id) is room:
                self._drop(room)

    def _drop(self, room: LiveRoom) -> None:
        """Stop serving a room without members here: the store holds its state
        (ARCHITECTURE.md: a node follows a room only while it has viewers there)."""
        del self.live[room.id]
        self.stream.dirty.discard(room)
        self.rooms.release(room.id)
        self.spawn(self.relay.unfollow(room.id))

    # --- rooms served here --------------------------------------------------------------

    async def _open(self, record: RoomRecord) -> LiveRoom:
        """Start serving a room on this node: follow it first, so nothing published while
        the store is read is missed, then its replay and presence."""
        limits = self.settings.limits
        budget = FairShare(
            limits.room_danmaku_per_s,
            limits.room_danmaku_burst,
            self.now(),
            fair=limits.room_danmaku_fair,
        )
        live = LiveRoom(record, self.settings.hub.replay_size, budget)
        if self.shared:
            try:
                await self.relay.follow(record.id)
                replay = await self.store.replay(record.id, self.settings.hub.replay_size)
                # This node reports nothing for a room it did not serve: all elsewhere.
                live.online_elsewhere = await self.store.presence(record.id)
            except BackendUnavailable as exc:
                raise store_unavailable() from exc
            live.replay.extend(_without_retracted(replay))
        other = self.live.get(record.id)
        if other is not None:  # another join opened it while we awaited the store
            return other
        self.live[record.id] = live
        return live

    async def serve_room(self, record: RoomRecord) -> LiveRoom:
        """The room as this node serves it, opened without a connection when none is here:
        a bridge sends into it (server/bridges/runner.py)."""
        return self.live.get(record.id) or await self._open(record)

    def snapshot(self, room: LiveRoom, audience: str) -> dict[str, Any]:
        """Everything a client needs to draw the room now (PROTOCOL.md, "Snapshot")."""
        version, views = self.rooms.snapshot_views(room.id, audience)
        return {
            "room": room.record.public(),
            "version": version,  # the label of the views (PROTOCOL.md, "State messages")
            "seq": room.seq,
            "online": room.online,
            "degrade": int(self.room_level(room)),
            "interactions": views,
            "recent": list(room.replay),
        }

    def send_snapshot(self, conn: Connection, asked: int | None = None) -> None:
        """The room's snapshot to ``conn``: it drained, the room changed, or it asked
        (the ``snapshot`` command, with its ``id``), having missed a state message."""
        room: LiveRoom | None = conn.room
        if room is None:
            return
        if conn.paused:
            conn.needs_snapshot = True
            return
        message: dict[str, Any] = {
            "type": "snapshot",
            "snapshot": self.snapshot(room, conn.audience),
        }
        if asked is not None:
            message["id"] = asked
        conn.send(message)

    # --- what the room layer tells the hub (server/rooms/outbox.py) ----------------------

    def interaction_changed(
        self, room_id: str, interaction_id: str, version: int, redefined: bool
    ) -> None:
        self.relay.state(room_id, interaction_id, version, redefined)

    def tell_staff(self, room_id: str, notice: dict[str, Any]) -> None:
        live = self.live.get(room_id)
        if live is not None:
            for conn in live.members():
                if conn.identity is not None and conn.identity.role in STAFF_ROLES:
                    conn.send(notice)

    def close_users(self, room_id: str, user_ids: Collection[str], close: str, reason: str) -> None:
        live = self.live.get(room_id)
        if live is None:
            return
        for conn in live.members():
            identity = conn.identity
            if identity is not None and identity.user_id in user_ids:
                if identity.role not in STAFF_ROLES:
                    conn.close(close, reason)

    def close_sessions(
        self, room_id: str, doomed: Callable[[Identity], bool], close: str, reason: str
    ) -> None:
        live = self.live.get(room_id)
        for conn in live.members() if live is not None else ():
            if conn.identity is not None and doomed(conn.identity):
                conn.close(close, reason)

    def room_updated(self, record: RoomRecord, *, local: bool = True) -> None:
        if local:
            self.relay.room_changed(record.id, record.version)
        live = self.live.get(record.id)
        if live is None or record.version <= live.record.version:
            return
        level_before = self.room_level(live)
        live.record = record
        if self.room_level(live) != level_before:
            self.notify_level(live, self.room_level(live))
        self.fanout.send_snapshots(live, lambda audience: self.snapshot(live, audience))

    def room_deleted(self, room_id: str, *, local: bool = True) -> None:
        if local:
            self.relay.room_deleted(room_id)
        self.rooms.room_gone(room_id)
        live = self.live.pop(room_id, None)
        if live is None:
            return
        self.stream.dirty.discard(live)
        for conn in live.members():
            conn.close("room_deleted", f"room {room_id} was deleted")

    def online(self, room_id: str) -> int:
        live = self.live.get(room_id)
        return live.viewers if live is not None else 0

    # --- from other nodes ---------------------------------------------------------------------

    def on_remote(self, room_id: str, message: dict[str, Any]) -> None:
        """A relay message from another node about a room this node follows."""
        if message.get("x"):
            self.room_deleted(room_id, local=False)
            return
        live = self.live.get(room_id)
        if live is None:
            return
        events = message.get("e")
        if events:
            self.stream.deliver(live, events, message.get("p") or [])
            self.rooms.heard(room_id, events)
            live.replay.extend(e for e in events if e.get("type") == "danmaku")
        for interaction_id, (version, redefined) in (message.get("s") or {}).items():
            # An older node sends no flag (None): its change may be a definition's.
            self.rooms.stale(room_id, interaction_id, version, redefined is not False)
        if "u" in message and message["u"] > live.record.version:
            self.spawn(self._reload(room_id))

    def resync(self, room_ids: Collection[str] | None = None, check: bool = False) -> None:
        """Re-read what may have been missed from the store: every served room (the store
        or the relay was away), or ``room_ids`` (a gap in their relay messages): the room
        records, interactions, mutes and bans, revocations. ``check`` (every 15 s): the
        records, and the rest only where the room's version moved since it was read."""
        if not check:
            self.rooms.resync(room_ids)
            self.presence.written.forget(room_ids)  # the store may have lost them
        for room_id in list(self.live) if room_ids is None else room_ids:
            if room_id in self.live:
                self.spawn(self._reload(room_id, check))

    async def _reload(self, room_id: str, check: bool = False) -> None:
        record = await self.rooms.reload(room_id, check)
        if record is not None:
            self.room_updated(record, local=False)

    # --- what the loops run (server/hub/loops.py) --------------------------------------------

    def tick(self) -> None:
        """One tick: merged taps from the room layer, then every room's pending events."""
        self.rooms.before_tick()
        dirty = self.stream.take_dirty()
        if dirty:
            self.fanout.tick(dirty, self.room_level)

    async def flush_state(self) -> None:
        """Each room's changed views as coalesced ``state`` messages (per audience), and
        its online count when that moved."""
        now, interval, live = self.now(), self.governor.state_interval_s, self.live
        for room, count in self.presence.changed(live.values(), now):
            self.fanout.broadcast(room, online_count(room.id, count))

        def due(room_id: str) -> bool:  # a crowd less often, a burst's acks first
            burst = self.rooms.take_burst(room_id)  # taken for every room: none is kept
            room = live.get(room_id)
            return room is None or room.state_due(now, interval, burst)

        for change in await self.rooms.changes(due):
            if (changed := live.get(change.room_id)) is not None:
                changed.state_sent(now)
                self.fanout.send_state(changed, change.deltas)


def _without_retracted(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The danmaku of a shared replay list, less those a later ``retract`` took back."""
    gone = {e.get("id") for e in events if e.get("type") == "retract"}
    return [e for e in events if e.get("type") == "danmaku" and e.get("id") not in gone]


def _wire_number(value: float) -> int | float:
    """Integral values go on the wire as integers: JSON and MessagePack encoders in
    other languages write 5.0 as 5, and the test vectors must match byte for byte."""
    return int(value) if float(value).is_integer() else value
