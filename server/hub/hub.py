"""The hub: rooms, commands, the tick loop and fan-out (ARCHITECTURE.md, "The hot path").

Fan-out costs viewers x ticks, not viewers x messages: commands append events to
their room's pending list; every ``hub.tick_ms`` the tick loop turns each room's
pending list into one ``batch`` message, encodes it once per codec in use, frames
it once, and writes the same bytes to every local connection of the room. Nothing
in that loop awaits or encodes per viewer. A connection whose transport paused
writing (its buffer is over the high-water mark) is skipped and counted as a drop;
it gets a fresh snapshot when it drains (PROTOCOL.md, "Slow consumers").
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from typing import Any

from protocol.codec import Codec, DecodeError
from protocol.codes import CLOSE_BY_NAME
from protocol.framing import server_frame, server_ping
from protocol.messages import (
    OPS,
    Checkin,
    CommandError,
    Danmaku,
    Host,
    Join,
    Participate,
    Ping,
    ack,
    batch,
    error,
    hello,
    joined,
    parse_command,
    pong,
    state,
)
from server import __version__
from server.auth import SENDING_ROLES, STAFF_ROLES, AuthError, Authority, Identity
from server.backends import Backends
from server.backends.base import BackendUnavailable, RoomNotFound, RoomRecord
from server.config import Settings
from server.hub.activities import CHECKIN_ID, HOST_ACTIONS, WALL_ID, RoomActivities
from server.hub.connection import Connection
from server.hub.degrade import (
    POLICIES,
    DegradeController,
    DegradeLevel,
    Signals,
    called_for_by_tick,
    effective,
    shape,
)
from server.hub.relay import Relay
from server.hub.room import LiveRoom
from server.interactions import polls
from server.interactions import wall as wall_rules
from server.interactions.base import InteractionError
from server.metrics import Metrics
from server.moderation.ratelimit import TokenBucket

log = logging.getLogger("hudong.hub")

MAINTENANCE_INTERVAL_S = 1.0
LOOP_LAG_INTERVAL_S = 0.5
HEALTH_INTERVAL_S = 1.0
PRESENCE_INTERVAL_S = 2.0
PRESENCE_TTL_S = 10.0
RESYNC_INTERVAL_S = 15.0
STATE_INTERVAL_S = 0.25  # coalesced state updates: about 4 per second (degrade level 0)
GUEST_TOKEN_TTL_S = 24 * 3600  # an anonymous viewer's token: its identity across reconnects
# Muted and banned users of a room: one store record per user, in a box whose name no
# interaction id can take ('~' is not allowed in ids). Its "interaction id" in stale
# marks and relay messages is the same name.
MODERATION_BOX = "~moderation"
MODERATION_ACTIONS = ("retract", "mute", "unmute", "ban", "unban")
DEFAULT_MUTE_S = 600
MAX_MUTE_S = 7 * 24 * 3600
MAX_USER_ID_CHARS = 128
MAX_EVENT_ID_CHARS = 200


class Hub:
    def __init__(
        self, settings: Settings, backends: Backends, authority: Authority, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.store = backends.store
        self.shared = backends.shared
        self.authority = authority
        self.metrics = metrics
        self.node_id = settings.server.node_id or f"{socket.gethostname()}-{os.getpid()}"
        self.relay = Relay(
            backends.broker,
            backends.store,
            self.node_id,
            metrics,
            self.on_remote,
            enabled=backends.shared,
            replay_keep=settings.hub.replay_size,
        )
        self.store_ok = True
        self.activities = RoomActivities(self.store)
        self.degrade = DegradeController(settings.hub.degrade_relax_after_s)
        self.floor = settings.hub.degrade_floor  # the admin's floor for this node
        self.level = effective(0, self.floor)
        self.signals = Signals()
        self._ingested = 0
        self._tick_time = 0.0
        self._ticks = 0
        self._tick_buffered = 0  # bytes left in buffers by the writes of the current tick
        self._last_lag = 0.0
        self._store_latency = 0.0
        self._background: set[asyncio.Task[Any]] = set()
        self.server_name = f"hudong/{__version__}"
        self.rooms: dict[str, LiveRoom] = {}
        self.connections: set[Connection] = set()
        self._dirty: set[LiveRoom] = set()
        self._state_rooms: set[LiveRoom] = set()
        self._event_counter = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._shutting_down = False
        self._flushed_for_shutdown = False
        self._ping_frame = server_ping()
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

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await self.relay.start()
        # Word clouds segment Chinese with jieba, whose dictionary takes about a second
        # to load, holding the GIL: load it before serving, not on the first text vote
        # (where it would stall every viewer and trip the degrade levels).
        polls.warm_up()
        self._tasks = [
            loop.create_task(self._tick_loop(), name="hudong-tick"),
            loop.create_task(self._state_loop(), name="hudong-state"),
            loop.create_task(self._maintenance_loop(), name="hudong-maintenance"),
            loop.create_task(self._loop_lag_probe(), name="hudong-loop-lag"),
        ]
        if self.shared:
            self._tasks += [
                loop.create_task(self._health_loop(), name="hudong-health"),
                loop.create_task(self._presence_loop(), name="hudong-presence"),
            ]
        self.metrics.ready.set(1)

    @property
    def ready(self) -> bool:
        """Ready to take viewers: not shutting down nor at degrade level 3 (which refuses
        new connections), and the store and broker answer."""
        if self._shutting_down or self.level >= DegradeLevel.ESSENTIAL:
            return False
        return self.store_ok and (
            not self.shared or bool(getattr(self.relay.broker, "healthy", True))
        )

    def spawn(self, coro: Any) -> None:
        """Run a background coroutine, keeping a reference until it finishes."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def stop(self) -> None:
        self._shutting_down = True
        self.tick()
        self.flush_state()
        await self.relay.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []

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

    # --- degrade levels ------------------------------------------------------------------

    def room_level(self, room: LiveRoom) -> DegradeLevel:
        return effective(self.level, int(room.record.settings.get("degrade_floor", 0)))

    def measure(self) -> Signals:
        """The last second's signals (called once a second by the maintenance loop)."""
        buffered = 0
        for conn in self.connections:
            if conn.transport is not None:
                buffered += conn.transport.get_write_buffer_size()
        budget = max(self.settings.hub.tick_ms, POLICIES[self.level].tick_ms) / 1000
        signals = Signals(
            loop_lag_s=self._last_lag,
            # The mean tick, not the slowest: one slow tick among ten (a burst of
            # joins, a GC pause) does not mean the node cannot keep up.
            tick_ratio=(self._tick_time / self._ticks / budget) if self._ticks else 0.0,
            buffered_bytes=buffered,
            ingest_per_s=self._ingested / MAINTENANCE_INTERVAL_S,
            store_latency_s=self._store_latency,
            store_ok=self.store_ok,
        )
        self._ingested = 0
        self._tick_time = 0.0
        self._ticks = 0
        self._last_lag = 0.0
        return signals

    def set_level(self, auto: DegradeLevel, reason: str) -> None:
        """Apply the controller's level and the floors; log, count and tell clients."""
        before = {room.id: self.room_level(room) for room in self.rooms.values()}
        level = effective(auto, self.floor)
        if level != self.level:
            log.warning("degrade level %d -> %d (%s)", self.level, level, reason)
            self.metrics.degrade_changes.labels(str(int(level))).inc()
        self.level = level
        self.metrics.degrade_level.set(int(level))
        for room in self.rooms.values():
            now_level = self.room_level(room)
            if now_level != before.get(room.id):
                self.notify_level(room, now_level)

    def notify_level(self, room: LiveRoom, level: DegradeLevel) -> None:
        notice = {
            "type": "notice",
            "kind": "degrade",
            "level": int(level),
            "name": level.name.lower(),
        }
        for conns in room.members.values():
            for conn in conns:
                conn.send(notice)

    # --- connections -------------------------------------------------------------------

    def attach(self, conn: Connection) -> None:
        limits = self.settings.limits
        self.connections.add(conn)
        self.metrics.connections.labels(conn.codec.name).inc()
        self.metrics.connections_total.inc()
        conn.bucket = TokenBucket(
            limits.viewer_commands_per_s, limits.viewer_command_burst, self.now()
        )
        conn.send(
            hello(
                server=self.server_name,
                heartbeat_ms=round(self.settings.hub.heartbeat_s * 1000),
                limits=self._hello_limits,
            )
        )

    def detach(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        self.metrics.connections.labels(conn.codec.name).dec()
        room = conn.room
        if room is not None:
            members = room.members[conn.codec]
            if conn not in members:
                return
            members.discard(conn)
            if conn in room.staff:
                room.staff.discard(conn)
                if not room.staff:
                    room.staff_views.clear()
                    room.staff_dirty.clear()
            if conn.identity is not None and conn.identity.role == "viewer":
                room.viewers -= 1
                if self._tasks:
                    self.spawn(
                        self._best_effort(
                            self.activities.note_presence(room.id, conn.identity, False)
                        )
                    )
            if not len(room):
                self.metrics.rooms.dec()
                if self.shared and self.rooms.get(room.id) is room:
                    # The store holds the room's state; stop following it until a
                    # viewer joins again (ARCHITECTURE.md: subscribe only with viewers).
                    del self.rooms[room.id]
                    self._dirty.discard(room)
                    self.spawn(self.relay.unfollow(room.id))

    # --- commands ----------------------------------------------------------------------

    def receive(self, conn: Connection, data: bytes) -> None:
        """Handle one complete data message from ``conn`` (PROTOCOL.md, "Commands")."""
        limits = self.settings.limits
        assert conn.bucket is not None
        self._ingested += 1
        wait = conn.bucket.take(self.now())
        if len(data) > limits.max_command_bytes:
            self._refuse(
                conn,
                "invalid",
                CommandError(
                    "frame_too_large",
                    f"the frame has {len(data)} bytes; the limit is {limits.max_command_bytes}",
                    limit=limits.max_command_bytes,
                ),
            )
            return
        try:
            obj = conn.codec.decode(data)
        except DecodeError as exc:
            self._refuse(conn, "invalid", CommandError("malformed", str(exc)))
            return
        op = obj.get("op") if isinstance(obj, dict) else None
        op_label = op if op in OPS else "invalid"
        if wait:
            cid = obj.get("id") if isinstance(obj, dict) else None
            self._refuse(
                conn,
                op_label,
                CommandError(
                    "rate_limited",
                    f"too many commands; at most {conn.bucket.rate:g} per second",
                    cid if type(cid) is int else None,
                    retry_after_ms=max(1, round(wait * 1000)),
                ),
            )
            return
        try:
            command = parse_command(obj, max_text_chars=limits.max_text_chars)
        except CommandError as err:
            self._refuse(conn, op_label, err)
            return
        if conn.busy or isinstance(command, (Join, Checkin, Participate, Host)):
            conn.enqueue(command)  # keeps this connection's commands in order
            return
        try:
            self.handle_sync(conn, command)
        except CommandError as err:
            self.reply_error(conn, command, err)

    def _refuse(self, conn: Connection, op_label: str, err: CommandError) -> None:
        self.metrics.commands.labels(op_label, err.code).inc()
        conn.send(error(err))

    def reply_error(self, conn: Connection, command: Any, err: CommandError) -> None:
        if err.id is None:
            err.id = getattr(command, "id", None)
        self.metrics.commands.labels(_op_of(command), err.code).inc()
        conn.send(error(err))

    def handle_sync(self, conn: Connection, command: Any) -> None:
        if isinstance(command, Danmaku):
            self._danmaku(conn, command)
        elif isinstance(command, Ping):
            self.metrics.commands.labels("ping", "ok").inc()
            conn.send(pong(command.id))
        else:  # pragma: no cover - every op is listed above or in handle_async
            raise CommandError("unknown_op", f"unhandled command {command!r}")

    async def handle_async(self, conn: Connection, command: Any) -> None:
        try:
            if isinstance(command, Join):
                await self._join(conn, command)
            elif isinstance(command, Checkin):
                await self._participate(conn, command.id, "checkin", command.key, {})
            elif isinstance(command, Participate):
                await self._participate(conn, command.id, command.op, command.key, command.fields)
            elif isinstance(command, Host):
                await self._host(conn, command)
            else:
                self.handle_sync(conn, command)
        except BackendUnavailable as exc:
            self.metrics.store_errors.inc()
            self.store_ok = False
            raise CommandError(
                "store_unavailable",
                "the store cannot be reached; try again shortly",
                getattr(command, "id", None),
                retry_after_ms=1000,
            ) from exc
        except InteractionError as exc:
            raise CommandError(
                exc.code, exc.message, getattr(command, "id", None), **exc.extra
            ) from exc

    async def _join(self, conn: Connection, cmd: Join) -> None:
        if conn.room is not None:
            raise CommandError("already_joined", f"already joined room {conn.room.id!r}", cmd.id)
        try:
            record = await self.store.get_room(cmd.room)
        except RoomNotFound:
            raise CommandError("room_not_found", f"no room {cmd.room!r}", cmd.id) from None
        guest_token: str | None = None
        if cmd.token is not None:
            try:
                identity = self.authority.verify(cmd.token, cmd.room)
            except AuthError as exc:
                raise CommandError("unauthorized", str(exc), cmd.id) from None
        elif not record.settings.get("allow_anonymous", True):
            raise CommandError(
                "anonymous_not_allowed", f"room {cmd.room!r} needs a token to join", cmd.id
            )
        else:
            user_id = f"guest-{secrets.token_hex(5)}"
            identity = Identity(user_id, cmd.name or f"guest {user_id[-4:]}", "viewer", cmd.room)
            # The guest's own token: joining again with it (after a reconnect) keeps the
            # identity, so retried commands stay exactly-once (PROTOCOL.md, "join").
            guest_token, _ = self.authority.mint(
                cmd.room, "viewer", user_id, identity.name, GUEST_TOKEN_TTL_S
            )
        live = self.rooms.get(record.id)
        if live is None:
            live = await self._open_room(record)
        elif record.version > live.record.version:
            live.record = record
        if conn.closing or conn not in self.connections:
            return  # the connection went away while the store answered
        staff = identity.role in STAFF_ROLES
        # Bans (like mutes) are for viewers: a moderator cannot lock the host out. A
        # staff token is taken back by letting it expire, not by a ban.
        if not staff and live.moderation.get(identity.user_id, {}).get("banned"):
            raise CommandError("banned", "a moderator banned you from this room", cmd.id)
        if staff and not live.staff:
            await self._refresh_staff_views(live)
            if conn.closing or conn not in self.connections:
                return
        if staff:
            limits = self.settings.limits
            conn.bucket = TokenBucket(
                limits.staff_commands_per_s, limits.staff_command_burst, self.now()
            )
        conn.identity = identity
        conn.room = live
        if not len(live):
            self.metrics.rooms.inc()
        live.members[conn.codec].add(conn)
        if staff:
            live.staff.add(conn)
        elif identity.role == "viewer":
            live.viewers += 1
        self.metrics.commands.labels("join", "ok").inc()
        if live.stale:
            await self._refresh_views(live)  # a snapshot is never older than the store
        if identity.role == "viewer":
            self.spawn(self._best_effort(self.activities.note_presence(live.id, identity, True)))
        live.degrade_level = int(self.room_level(live))
        conn.send(
            joined(
                cmd.id,
                identity.public(),
                live.snapshot(staff=staff),
                token=guest_token,
            )
        )

    async def _open_room(self, record: RoomRecord) -> LiveRoom:
        """Start serving a room on this node: its state from the store, then follow it."""
        limits = self.settings.limits
        bucket = TokenBucket(limits.room_danmaku_per_s, limits.room_danmaku_burst, self.now())
        live = LiveRoom(record, self.settings.hub.replay_size, bucket, shared=self.shared)
        if self.shared:
            # Follow first, so nothing published while we read the store is missed.
            await self.relay.follow(record.id)
            replay = await self.store.replay(record.id, self.settings.hub.replay_size)
            live.replay.extend(_without_retracted(replay))
            live.online_total = await self.store.presence(record.id)
        live.moderation = await self.store.records(record.id, MODERATION_BOX)
        await self._refresh_views(live, everything=True)
        live.state_dirty.clear()
        other = self.rooms.get(record.id)
        if other is not None:  # another join opened it while we awaited the store
            return other
        self.rooms[record.id] = live
        return live

    async def _participate(
        self, conn: Connection, cid: int | None, op: str, key: str, fields: dict[str, Any]
    ) -> None:
        """A viewer's state-changing command: acknowledged after the store committed it."""
        room, identity = _member(conn, cid, op, SENDING_ROLES)
        if op in ("ask", "post") and identity.role not in STAFF_ROLES:
            self._check_muted(room, identity, cid)
        # Definitions are re-read at every state flush when they change; between two,
        # the node's copy decides whether the interaction is open.
        known = room.definitions if not room.stale else None
        result = await self.activities.participate(
            room.id,
            identity,
            op,
            fields,
            key,
            known,
            wall_moderation=str(room.record.settings.get("wall_moderation", "pre")),
        )
        self.store_ok = True
        if result.status == "already_done" and op != "checkin":
            raise CommandError("already_done", f"this viewer has done {op} here already", cid)
        iid = {"checkin": CHECKIN_ID, "post": WALL_ID}.get(op) or str(fields["interaction"])
        if result.status == "applied":
            self.mark_changed(room, iid, result.version)
            room.stats.add("posts" if op == "post" else "votes", identity.user_id, time.time())
        self.metrics.commands.labels(op, "ok").inc()
        reply: dict[str, Any] = {
            "version": result.version,
            "duplicate": result.status == "duplicate",
        }
        if op == "checkin":
            reply["count"] = result.counters.get("n", 0)
            reply["already"] = result.status == "already_done"
        elif op == "post":
            reply["post"] = wall_rules.post_id(identity.user_id, key)
            reply["status"] = (
                "approved" if room.record.settings.get("wall_moderation") == "post" else "pending"
            )
        conn.send(ack(cid, **reply))

    async def _host(self, conn: Connection, cmd: Host) -> None:
        """A host or moderator operation over the WebSocket (PROTOCOL.md, "Host operations")."""
        room, _ = _member(conn, cmd.id, cmd.action, STAFF_ROLES)
        result = await self.host_operation(room.id, cmd.action, cmd.fields)
        self.metrics.commands.labels("host", "ok").inc()
        conn.send(ack(cmd.id, **result))

    async def host_operation(
        self, room_id: str, action: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """Create an interaction or act on one, or moderate; shared by REST and WebSocket."""
        if action in MODERATION_ACTIONS:
            return await self.moderate(room_id, action, fields)
        if action == "create":
            iid, version = await self.activities.create(
                room_id, fields.get("kind"), fields.get("spec")
            )
            extra: dict[str, Any] = {}
        else:
            target = fields.get("interaction")
            if not isinstance(target, str):
                known = sorted(
                    {a for actions in HOST_ACTIONS.values() for a in actions}
                    | set(MODERATION_ACTIONS)
                )
                raise InteractionError(
                    "invalid_field",
                    f"action {action!r:.32} needs an 'interaction' id (actions: create, "
                    f"{', '.join(known)})",
                )
            iid = target
            version, extra = await self.activities.act(room_id, iid, action, fields)
            announce = extra.pop("announce", None)
            if announce is not None:
                self._announce(room_id, announce)
        live = self.rooms.get(room_id)
        if live is not None:
            self.mark_changed(live, iid, version)
        else:
            self.relay.state(room_id, iid, version, None)
        definition = await self.activities.definition(room_id, iid)
        view = await self.activities.view(room_id, iid, definition, private=True)
        return {"interaction": iid, "version": version, "view": view, **extra}

    # --- moderation: retract, mute, ban (PROTOCOL.md, "Moderation") ------------------------

    async def moderate(self, room_id: str, action: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A moderation action of a host or moderator; repeat-safe like host operations."""
        if action == "retract":
            event_id = fields.get("event")
            if not isinstance(event_id, str) or not 1 <= len(event_id) <= MAX_EVENT_ID_CHARS:
                raise InteractionError("invalid_field", "retract needs the danmaku's 'event' id")
            self._announce(room_id, {"type": "retract", "id": event_id})
            return {"action": action, "event": event_id}
        user = fields.get("user")
        if not isinstance(user, str) or not 1 <= len(user) <= MAX_USER_ID_CHARS:
            raise InteractionError("invalid_field", f"{action} needs the 'user' id to {action}")
        held = (await self.store.records(room_id, MODERATION_BOX)).get(user) or {}
        record: dict[str, Any] | None = dict(held)
        now = time.time()
        if action == "mute":
            duration = fields.get("duration_s", DEFAULT_MUTE_S)
            if type(duration) is not int or not 1 <= duration <= MAX_MUTE_S:
                raise InteractionError(
                    "invalid_field", f"duration_s must be an integer of seconds, 1..{MAX_MUTE_S}"
                )
            record = {**held, "muted_until": now + duration}
        elif action == "unmute":
            record = {k: v for k, v in held.items() if k != "muted_until"}
        elif action == "ban":
            record = {**held, "banned": True}
        else:
            record = {k: v for k, v in held.items() if k != "banned"}
        if record is not None and not ("banned" in record or "muted_until" in record):
            record = None  # nothing left to hold against the user
        result = await self.store.apply(
            room_id, MODERATION_BOX, user, f"mod-{secrets.token_hex(8)}", record, {}
        )
        live = self.rooms.get(room_id)
        if live is not None:
            self._apply_moderation(live, await self.store.records(room_id, MODERATION_BOX))
            live.version = max(live.version, result.version)
        self.relay.state(room_id, MODERATION_BOX, result.version, None)
        reply: dict[str, Any] = {"action": action, "user": user, "version": result.version}
        if record and "muted_until" in record:
            reply["muted_until"] = int(record["muted_until"] * 1000)
        return reply

    def _apply_moderation(self, room: LiveRoom, records: dict[str, dict[str, Any]]) -> None:
        """Keep the room's moderation records and close banned users' connections."""
        room.moderation = records
        banned = {user for user, record in records.items() if record.get("banned")}
        if not banned:
            return
        for conns in room.members.values():
            for conn in list(conns):
                identity = conn.identity
                if (
                    identity is not None
                    and identity.user_id in banned
                    and identity.role not in STAFF_ROLES
                ):
                    conn.close("banned", "a moderator banned you from this room")

    async def moderation(self, room_id: str) -> dict[str, Any]:
        """The room's muted and banned users (GET /api/v1/rooms/{id}/moderation)."""
        records = await self.store.records(room_id, MODERATION_BOX)
        now = time.time()
        muted = [
            {"user": user, "muted_until": int(r["muted_until"] * 1000)}
            for user, r in sorted(records.items())
            if r.get("muted_until", 0) > now
        ]
        banned = [{"user": user} for user, r in sorted(records.items()) if r.get("banned")]
        return {"muted": muted, "banned": banned}

    def _check_muted(self, room: LiveRoom, identity: Identity, cid: int | None) -> None:
        until = room.moderation.get(identity.user_id, {}).get("muted_until")
        if until is not None:
            left = until - time.time()
            if left > 0:
                raise CommandError(
                    "muted",
                    f"a moderator muted you for {left:.0f} more seconds",
                    cid,
                    retry_after_ms=max(1, round(left * 1000)),
                )

    # --- live counts ---------------------------------------------------------------------

    async def room_stats(self, room_id: str) -> dict[str, Any]:
        """Live counts of a room for the console (GET /api/v1/rooms/{id}/stats)."""
        live = self.rooms.get(room_id)
        now = time.time()
        if self.shared:
            totals = await self.store.room_stats(room_id)
            # Not the nodes' sum: a viewer who sent on two nodes took part once.
            totals["participants"] = await self.store.participants(room_id)
            online = await self.store.presence(room_id)
        else:
            totals = live.stats.report(now) if live is not None else {}
            online = live.viewers if live is not None else 0
        level = self.room_level(live) if live is not None else self.level
        return {
            "room": room_id,
            "online": online,
            "participants": totals.get("participants", 0),
            "danmaku_per_min": totals.get("danmaku_per_min", 0),
            "votes_per_min": totals.get("votes_per_min", 0),
            "posts_per_min": totals.get("posts_per_min", 0),
            "degrade": int(level),
            "degrade_name": level.name.lower(),
        }

    async def _best_effort(self, coro: Any) -> None:
        try:
            await coro
        except (BackendUnavailable, RoomNotFound):
            pass

    async def _enter_keyword_draw(self, room: LiveRoom, iid: str, identity: Identity) -> None:
        """口令抽奖: a danmaku with the draw's keyword enters its sender, once."""
        try:
            result = await self.store.apply(
                room.id,
                iid,
                identity.user_id,
                "keyword",
                {"at": time.time(), "keyword": True, "name": identity.name},
                {"n": 1},
                once=True,
            )
        except (BackendUnavailable, RoomNotFound):
            return
        if result.status == "applied":
            self.mark_changed(room, iid, result.version)

    def mark_changed(self, room: LiveRoom, interaction_id: str, version: int) -> None:
        """An interaction changed: re-read its view at the next state flush, here and
        (through the relay) on every other node serving the room."""
        room.stale.add(interaction_id)
        room.version = max(room.version, version)
        self._state_rooms.add(room)
        self.relay.state(room.id, interaction_id, version, None)

    async def _refresh_views(self, room: LiveRoom, *, everything: bool = False) -> None:
        """Re-read stale interactions from the store and keep their new views."""
        stale = room.stale
        room.stale = set()
        try:
            definitions = await self.activities.definitions(room.id)
            version = await self.store.room_version(room.id)
        except BaseException:
            room.stale |= stale
            raise
        room.definitions = definitions
        if MODERATION_BOX in stale:
            self._apply_moderation(room, await self.store.records(room.id, MODERATION_BOX))
        if everything:
            targets = definitions
        else:
            targets = {i: definitions[i] for i in stale if i in definitions}
        for iid, definition in targets.items():
            view = await self.activities.view(room.id, iid, definition)
            room.set_view(iid, version, view, force=True)
            if room.staff:
                private = await self.activities.view(room.id, iid, definition, private=True)
                room.set_staff_view(iid, private)

    async def _refresh_staff_views(self, room: LiveRoom) -> None:
        """Host views of every interaction, for the room's first host or moderator here."""
        definitions = await self.activities.definitions(room.id)
        for iid, definition in definitions.items():
            room.staff_views[iid] = await self.activities.view(
                room.id, iid, definition, private=True
            )
        room.staff_dirty.clear()

    def _announce(self, room_id: str, event: dict[str, Any]) -> None:
        """A public event in the room's stream: with the next batch to this node's viewers,
        and through the relay to the other nodes' (a draw's winners are told privately
        by the node they are connected to)."""
        event["ts"] = int(time.time() * 1000)
        live = self.rooms.get(room_id)
        if live is not None:
            self._deliver_events(live, [event])
        self.relay.events(room_id, [event])

    def _deliver_events(self, room: LiveRoom, events: list[dict[str, Any]]) -> None:
        room.pending.extend(events)
        self._dirty.add(room)
        for event in events:
            kind = event.get("type")
            if kind == "draw_result":
                self._tell_winners(room, event)
            elif kind == "retract":
                # Late joiners must not see it either: out of this node's replay.
                gone = event.get("id")
                kept = [e for e in room.replay if e.get("id") != gone]
                if len(kept) != len(room.replay):
                    room.replay.clear()
                    room.replay.extend(kept)

    def _tell_winners(self, room: LiveRoom, event: dict[str, Any]) -> None:
        """Winners are told privately; everybody sees the announcement."""
        winners = set(event["winners"])
        iid = event["interaction"]
        for conns in room.members.values():
            for conn in conns:
                if conn.identity is not None and conn.identity.user_id in winners:
                    conn.send(
                        {
                            "type": "notice",
                            "kind": "draw_won",
                            "interaction": iid,
                            "title": event["title"],
                        }
                    )

    def _danmaku(self, conn: Connection, cmd: Danmaku) -> None:
        room, identity = _member(conn, cmd.id, "send danmaku", SENDING_ROLES)
        policy = POLICIES[self.room_level(room)]
        if identity.role not in STAFF_ROLES:
            settings = room.record.settings
            mode = settings.get("mode", "open")
            if policy.staff_only or mode == "staff":
                why = (
                    "the host let only hosts and moderators send danmaku"
                    if mode == "staff"
                    else "danmaku are paused while the room is at degrade level 3"
                )
                raise CommandError(
                    "danmaku_paused", f"{why}; votes still work", cmd.id, retry_after_ms=5000
                )
            self._check_muted(room, identity, cmd.id)
            slow = policy.slow_mode_s or 0.0
            if mode == "slow":
                slow = max(slow, float(settings.get("slow_mode_s", 5)))
            if slow:
                waited = self.now() - conn.last_danmaku
                if waited < slow:
                    raise CommandError(
                        "slow_mode",
                        f"slow mode: one danmaku per {slow:g} s",
                        cmd.id,
                        retry_after_ms=max(1, round((slow - waited) * 1000)),
                    )
        wait = room.danmaku_bucket.take(self.now())
        if wait:
            raise CommandError(
                "room_rate_limited",
                f"room {room.id!r} is receiving more danmaku than it allows; try again",
                cmd.id,
                retry_after_ms=max(1, round(wait * 1000)),
            )
        self._event_counter += 1
        event = {
            "type": "danmaku",
            "id": f"{self.node_id}.{self._event_counter}",
            "user": identity.public(),
            "text": cmd.text,
            "color": cmd.color,
            "mode": cmd.mode,
            "ts": int(time.time() * 1000),
        }
        conn.last_danmaku = self.now()
        now = time.time()
        room.stats.add("danmaku", identity.user_id, now)
        for iid in self.activities.keyword_draws(room.definitions, cmd.text, now):
            self.spawn(self._enter_keyword_draw(room, iid, identity))
        room.pending.append(event)
        room.replay.append(event)
        self._dirty.add(room)
        self.relay.events(room.id, [event])
        self.metrics.commands.labels("danmaku", "ok").inc()
        if cmd.id is not None:
            conn.send(ack(cmd.id, event=event["id"]))

    # --- rooms changed over REST ---------------------------------------------------------

    def room_updated(self, record: RoomRecord, *, local: bool = True) -> None:
        if local:
            self.relay.room_changed(record.id, record.version)
        live = self.rooms.get(record.id)
        if live is None or record.version <= live.record.version:
            return
        level_before = self.room_level(live)
        live.record = record
        if self.room_level(live) != level_before:
            self.notify_level(live, self.room_level(live))
        live.version = max(live.version, record.version)
        for conns in live.members.values():
            for conn in list(conns):
                self.send_snapshot(conn)

    def on_remote(self, room_id: str, message: dict[str, Any]) -> None:
        """A relay message from another node about a room this node follows."""
        if message.get("x"):
            self.room_deleted(room_id, local=False)
            return
        live = self.rooms.get(room_id)
        if live is None:
            return
        events = message.get("e")
        if events:
            self._deliver_events(live, events)
            live.replay.extend(e for e in events if e.get("type") == "danmaku")
        for interaction_id, (version, _) in (message.get("s") or {}).items():
            held = live.interactions.get(interaction_id)
            if held is None or held[0] < version:
                live.stale.add(interaction_id)
                self._state_rooms.add(live)
        if "u" in message and message["u"] > live.record.version:
            self.spawn(self._reload_room(room_id))

    async def _reload_room(self, room_id: str) -> None:
        try:
            record = await self.store.get_room(room_id)
        except (BackendUnavailable, RoomNotFound):
            return
        self.room_updated(record, local=False)

    def room_deleted(self, room_id: str, *, local: bool = True) -> None:
        if local:
            self.relay.room_deleted(room_id)
        live = self.rooms.pop(room_id, None)
        if live is None:
            return
        self._dirty.discard(live)
        for conns in live.members.values():
            for conn in list(conns):
                conn.close("room_deleted", f"room {room_id} was deleted")

    def flush_state(self) -> None:
        """Send each room's changed interaction views as one coalesced ``state`` message,
        encoded once per codec. State is never dropped: a paused connection is marked
        for a snapshot instead, which carries the same views."""
        rooms, self._state_rooms = self._state_rooms, set()
        for room in rooms:
            if not room.state_dirty and not room.staff_dirty:
                continue
            public = {iid: room.interactions[iid][1] for iid in sorted(room.state_dirty)}
            staff = room.staff
            if staff:
                # Hosts and moderators get host views of what changed for anyone.
                changed = room.state_dirty | room.staff_dirty
                private = {
                    iid: room.staff_views.get(iid, room.interactions[iid][1])
                    for iid in sorted(changed)
                    if iid in room.interactions or iid in room.staff_views
                }
                staff_message = state(room.id, room.version, private)
                for conn in list(staff):
                    conn.send(staff_message)
            room.state_dirty.clear()
            room.staff_dirty.clear()
            if public:
                message = state(room.id, room.version, public)
                for codec, conns in room.members.items():
                    targets = conns - staff if staff else conns
                    if targets:
                        frame = server_frame(codec.encode(message), binary=codec.binary)
                        self.write_to(targets, frame)
            self.metrics.state_updates.inc()

    async def _state_loop(self) -> None:
        while True:
            await asyncio.sleep(POLICIES[self.level].state_interval_s)
            for room in [r for r in self._state_rooms if r.stale]:
                try:
                    await self._refresh_views(room)
                except BackendUnavailable:
                    room.stale.update(room.interactions)  # try again at the next flush
                except Exception:  # pragma: no cover
                    log.exception("refreshing views of %s failed", room.id)
            try:
                self.flush_state()
            except Exception:  # pragma: no cover
                log.exception("state flush failed")

    async def _health_loop(self) -> None:
        """Ping the store; /readyz follows the answer (PROTOCOL.md, "REST API").

        Relay messages are at most once, so while Redis was away other nodes' state
        updates may have been lost: when it answers again, every room this node
        serves re-reads its interactions from the store (and every RESYNC_INTERVAL_S
        anyway, as a safety net).
        """
        was_ready = True
        last_resync = self.now()
        while True:
            try:
                started = time.perf_counter()
                await asyncio.wait_for(self.store.ping(), 2.0)
                self._store_latency = time.perf_counter() - started
                if not self.store_ok:
                    log.info("store reachable again")
                self.store_ok = True
            except (TimeoutError, BackendUnavailable) as exc:
                if self.store_ok:
                    log.warning("store unreachable: %s", exc)
                self.store_ok = False
            ready = self.ready
            self.metrics.ready.set(1 if ready else 0)
            if ready and (not was_ready or self.now() - last_resync > RESYNC_INTERVAL_S):
                last_resync = self.now()
                await self.resync_rooms()
            was_ready = ready
            await asyncio.sleep(HEALTH_INTERVAL_S)

    async def resync_rooms(self) -> None:
        """Re-read every served room's interaction views from the store."""
        for room in list(self.rooms.values()):
            room.stale.update(room.interactions)
            self._state_rooms.add(room)

    async def _presence_loop(self) -> None:
        """Publish this node's viewer count per room (with a TTL) and read the totals."""
        while True:
            await asyncio.sleep(PRESENCE_INTERVAL_S)
            busiest = 0
            for room in list(self.rooms.values()):
                try:
                    await self.store.set_presence(
                        room.id, self.node_id, room.viewers, PRESENCE_TTL_S
                    )
                    room.online_total = await self.store.presence(room.id)
                    report = room.stats.report(time.time())
                    await self.store.set_node_stats(room.id, self.node_id, report, PRESENCE_TTL_S)
                    fresh = room.stats.take_fresh()
                    try:
                        await self.store.add_participants(room.id, fresh)
                    except BackendUnavailable:
                        room.stats.fresh |= fresh  # with the next report
                        raise
                    busiest = max(busiest, room.online_total)
                except BackendUnavailable:
                    break
            self.metrics.presence.set(busiest)

    def send_snapshot(self, conn: Connection) -> None:
        if conn.room is None:
            return
        if conn.paused:
            conn.needs_snapshot = True
            return
        conn.room.degrade_level = int(self.room_level(conn.room))
        staff = conn in conn.room.staff
        conn.send({"type": "snapshot", "snapshot": conn.room.snapshot(staff=staff)})

    # --- the hot path ------------------------------------------------------------------

    def encode_batch(self, codec: Codec, message: dict[str, Any]) -> bytes:
        """Encode and frame one batch for one codec; called once per codec per room per tick."""
        self.metrics.encodes.labels(codec.name).inc()
        return server_frame(codec.encode(message), binary=codec.binary)

    def write_to(self, conns: set[Connection], frame: bytes) -> tuple[int, int]:
        """Write one pre-built frame to every connection of a group: the only per-viewer
        work of the hot path (no await, no encode). A paused connection is skipped and
        marked for a snapshot; one whose transport closed under us is detached after
        the loop, so it cannot stop the others. Returns (written, skipped)."""
        sent = skipped = buffered = 0
        broken = None
        for conn in conns:
            if conn.paused:
                conn.needs_snapshot = True
                skipped += 1
                continue
            transport = conn.transport
            try:
                transport.write(frame)  # type: ignore[union-attr]
            except RuntimeError:
                broken = [*(broken or ()), conn]
                continue
            # What the kernel did not take yet: the tick's backlog signal (~50 ns a call).
            buffered += transport.get_write_buffer_size()  # type: ignore[union-attr]
            sent += 1
        for conn in broken or ():
            self.detach(conn)
        self._tick_buffered += buffered
        return sent, skipped

    def tick(self) -> None:
        """Turn every room's pending events into one frame per codec, written to all members."""
        dirty = self._dirty
        if not dirty:
            return
        self._dirty = set()
        metrics = self.metrics
        for room in dirty:
            events = room.pending
            if not events:
                continue
            room.pending = []
            level = self.room_level(room)
            if level:
                events, shed = shape(events, POLICIES[level])
                if shed:
                    metrics.drops.labels("degrade").inc(shed)
                if not events:
                    continue
            room.seq += 1
            message = batch(room.id, room.seq, events)
            delivered = 0
            dropped = 0
            for codec, conns in room.members.items():
                if not conns:
                    continue
                frame = self.encode_batch(codec, message)
                sent, skipped = self.write_to(conns, frame)
                dropped += skipped
                metrics.frames_out.labels(codec.name).inc(sent)
                metrics.bytes_out.labels(codec.name).inc(sent * len(frame))
                delivered += sent
            metrics.events_out.inc(len(events))
            metrics.messages_delivered.inc(delivered * len(events))
            if dropped:
                metrics.drops.labels("slow_consumer").inc(dropped)

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        observe = self.metrics.tick_duration.observe
        while True:
            interval = max(self.settings.hub.tick_ms, POLICIES[self.level].tick_ms) / 1000
            deadline += interval
            delay = deadline - loop.time()
            if delay < 0:  # fell behind: skip missed ticks rather than bunching them
                deadline = loop.time()
                delay = 0
            await asyncio.sleep(delay)
            started = time.perf_counter()
            self._tick_buffered = 0
            try:
                self.tick()
            except Exception:  # pragma: no cover - a bug must not stop delivery for good
                log.exception("tick failed")
            took = time.perf_counter() - started
            self._tick_time += took
            self._ticks += 1
            observe(took)
            if self.settings.hub.degrade_auto:
                self.check_tick(took / interval, self._tick_buffered)

    def check_tick(self, ratio: float, buffered: int) -> None:
        """Escalate within the tick when this one tick shows the node falling behind."""
        if self.degrade.escalate(called_for_by_tick(ratio, buffered)):
            self.set_level(
                self.degrade.level,
                reason=f"one tick {ratio:.2f} of budget, left {buffered / 1e6:.1f} MB buffered",
            )

    # --- heartbeats, reaping, slow consumers -------------------------------------------------

    def maintain(self) -> None:
        now = self.now()
        settings = self.settings
        join_deadline = now - settings.limits.join_timeout_s
        silent_deadline = now - settings.hub.heartbeat_timeout_s
        slow_deadline = now - settings.hub.slow_timeout_s
        for conn in list(self.connections):
            if conn.closing:
                continue
            if conn.paused and conn.paused_since < slow_deadline:
                self.metrics.drops.labels("closed_too_slow").inc()
                # The close frame cannot get past a full buffer; give it a moment, then abort.
                conn.close("too_slow", "too slow; reconnect", abort_after=0.5)
                self.detach(conn)
            elif conn.last_seen < silent_deadline:
                conn.close("heartbeat_timeout", "no heartbeat", abort_after=0.5)
                self.detach(conn)
            elif conn.room is None and conn.opened_at < join_deadline:
                conn.close("join_timeout", "no join received")
                self.detach(conn)

    def send_heartbeat(self) -> None:
        frame = self._ping_frame
        for conn in self.connections:
            if not conn.paused and not conn.closing and conn.transport is not None:
                conn.transport.write(frame)

    async def _maintenance_loop(self) -> None:
        next_ping = self.now() + self.settings.hub.heartbeat_s
        while True:
            await asyncio.sleep(MAINTENANCE_INTERVAL_S)
            try:
                self.maintain()
                signals = self.signals = self.measure()
                level = self.degrade.update(signals, self.now())
                if not self.settings.hub.degrade_auto:
                    level = DegradeLevel.NORMAL
                if effective(level, self.floor) != self.level:
                    self.set_level(level, reason=_reason(signals))
                if self.now() >= next_ping:
                    next_ping = self.now() + self.settings.hub.heartbeat_s
                    self.send_heartbeat()
            except Exception:  # pragma: no cover
                log.exception("maintenance failed")

    async def _loop_lag_probe(self) -> None:
        loop = asyncio.get_running_loop()
        gauge = self.metrics.loop_lag
        hist = self.metrics.loop_lag_hist
        while True:
            started = loop.time()
            await asyncio.sleep(LOOP_LAG_INTERVAL_S)
            lag = max(0.0, loop.time() - started - LOOP_LAG_INTERVAL_S)
            self._last_lag = max(self._last_lag, lag)  # the worst since the last measure()
            gauge.set(lag)
            hist.observe(lag)


def _member(
    conn: Connection, cid: int | None, what: str, roles: frozenset[str]
) -> tuple[LiveRoom, Identity]:
    """The connection's room and identity, or the documented refusal: ``not_joined``
    before a join, ``forbidden`` for a role not in ``roles``."""
    room, identity = conn.room, conn.identity
    if room is None or identity is None:
        raise CommandError("not_joined", f"join a room before you {what}", cid)
    if identity.role not in roles:
        raise CommandError("forbidden", f"the {identity.role} role may not {what}", cid)
    return room, identity


def _without_retracted(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The danmaku of a shared replay list, less those a later ``retract`` took back."""
    gone = {e.get("id") for e in events if e.get("type") == "retract"}
    return [e for e in events if e.get("type") == "danmaku" and e.get("id") not in gone]


def _reason(signals: Signals) -> str:
    return (
        f"loop lag {signals.loop_lag_s * 1000:.0f} ms, tick {signals.tick_ratio:.2f} of "
        f"budget, buffered {signals.buffered_bytes / 1e6:.1f} MB, ingest "
        f"{signals.ingest_per_s:.0f}/s, store {signals.store_latency_s * 1000:.0f} ms"
        + ("" if signals.store_ok else " (unreachable)")
    )


def _wire_number(value: float) -> int | float:
    """Integral values go on the wire as integers: JSON and MessagePack encoders in
    other languages write 5.0 as 5, and the test vectors must match byte for byte."""
    return int(value) if float(value).is_integer() else value


def _op_of(command: Any) -> str:
    name = type(command).__name__.lower()
    return name if name in OPS else "invalid"


assert CLOSE_BY_NAME["too_slow"].reconnect
