"""The node's degrade level: its signals, measured, and the policy of
:mod:`server.hub.degrade` applied with the floors (ARCHITECTURE.md, "Degrade levels")."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from server.config import HubSettings
from server.hub.connection import Connection
from server.hub.degrade import (
    POLICIES,
    DegradeController,
    DegradeLevel,
    Signals,
    called_for_by_tick,
    effective,
)
from server.hub.room import LiveRoom
from server.metrics import Metrics

log = logging.getLogger("hudong.hub")
MEASURE_INTERVAL_S = 1.0


class Governor:
    """Decides the level this node serves at: gathers the signals (loop lag, ticks,
    buffered bytes, ingest, store latency), escalates and relaxes through the
    controller, and applies the admin's floor and each room's."""

    def __init__(self, settings: HubSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.controller = DegradeController(
            settings.degrade_relax_after_s, settings.degrade_sustain_s
        )
        self.floor = settings.degrade_floor  # the admin's floor for this node
        self.level = effective(0, self.floor)
        self.signals = Signals()
        self.ingested = 0
        self.store_latency = 0.0
        self.store_ok = True
        self._tick_time = 0.0
        self._ticks = 0
        self._tick_buffered = 0  # the most one tick of the last second left buffered
        self._lag = 0.0

    def room_level(self, room: LiveRoom) -> DegradeLevel:
        return effective(self.level, int(room.record.settings.get("degrade_floor", 0)))

    @property
    def tick_interval_s(self) -> float:
        return max(self.settings.tick_ms, POLICIES[self.level].tick_ms) / 1000

    @property
    def state_interval_s(self) -> float:
        return POLICIES[self.level].state_interval_s

    def note_lag(self, lag: float) -> None:
        self._lag = max(self._lag, lag)  # the worst since the last measure()

    def note_tick(self, took: float, buffered: int) -> str | None:
        """Count one tick (it took ``took`` s and left ``buffered`` bytes in the buffers
        of the viewers it wrote to). Only a memory mark escalates at once; a slow tick
        counts in the second's mean tick. Returns why the level rose, or None."""
        self._tick_time += took
        self._ticks += 1
        self._tick_buffered = max(self._tick_buffered, buffered)
        if not self.settings.degrade_auto:
            return None
        if self.controller.escalate(called_for_by_tick(buffered)):
            ratio = took / self.tick_interval_s
            return f"one tick {ratio:.2f} of budget, left {buffered / 1e6:.1f} MB buffered"
        return None

    def measure(self, paused: Iterable[Connection]) -> Signals:
        """The last second's signals (called once a second). Buffered bytes: the most
        one tick left in the buffers it wrote to, plus what the ``paused`` connections
        (over their high mark, so skipped by ticks) hold; nothing visits the others."""
        buffered = self._tick_buffered
        for conn in paused:
            if conn.transport is not None:
                buffered += conn.transport.get_write_buffer_size()
        self.signals = Signals(
            loop_lag_s=self._lag,
            # The mean tick, not the slowest: one slow tick among ten (a burst of
            # joins, a GC pause) does not mean the node cannot keep up.
            tick_ratio=(self._tick_time / self._ticks / self.tick_interval_s)
            if self._ticks
            else 0.0,
            buffered_bytes=buffered,
            ingest_per_s=self.ingested / MEASURE_INTERVAL_S,
            store_latency_s=self.store_latency,
            store_ok=self.store_ok,
        )
        self.ingested = 0
        self._tick_time = 0.0
        self._ticks = 0
        self._tick_buffered = 0
        self._lag = 0.0
        return self.signals

    def wanted(self, now: float) -> DegradeLevel:
        """The controller's level after this second's signals (normal when not automatic)."""
        level = self.controller.update(self.signals, now)
        return level if self.settings.degrade_auto else DegradeLevel.NORMAL

    def apply(self, automatic: DegradeLevel, reason: str) -> bool:
        """Serve at ``automatic`` raised by the floor; log and count a change. True when
        the node's level changed."""
        level = effective(automatic, self.floor)
        changed = level != self.level
        if changed:
            log.warning("degrade level %d -> %d (%s)", self.level, level, reason)
            self.metrics.degrade_changes.labels(str(int(level))).inc()
        self.level = level
        self.metrics.degrade_level.set(int(level))
        return changed


def reason(signals: Signals) -> str:
    return (
        f"loop lag {signals.loop_lag_s * 1000:.0f} ms, tick {signals.tick_ratio:.2f} of "
        f"budget, buffered {signals.buffered_bytes / 1e6:.1f} MB, ingest "
        f"{signals.ingest_per_s:.0f}/s, store {signals.store_latency_s * 1000:.0f} ms"
        + ("" if signals.store_ok else " (unreachable)")
    )
