"""Heartbeats and reaping (PROTOCOL.md, "Heartbeats", "Slow consumers", "Session")."""

from __future__ import annotations

from collections.abc import Callable, Collection

from protocol.framing import server_ping
from server.config import Settings
from server.hub.connection import Connection
from server.metrics import Metrics


class Upkeep:
    """Closes connections that never joined, went silent or stayed too slow, and pings
    the rest every ``hub.heartbeat_s``."""

    def __init__(
        self, settings: Settings, metrics: Metrics, detach: Callable[[Connection], None]
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._detach = detach
        self._ping_frame = server_ping()
        self._next_ping: float | None = None

    def reap(self, connections: Collection[Connection], now: float) -> None:
        limits, hub = self.settings.limits, self.settings.hub
        join_deadline = now - limits.join_timeout_s
        silent_deadline = now - hub.heartbeat_timeout_s
        slow_deadline = now - hub.slow_timeout_s
        for conn in list(connections):
            if conn.closing:
                continue
            if conn.paused and conn.paused_since < slow_deadline:
                self.metrics.drops.labels("closed_too_slow").inc()
                # The close frame cannot get past a full buffer; give it a moment, then abort.
                conn.close("too_slow", "too slow; reconnect", abort_after=0.5)
                self._detach(conn)
            elif conn.last_seen < silent_deadline:
                conn.close("heartbeat_timeout", "no heartbeat", abort_after=0.5)
                self._detach(conn)
            elif conn.room is None and conn.opened_at < join_deadline:
                conn.close("join_timeout", "no join received")
                self._detach(conn)

    def heartbeat(self, connections: Collection[Connection], now: float) -> None:
        """Ping every connection that can take it, once per ``hub.heartbeat_s``."""
        if self._next_ping is None:
            self._next_ping = now + self.settings.hub.heartbeat_s
        if now < self._next_ping:
            return
        self._next_ping = now + self.settings.hub.heartbeat_s
        frame = self._ping_frame
        for conn in connections:
            if not conn.paused and not conn.closing and conn.transport is not None:
                conn.transport.write(frame)
