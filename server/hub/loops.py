"""The hub's periodic work, each a loop that a failure in one round cannot stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from server.backends.base import BackendUnavailable, Store
from server.hub.collector import Collector
from server.hub.connection import Connection
from server.hub.degrade import DegradeLevel
from server.hub.fanout import Fanout
from server.hub.governor import MEASURE_INTERVAL_S, Governor, reason
from server.hub.ports import Rooms
from server.hub.presence import PRESENCE_INTERVAL_S, Presence
from server.hub.reads import Reads
from server.hub.room import LiveRoom
from server.hub.upkeep import Upkeep
from server.metrics import Metrics

log = logging.getLogger("hudong.hub")

LOOP_LAG_INTERVAL_S = 0.5
# The stall probe: often enough to see every stall worth counting, and the worst one
# kept for a window so that a scrape every few seconds still sees it.
STALL_PROBE_S = 0.05
STALL_WINDOW_S = 5.0
HEALTH_INTERVAL_S = 1.0
RESYNC_INTERVAL_S = 15.0


class LoopsHost(Protocol):
    """What the loops drive: the hub and its parts."""

    metrics: Metrics
    governor: Governor
    fanout: Fanout
    upkeep: Upkeep
    presence: Presence
    reads: Reads
    store: Store
    rooms: Rooms
    connections: set[Connection]
    live: dict[str, LiveRoom]

    @property
    def level(self) -> DegradeLevel: ...
    @property
    def ready(self) -> bool: ...
    def now(self) -> float: ...
    def tick(self) -> None: ...
    async def flush_state(self) -> None: ...
    def set_level(self, automatic: DegradeLevel, why: str) -> None: ...
    def resync(self, room_ids: None = None, check: bool = False) -> None: ...


class Loops:
    """Runs the hub's periodic work: ticks, state flushes, upkeep and degrade levels, the
    event-loop lag probe and, with other nodes, store health and presence."""

    def __init__(self, hub: LoopsHost) -> None:
        self.hub = hub
        self._tasks: list[asyncio.Task[None]] = []
        self.collector = Collector()

    def start(self, shared: bool) -> None:
        loop = asyncio.get_running_loop()
        loops: list[Callable[[], Coroutine[Any, Any, None]]] = [
            self._ticks,
            self._state,
            self._upkeep,
            self._loop_lag,
            self._stalls,
            self._room_count,
        ]
        if shared:
            loops += [self._health, self._presence]
        self.collector.start()
        self._tasks = [loop.create_task(fn(), name=f"hudong{fn.__name__}") for fn in loops]

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self._tasks:
            self.collector.stop()
        self._tasks = []

    async def _ticks(self) -> None:
        hub = self.hub
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        observe = hub.metrics.tick_duration.observe
        while True:
            deadline += hub.governor.tick_interval_s
            delay = deadline - loop.time()
            if delay < 0:
                # Fell behind (a slow tick, a stalled loop): the next batch goes out at
                # once and carries what piled up, nothing dropped; missed ticks are not
                # bunched. Only pressure that lasts raises the level (degrade.py).
                deadline = loop.time()
                delay = 0
            await asyncio.sleep(delay)
            hub.reads.tick(hub.governor.tick_interval_s)  # this tick's danmaku, read first
            started = time.perf_counter()
            hub.fanout.buffered = 0
            try:
                hub.tick()
            except Exception:  # pragma: no cover - a bug must not stop delivery for good
                log.exception("tick failed")
            took = time.perf_counter() - started
            observe(took)
            why = hub.governor.note_tick(took, hub.fanout.buffered)
            if why is not None:
                hub.set_level(hub.governor.controller.level, why)

    async def _state(self) -> None:
        while True:
            await asyncio.sleep(self.hub.governor.state_interval_s)
            try:
                await self.hub.flush_state()
            except Exception:  # pragma: no cover
                log.exception("state flush failed")

    async def _upkeep(self) -> None:
        hub = self.hub
        while True:
            await asyncio.sleep(MEASURE_INTERVAL_S)
            try:
                now = hub.now()
                hub.upkeep.round(now)  # visits only the connections due
                signals = hub.governor.measure(hub.upkeep.paused)
                self.collector.check(len(hub.connections), signals.ingest_per_s)
                level = hub.governor.wanted(now)
                if max(level, hub.governor.floor) != hub.level:
                    hub.set_level(level, reason(hub.governor.signals))
            except Exception:  # pragma: no cover
                log.exception("upkeep failed")

    async def _loop_lag(self) -> None:
        loop = asyncio.get_running_loop()
        metrics = self.hub.metrics
        while True:
            started = loop.time()
            await asyncio.sleep(LOOP_LAG_INTERVAL_S)
            lag = max(0.0, loop.time() - started - LOOP_LAG_INTERVAL_S)
            self.hub.governor.note_lag(lag)
            metrics.loop_lag.set(lag)
            metrics.loop_lag_hist.observe(lag)

    async def _stalls(self) -> None:
        """How long the loop ran something else past each 50 ms probe: the histogram,
        and the worst of the last 5-10 s (two windows of STALL_WINDOW_S). Only for
        /metrics: the degrade level follows the 0.5 s lag probe, as before."""
        loop = asyncio.get_running_loop()
        observe = self.hub.metrics.loop_stall.observe
        worst = self.hub.metrics.loop_stall_max
        window_ends = loop.time() + STALL_WINDOW_S
        current = previous = 0.0
        while True:
            started = loop.time()
            await asyncio.sleep(STALL_PROBE_S)
            now = loop.time()
            stall = max(0.0, now - started - STALL_PROBE_S)
            observe(stall)
            if now >= window_ends:
                previous, current = current, 0.0
                window_ends = now + STALL_WINDOW_S
            current = max(current, stall)
            worst.set(max(current, previous))

    async def _health(self) -> None:
        """Ping the store; /readyz follows the answer (PROTOCOL.md, "REST API").

        Relay messages are at most once, so while Redis was away other nodes' state
        updates may have been lost: when it answers again, every room this node
        serves re-reads its interactions, mutes, bans, revocations and record from the
        store. Every RESYNC_INTERVAL_S, as a safety net, each room's record is read, and
        the rest where the room's version moved since its last full read (a relay
        message of a quiet room cannot have been lost).
        """
        hub = self.hub
        governor = hub.governor
        was_ready = True
        last_resync = hub.now()
        while True:
            try:
                started = time.perf_counter()
                await asyncio.wait_for(hub.store.ping(), 2.0)
                governor.store_latency = time.perf_counter() - started
                hub.metrics.store_latency.observe(governor.store_latency)
                if not governor.store_ok:
                    log.info("store reachable again")
                governor.store_ok = True
            except (TimeoutError, BackendUnavailable) as exc:
                if governor.store_ok:
                    log.warning("store unreachable: %s", exc)
                governor.store_ok = False
            hub.metrics.store_up.set(1 if governor.store_ok else 0)
            ready = hub.ready
            hub.metrics.ready.set(1 if ready else 0)
            if ready and (not was_ready or hub.now() - last_resync > RESYNC_INTERVAL_S):
                last_resync = hub.now()
                hub.resync(check=was_ready)  # all again after the store was away
            was_ready = ready
            await asyncio.sleep(HEALTH_INTERVAL_S)

    async def _presence(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_INTERVAL_S)
            await self.hub.presence.publish(self.hub.live.values())

    async def _room_count(self) -> None:
        """``hudong_rooms``: the rooms that exist, with viewers or not (one cheap store
        read every few seconds); and the viewers by room, when rooms are labelled."""
        while True:
            live = self.hub.live.values()
            self.hub.metrics.viewers_by_room({room.id: room.viewers for room in live})
            with contextlib.suppress(BackendUnavailable):
                self.hub.metrics.rooms.set(await self.hub.store.room_count())
            await asyncio.sleep(PRESENCE_INTERVAL_S)
