"""Heartbeats and reaping (PROTOCOL.md, "Heartbeats", "Slow consumers", "Session").

Idle connections cost what comes due, not viewers per second. Each connection waits in
a timing wheel (one slot per second) for its next check: its next ping, the moment it
would have been silent for ``hub.heartbeat_timeout_s``, or its join deadline,
whichever comes first. A round visits only the slots that came due. Pings are spread
over the heartbeat period: a connection keeps the phase it was given when it arrived,
so thousands of viewers are not pinged (nor answer) in the same second. Connections
over their write buffer's high mark are few: they are kept in a set of their own
(:meth:`Upkeep.note_paused`) and checked every round. A joined connection whose token
expires waits in a second wheel for that moment, and is then closed with
``token_expired`` (PROTOCOL.md, "Token lifecycle"): a staff session stops being staff
when its token ends.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Collection

from protocol.framing import server_ping
from server.config import Settings
from server.hub.connection import Connection
from server.metrics import Metrics

SLOT_S = 1.0  # the wheel's resolution: one upkeep round
PHASE_STEP = (math.sqrt(5) - 1) / 2  # golden ratio: successive phases spread evenly


class Upkeep:
    """Closes connections that never joined, went silent or stayed too slow, and pings
    each of the others once every ``hub.heartbeat_s``, visiting only those due."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        detach: Callable[[Connection], None],
        connections: Collection[Connection],
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._detach = detach
        self._connections = connections  # the hub's: a connection not in it is gone
        self._ping_frame = server_ping()
        self._wheel: dict[int, list[tuple[Connection, float]]] = {}
        self._next_slot: int | None = None  # the first slot no round has visited
        self._phase = 0.0
        self.paused: set[Connection] = set()  # over their high mark at some point
        # Joined connections whose token expires, by slot: a connection that goes away is
        # forgotten (:meth:`forget`), so nothing is held for a token's whole lifetime.
        self._expiries: dict[int, set[Connection]] = {}
        self._expiry_slot: dict[Connection, int] = {}
        self._expiry_slots: list[int] = []  # heap of slots (some emptied since)

    def waiting(self) -> int:
        """Entries waiting in the wheel (a connection gone is forgotten when its slot comes)."""
        return sum(len(entries) for entries in self._wheel.values())

    def track(self, conn: Connection, now: float) -> None:
        """A new connection: its first ping at its own phase of the heartbeat period."""
        self._phase = (self._phase + PHASE_STEP) % 1.0
        self._schedule(conn, now + self.settings.hub.heartbeat_s * self._phase)

    def expire(self, conn: Connection, at: float) -> None:
        """Close ``conn`` (joined) when its token expires, at ``at`` (the hub's clock)."""
        if not math.isfinite(at):
            return
        slot = math.ceil(at / SLOT_S)
        if slot not in self._expiries:
            heapq.heappush(self._expiry_slots, slot)
        self._expiries.setdefault(slot, set()).add(conn)
        self._expiry_slot[conn] = slot

    def forget(self, conn: Connection) -> None:
        """``conn`` went away: its token's expiry is no longer watched."""
        slot = self._expiry_slot.pop(conn, None)
        conns = self._expiries.get(slot, set()) if slot is not None else set()
        conns.discard(conn)
        if slot is not None and not conns:
            self._expiries.pop(slot, None)
        if len(self._expiry_slots) > 2 * len(self._expiries) + 64:  # drop emptied slots
            self._expiry_slots = list(self._expiries)
            heapq.heapify(self._expiry_slots)

    def note_paused(self, conn: Connection) -> None:
        """``conn`` went over its high mark (checked each round until it drains)."""
        self.paused.add(conn)

    def round(self, now: float) -> None:
        """Once a second: close the connections too slow for too long, then visit the
        ones whose check came due."""
        self._reap_slow(now)
        self._reap_expired(now)
        for conn, ping_at in self._due(now):
            self._visit(conn, ping_at, now)

    def _reap_slow(self, now: float) -> None:
        slow_deadline = now - self.settings.hub.slow_timeout_s
        for conn in list(self.paused):
            if not conn.paused or conn.closing or conn not in self._connections:
                self.paused.discard(conn)
            elif conn.paused_since < slow_deadline:
                self.paused.discard(conn)
                self.metrics.drops.labels("closed_too_slow").inc()
                # The close frame cannot get past a full buffer; give it a moment, then abort.
                conn.close("too_slow", "too slow; reconnect", abort_after=0.5)
                self._detach(conn)

    def _reap_expired(self, now: float) -> None:
        last = math.floor(now / SLOT_S)
        while self._expiry_slots and self._expiry_slots[0] <= last:
            for conn in self._expiries.pop(heapq.heappop(self._expiry_slots), ()):
                self._expiry_slot.pop(conn, None)
                if not conn.closing and conn in self._connections:
                    conn.close("token_expired", "the token of this session has expired")

    def _visit(self, conn: Connection, ping_at: float, now: float) -> None:
        if conn.closing or conn not in self._connections:
            return  # gone: forgotten here
        hub = self.settings.hub
        if now - conn.last_seen >= hub.heartbeat_timeout_s:
            conn.close("heartbeat_timeout", "no heartbeat", abort_after=0.5)
            self._detach(conn)
            return
        if conn.room is None and now - conn.opened_at >= self.settings.limits.join_timeout_s:
            conn.close("join_timeout", "no join received")
            self._detach(conn)
            return
        if now >= ping_at:
            if not conn.paused and conn.transport is not None:
                conn.transport.write(self._ping_frame)
            ping_at += hub.heartbeat_s
            if ping_at <= now:  # the rounds fell far behind: keep the period, not the phase
                ping_at = now + hub.heartbeat_s
        self._schedule(conn, ping_at)

    def _schedule(self, conn: Connection, ping_at: float) -> None:
        """File ``conn`` under its next check: the ping, or a deadline if that comes first."""
        due = min(ping_at, conn.last_seen + self.settings.hub.heartbeat_timeout_s)
        if conn.room is None:
            due = min(due, conn.opened_at + self.settings.limits.join_timeout_s)
        slot = math.ceil(due / SLOT_S)
        if self._next_slot is not None and slot < self._next_slot:
            slot = self._next_slot  # already past: the next round sees it
        self._wheel.setdefault(slot, []).append((conn, ping_at))

    def _due(self, now: float) -> list[tuple[Connection, float]]:
        """Take every entry of the slots up to ``now``."""
        wheel = self._wheel
        last = math.floor(now / SLOT_S)
        if self._next_slot is None or last - self._next_slot > len(wheel):
            slots: Collection[int] = sorted(slot for slot in wheel if slot <= last)
        else:
            slots = range(self._next_slot, last + 1)
        self._next_slot = last + 1
        due: list[tuple[Connection, float]] = []
        for slot in slots:
            entries = wheel.pop(slot, None)
            if entries:
                due.extend(entries)
        return due
