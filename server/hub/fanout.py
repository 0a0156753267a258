"""Fan-out: encode once, frame once, write the same bytes to every viewer
(ARCHITECTURE.md, "The hot path").

Fan-out costs viewers x ticks, not viewers x messages: commands append events to
their room's pending list; every tick turns each room's pending list into one
``batch`` message, encodes it once per codec in use, frames it once, and writes the
same bytes to every local connection of the room. Nothing in that loop awaits or
encodes per viewer. A connection whose transport paused writing (its buffer is over
the high-water mark) is skipped and counted as a drop; it gets a fresh snapshot when
it drains (PROTOCOL.md, "Slow consumers"). State messages go the same way, once per
audience and codec. Connections that negotiated permessage-deflate get the same
message compressed, also once per codec (:mod:`.deflate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from protocol.codec import CODECS, Codec
from protocol.delta import Delta
from protocol.messages import batch, state
from server.hub.connection import Connection
from server.hub.deflate import Frames
from server.hub.degrade import POLICIES, DegradeLevel, shape
from server.hub.room import LiveRoom
from server.metrics import Metrics


class Fanout:
    """Writes batches and state messages to a room's connections: one encoding per codec
    (per audience for state), the same frame bytes to every connection."""

    def __init__(self, metrics: Metrics, detach: Callable[[Connection], None]) -> None:
        self.metrics = metrics
        self._detach = detach
        self.buffered = 0  # bytes left in buffers by the writes since reset_buffered()

    def encode(self, codec: Codec, message: dict[str, Any]) -> Frames:
        """Encode one batch for one codec; once per codec per room per tick."""
        self.metrics.encodes.labels(codec.name).inc()
        return Frames(codec.encode(message), binary=codec.binary)

    def write_to(self, conns: Collection[Connection], frames: Frames) -> tuple[int, int, int]:
        """Write one pre-built frame to every connection of a group, the deflated one to
        those that negotiated it: the only per-viewer work of the hot path (no await,
        no encode). A paused connection is skipped and marked for a snapshot; one whose
        transport closed under us is detached after the loop, so it cannot stop the
        others. Returns (written, skipped, bytes written)."""
        skipped = buffered = deflates = 0
        plain = frames.plain()  # a header and a copy; the deflated frame only if wanted
        deflated = None
        broken = None
        for conn in conns:
            if conn.paused:
                conn.needs_snapshot = True
                skipped += 1
                continue
            frame = plain
            if conn.deflate:
                frame = deflated = deflated or frames.deflated()
                deflates += 1
            transport = conn.transport
            try:
                transport.write(frame)  # type: ignore[union-attr]
            except RuntimeError:
                broken = [*(broken or ()), conn]
                if conn.deflate:
                    deflates -= 1
                continue
            # What the kernel did not take yet: the tick's backlog signal (~50 ns a call).
            buffered += transport.get_write_buffer_size()  # type: ignore[union-attr]
        for conn in broken or ():
            self._detach(conn)
        sent = len(conns) - skipped - len(broken or ())
        nbytes = (sent - deflates) * len(plain) + deflates * len(deflated or b"")
        self.buffered += buffered
        return sent, skipped, nbytes

    def tick(self, rooms: Iterable[LiveRoom], level_of: Callable[[LiveRoom], DegradeLevel]) -> None:
        """Turn each room's pending events into one frame per codec, written to all members."""
        metrics = self.metrics
        for room in rooms:
            events = room.pending
            if not events:
                continue
            room.pending = []
            level = level_of(room)
            if level:
                events, shed = shape(events, POLICIES[level])
                if shed:
                    metrics.drops.labels("degrade").inc(shed)
                if not events:
                    continue
            room.seq += 1
            message = batch(room.id, room.seq, events)
            delivered = dropped = 0
            for codec, groups in room.by_codec():
                frames = self.encode(codec, message)
                for conns in groups:
                    sent, skipped, nbytes = self.write_to(conns, frames)
                    dropped += skipped
                    delivered += sent
                    metrics.frames_out.labels(codec.name).inc(sent)
                    metrics.bytes_out.labels(codec.name).inc(nbytes)
            metrics.events_out.inc(len(events))
            accepted = events[0].get("ts")
            if delivered and type(accepted) is int:
                metrics.delivery_lag.observe(max(0.0, time.time() - accepted / 1000))
            metrics.messages_delivered.inc(delivered * len(events))
            if dropped:
                metrics.drops.labels("slow_consumer").inc(dropped)

    def broadcast(self, room: LiveRoom, message: dict[str, Any]) -> None:
        """One message to every connection of the room, encoded once per codec."""
        for codec, groups in room.by_codec():
            frames = Frames(codec.encode(message), binary=codec.binary)
            for conns in groups:
                self.write_to(conns, frames)

    def send_snapshots(self, room: LiveRoom, snapshot_of: Callable[[str], dict[str, Any]]) -> None:
        """The room's snapshot to every member (its record changed): one per audience,
        encoded once per codec, the same bytes to all (5,000 members: one snapshot built,
        not 5,000). A paused connection is marked and gets its own when it drains."""
        for audience in {audience for audience, _ in room.groups}:
            message = {"type": "snapshot", "snapshot": snapshot_of(audience)}
            for codec in CODECS:
                conns = room.groups.get((audience, codec))
                if conns:
                    self.write_to(conns, Frames(codec.encode(message), binary=codec.binary))

    def send_state(self, room: LiveRoom, deltas: Mapping[str, Delta]) -> None:
        """Changed views, per audience: one ``state`` message each (changes against the
        audience's previous one), encoded once per codec. State is never dropped: a
        paused connection is marked for a snapshot instead, which carries the views."""
        for audience, delta in deltas.items():
            message = state(room.id, delta.base, delta.version, delta.interactions, delta.patches)
            for codec in CODECS:
                conns = room.groups.get((audience, codec))
                if conns:
                    self.write_to(conns, Frames(codec.encode(message), binary=codec.binary))
        self.metrics.state_updates.inc()
