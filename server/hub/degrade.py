"""Degrade levels (ARCHITECTURE.md, "Degrade levels"): pure rules, no I/O.

A node measures its signals once a second; :class:`DegradeController` turns them
into a level with hysteresis. It escalates on pressure that lasts: a signal of time
(loop lag, tick duration, ingest, store latency) raises the level only once every
sample for ``sustain_s`` called for it, so one late tick or one lag sample (a GC
pause, a neighbour on the VM, a connect wave) is caught up by the next ticks, not
answered by dropping. Memory marks (bytes left in the viewers' buffers) and an
unreachable store act at once, and a tick that leaves that much behind raises the
level without waiting for the second (:func:`called_for_by_tick`). It relaxes one
level at a time, only after every signal stayed under that level's *relax* mark,
half its escalate mark, for ``relax_after_s``. Floors (a room's, set by its host, and
the node's, set by the admin) only raise the level a room is served at.
:func:`shape` applies a level's stream policy to one tick's events. State-changing
commands are never subject to any of this.

=====  ============  ==========================================================
level  name          stream policy
=====  ============  ==========================================================
0      normal        every event; tick 100 ms; state views ~4/s
1      busy          duplicate danmaku merged ("666 ×37"); at most 200 per tick,
                     host, moderators and highlighted first; state ~2/s
2      overloaded    tick 250 ms; merged; 60 per tick, fair sampling across
                     senders; state every 0.75 s; slow mode: a viewer's danmaku at
                     most one per 3 s
3      essential     tick 300 ms; viewers' danmaku paused (hosts, moderators and
                     highlighted still flow, 20 per tick); state every 0.75 s;
                     new connections refused with Retry-After
=====  ============  ==========================================================
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

STAFF = ("host", "moderator")


class DegradeLevel(IntEnum):
    """How hard a room is served: 0 normal to 3 essential."""

    NORMAL = 0
    BUSY = 1
    OVERLOADED = 2
    ESSENTIAL = 3


@dataclass(frozen=True, slots=True)
class StreamPolicy:
    """What one degrade level does to the stream, the state flush and ingress."""

    tick_ms: int
    cap: int | None  # danmaku per room per tick
    merge: bool
    sample: bool  # fair sampling across senders when over the cap
    staff_only: bool
    state_interval_s: float
    slow_mode_s: float | None  # a viewer's minimum interval between danmaku


POLICIES: dict[DegradeLevel, StreamPolicy] = {
    DegradeLevel.NORMAL: StreamPolicy(100, None, False, False, False, 0.25, None),
    DegradeLevel.BUSY: StreamPolicy(100, 200, True, False, False, 0.5, None),
    # state every 0.75 s: with the flush's own work a vote's view still lands within 1 s
    DegradeLevel.OVERLOADED: StreamPolicy(250, 60, True, True, False, 0.75, 3.0),
    DegradeLevel.ESSENTIAL: StreamPolicy(300, 20, True, True, True, 0.75, None),
}


@dataclass(frozen=True, slots=True)
class Signals:
    """What a node measured over the last second."""

    loop_lag_s: float = 0.0
    tick_ratio: float = 0.0  # mean tick duration / its budget (the tick interval)
    buffered_bytes: int = 0  # outbound bytes waiting in all connections' buffers
    ingest_per_s: float = 0.0  # commands received per second
    store_latency_s: float = 0.0
    store_ok: bool = True


# Escalate marks: a signal at or over the mark of level L calls for at least L.
MARKS: dict[str, tuple[float, float, float]] = {
    #                  level 1   level 2   level 3
    # A node whose ticks are heavy lags by up to a tick (100 ms) by design: lag
    # starts to matter past that. Ticks may fill most of their budget before the
    # node falls behind (measured: 5,000 viewers x 500/s held level 0 with p99 170 ms
    # while its ticks took 70-95% of the budget).
    "loop_lag_s": (0.15, 0.3, 1.0),
    "tick_ratio": (0.9, 1.25, 3.0),
    "buffered_bytes": (32e6, 128e6, 512e6),
    "ingest_per_s": (3000.0, 8000.0, 20000.0),
    "store_latency_s": (0.1, 0.5, 2.0),
}
RELAX_FRACTION = 0.5

# Memory marks act at once: bytes waiting in buffers grow with every tick a node falls
# behind (measured: a surge to 4x the load left 1 GB in send buffers and 4.5 s of stall
# before the next measure). The other signals measure time, which a single pause
# inflates without the node falling behind: they must last (``sustain_s``).
MEMORY = ("buffered_bytes",)
SUSTAINED = tuple(name for name in MARKS if name not in MEMORY)


def called_for_by_tick(buffered_bytes: int) -> DegradeLevel:
    """The level one tick calls for on its own: only its memory mark (what it left in
    the buffers of the viewers it wrote to). A tick over its budget does not count by
    itself: the next tick starts at once and catches up."""
    return _reached(float(buffered_bytes), MARKS["buffered_bytes"], 1.0)


def _reached(value: float, marks: tuple[float, float, float], fraction: float) -> DegradeLevel:
    level = DegradeLevel.NORMAL
    for index, mark in enumerate(marks):
        if value >= mark * fraction:
            level = DegradeLevel(index + 1)
    return level


def called_for(
    signals: Signals, fraction: float = 1.0, names: tuple[str, ...] = tuple(MARKS)
) -> DegradeLevel:
    """The highest level any of the signals ``names`` reaches (marks scaled by
    ``fraction``); an unreachable store calls for level 2 whatever ``names``."""
    level = DegradeLevel.NORMAL
    for name in names:
        level = max(level, _reached(float(getattr(signals, name)), MARKS[name], fraction))
    if not signals.store_ok:
        # Votes wait for the store; keep the stream light while they retry.
        level = max(level, DegradeLevel.OVERLOADED)
    return level


class DegradeController:
    """Escalate on pressure that lasts ``sustain_s`` (memory marks at once), relax
    slowly: one level per ``relax_after_s`` of calm."""

    def __init__(self, relax_after_s: float = 10.0, sustain_s: float = 2.0) -> None:
        self.relax_after_s = relax_after_s
        self.sustain_s = sustain_s
        self.level = DegradeLevel.NORMAL
        self._calm_since: float | None = None
        # level -> when the unbroken run of samples calling for at least it began
        self._pressed_since: dict[int, float] = {}

    def lasting(self, wanted: DegradeLevel, now: float) -> DegradeLevel:
        """Note one sample's level of time pressure; the highest level that every sample
        of the last ``sustain_s`` called for (normal while the pressure is younger)."""
        lasting = DegradeLevel.NORMAL
        for level in (DegradeLevel.BUSY, DegradeLevel.OVERLOADED, DegradeLevel.ESSENTIAL):
            if wanted < level:
                self._pressed_since.pop(level, None)
                continue
            since = self._pressed_since.setdefault(level, now)
            if now - since >= self.sustain_s:
                lasting = level
        return lasting

    def escalate(self, wanted: DegradeLevel) -> bool:
        """Go up to ``wanted`` now if it is higher (never down); True if the level rose."""
        if wanted <= self.level:
            return False
        self.level = wanted
        self._calm_since = None
        return True

    def update(self, signals: Signals, now: float) -> DegradeLevel:
        at_once = called_for(signals, names=MEMORY)  # and an unreachable store
        lasting = self.lasting(called_for(signals, names=SUSTAINED), now)
        if self.escalate(max(at_once, lasting)):
            return self.level
        # Calm means: under the relax marks of the current level.
        if self.level > DegradeLevel.NORMAL and called_for(signals, RELAX_FRACTION) < self.level:
            if self._calm_since is None:
                self._calm_since = now
            elif now - self._calm_since >= self.relax_after_s:
                self.level = DegradeLevel(self.level - 1)
                self._calm_since = now  # the next step down needs its own calm period
        else:
            self._calm_since = None
        return self.level


def effective(level: int, *floors: int) -> DegradeLevel:
    return DegradeLevel(max(level, *floors, 0))


def _priority(event: dict[str, Any]) -> bool:
    user = event.get("user") or {}
    return bool(event.get("highlight")) or user.get("role") in STAFF


def _merge_key(event: dict[str, Any]) -> str:
    return " ".join(str(event.get("text", "")).casefold().split())


def shape(events: list[dict[str, Any]], policy: StreamPolicy) -> tuple[list[dict[str, Any]], int]:
    """One tick's events under ``policy``; returns (events to send, danmaku dropped).

    Non-danmaku events (draw results, reveals) always pass. Among danmaku: staff
    and highlighted first; viewers' duplicates merged into the first with a
    ``count``; then the cap, filled fairly (round robin over senders, each sender's
    messages in order) when ``sample`` is set. Each sender's order is kept.
    """
    others = [e for e in events if e.get("type") != "danmaku"]
    danmaku = [e for e in events if e.get("type") == "danmaku"]
    if not danmaku:
        return events, 0
    total = len(danmaku)
    priority = [e for e in danmaku if _priority(e)]
    regular = [] if policy.staff_only else [e for e in danmaku if not _priority(e)]
    if policy.merge and regular:
        merged: OrderedDict[str, dict[str, Any]] = OrderedDict()
        for event in regular:
            key = _merge_key(event)
            first = merged.get(key)
            if first is None:
                merged[key] = event
            else:
                if "count" not in first:
                    first = merged[key] = {**first, "count": 1}
                first["count"] += 1
        regular = list(merged.values())
    kept = priority
    if policy.cap is not None:
        kept = priority[: policy.cap]
        room = policy.cap - len(kept)
        if room <= 0:
            regular = []
        elif len(regular) > room:
            regular = _fair(regular, room) if policy.sample else regular[:room]
    sent = [*kept, *regular]
    delivered = sum(e.get("count", 1) for e in sent)
    return [*others, *sent], total - delivered


def _fair(events: list[dict[str, Any]], room: int) -> list[dict[str, Any]]:
    """Round robin over senders so a heavy sender cannot crowd out the others."""
    queues: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for event in events:
        queues.setdefault(str((event.get("user") or {}).get("id")), []).append(event)
    chosen: set[int] = set()
    while len(chosen) < room and queues:
        for sender in list(queues):
            queue = queues[sender]
            chosen.add(id(queue.pop(0)))
            if not queue:
                del queues[sender]
            if len(chosen) >= room:
                break
    return [e for e in events if id(e) in chosen]  # arrival order
