"""Commands from connections, routed (PROTOCOL.md, "Commands"): a danmaku, a ping or a
snapshot asked for is answered at once, in the frame's turn; what waits for the store (a
join, a contribution, a host's action, a platform's chat) goes through the connection's
queue, one command at a time, so its commands keep their order. The hub's part that
knows the commands; the room layer decides what they change (server/hub/ports.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from protocol.messages import (
    AskSnapshot,
    Bridge,
    Command,
    CommandError,
    Danmaku,
    Host,
    Join,
    Participate,
    Ping,
    ack,
    error,
    joined,
    pong,
)
from server.auth import ROLES, SENDING_ROLES, STAFF_ROLES, Identity
from server.backends.base import RoomRecord
from server.config import Settings
from server.hub.arrivals import JoinGate, PresenceNotes
from server.hub.connection import Connection
from server.hub.governor import Governor
from server.hub.intake import Intake
from server.hub.ports import Rooms
from server.hub.quotas import Quotas
from server.hub.room import LiveRoom
from server.hub.stream import Stream
from server.hub.upkeep import Upkeep
from server.metrics import Metrics
from server.moderation.ratelimit import TokenBucket

HOST_ROLE = frozenset({"host"})  # who may send a platform's chat into a room


class Routed(Protocol):
    """What the commands reach: the hub and its parts."""

    settings: Settings
    metrics: Metrics
    governor: Governor
    intake: Intake
    stream: Stream
    rooms: Rooms
    quotas: Quotas
    upkeep: Upkeep
    join_gate: JoinGate
    presence_notes: PresenceNotes
    connections: set[Connection]
    # A ``bridge`` command's handler: the node's bridges (server/bridges/runner.py).
    bridged: Callable[[str, Bridge], Coroutine[Any, Any, dict[str, Any]]] | None

    def now(self) -> float: ...
    async def serve_room(self, record: RoomRecord) -> LiveRoom: ...
    def snapshot(self, room: LiveRoom, audience: str) -> dict[str, Any]: ...
    def send_snapshot(self, conn: Connection, asked: int | None = None) -> None: ...


class Commands:
    """Routes each connection's commands: checks who may send them, hands them to the
    stream or the room layer, and answers (``ack``, ``joined``, ``pong``, ``error``)."""

    def __init__(self, hub: Routed) -> None:
        self.hub = hub

    def receive(self, conn: Connection, data: bytes) -> None:
        """Handle one complete data message from ``conn`` (PROTOCOL.md, "Commands")."""
        hub = self.hub
        assert conn.bucket is not None
        hub.governor.ingested += 1
        op_label, command = hub.intake.take(
            conn.codec, conn.bucket, data, hub.now(), conn.address_bucket
        )
        if isinstance(command, CommandError):
            hub.metrics.command(op_label, command.code)
            conn.send(error(command))
            return
        if conn.busy or not isinstance(command, (Danmaku, Ping, AskSnapshot)):
            conn.enqueue(command)  # keeps this connection's commands in order
            return
        try:
            self.handle_sync(conn, command)
        except CommandError as err:
            self.reply_error(conn, command, err)

    def reply_error(self, conn: Connection, command: Command, err: CommandError) -> None:
        hub = self.hub
        if err.id is None:
            err.id = getattr(command, "id", None)
        if err.code == "store_unavailable":
            hub.metrics.store_errors.inc()
            hub.governor.store_ok = False
        hub.metrics.command(hub.intake.label(_op_of(command)), err.code)
        conn.send(error(err))

    def handle_sync(self, conn: Connection, command: Danmaku | Ping | AskSnapshot) -> None:
        hub = self.hub
        if isinstance(command, Danmaku):
            room, identity = _member(conn, command.id, "send danmaku", SENDING_ROLES)
            hub.stream.danmaku(conn, room, identity, command)
        elif isinstance(command, AskSnapshot):
            _member(conn, command.id, "ask for a snapshot", frozenset(ROLES))
            hub.metrics.command("snapshot", "ok")
            hub.send_snapshot(conn, command.id)
        else:
            hub.metrics.command("ping", "ok")
            conn.send(pong(command.id))

    async def handle_async(self, conn: Connection, command: Command) -> None:
        hub = self.hub
        if isinstance(command, Join):
            await self._join(conn, command)
        elif isinstance(command, Participate):
            room, identity = _member(conn, command.id, command.op, SENDING_ROLES)
            reply = await hub.rooms.participate(
                room.id, identity, command.op, command.key, command.fields
            )
            hub.governor.store_ok = True
            hub.metrics.command(hub.intake.label(command.op), "ok")
            if command.id is not None or command.key is not None:
                conn.send(ack(command.id, **reply))
        elif isinstance(command, Host):
            room, staff = _member(conn, command.id, command.action, STAFF_ROLES)
            result = await hub.rooms.host(room.id, command.action, command.fields, by=staff)
            hub.metrics.command("host", "ok")
            conn.send(ack(command.id, **result))
        elif isinstance(command, Bridge):
            room, _ = _member(conn, command.id, "bridge a platform's chat", HOST_ROLE)
            if hub.bridged is None:
                raise CommandError("forbidden", "this node runs no bridges", command.id)
            reply = await hub.bridged(room.id, command)
            hub.metrics.command("bridge", "ok")
            conn.send(ack(command.id, **reply))
        else:
            self.handle_sync(conn, command)

    async def _join(self, conn: Connection, cmd: Join) -> None:
        hub = self.hub
        if conn.room is not None:
            raise CommandError("already_joined", f"already joined room {conn.room.id!r}")
        await hub.join_gate.turn()  # a burst of joins is spread over slices
        record = await hub.rooms.room(cmd.room)
        admitted = hub.rooms.identify(record, cmd.token, cmd.name, cmd.lang)
        live = await hub.serve_room(record)
        await hub.rooms.enter(record, admitted.identity)
        if conn.closing or conn not in hub.connections:
            return  # the connection went away while the store answered
        identity = admitted.identity
        if identity.role in STAFF_ROLES:
            limits = hub.settings.limits
            conn.bucket = TokenBucket(
                limits.staff_commands_per_s, limits.staff_command_burst, hub.now()
            )
        elif identity.role == "viewer":
            crowded = hub.quotas.viewer_refusal(live.id, identity.user_id)
            if crowded is not None:
                cap = hub.settings.limits.connections_per_viewer
                raise CommandError(
                    "limit_reached", crowded, cap="connections_per_viewer", limit=cap
                )
            # One rate for all of a viewer's connections to the room.
            assert conn.bucket is not None
            conn.bucket = hub.quotas.viewer_joined(live.id, identity.user_id, conn.bucket)
        conn.identity, conn.room, conn.audience = identity, live, admitted.audience
        hub.upkeep.expire(conn, hub.now() + identity.expires_at - time.time())
        if not len(live):
            hub.metrics.rooms_active.inc()
        live.add(conn, admitted.audience)
        if identity.role == "viewer":
            live.viewers += 1
            hub.presence_notes.add(live.id, identity, True)
            hub.rooms.counts.seen(live.id, identity.user_id)  # a unique viewer
        hub.metrics.command("join", "ok")
        snapshot = hub.snapshot(live, admitted.audience)
        conn.send(joined(cmd.id, identity.public(), snapshot, token=admitted.token))


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
    if identity.expires_at <= time.time():  # closed at the next upkeep round (upkeep.py)
        raise CommandError("unauthorized", "the token of this session has expired", cid)
    return room, identity


def _op_of(command: Command) -> str:
    if isinstance(command, Participate):
        return command.op
    return type(command).__name__.lower()  # join, danmaku, ping, host
