"""Keyword alerts in the room layer (PROTOCOL.md, "Keyword alerts").

Each node matches the danmaku, wall posts and questions it accepts against the room's
watch lists and counts them (:mod:`server.moderation.alerts`, pure). A spike becomes an
alert: a record in the store box ``~alerts`` (beside ``~moderation``; no interaction id
can take a ``~`` name, and room settings, which every viewer receives, never hold watch
lists or alerts), a ``keyword_alert`` notice to the staff connections here at once, and
a mark like an interaction's, so every other node serving the room re-reads the box and
tells its own staff connections what is new. Acknowledging goes the same way. Watch
lists are kept in ``~watchlists``, one record per list, re-read on every node when marked.

Every node serving the room counts all of its danmaku: its own, and (from the relay)
the other nodes'; wall posts and questions count on the node that took them. Several
nodes may so see the same spike: an alert's id is its list's and its window's, and the
store keeps the first node's (the others' writes are duplicates and tell nobody).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocol.messages import CommandError
from server.auth import Identity
from server.backends.base import BackendUnavailable, RoomNotFound, Store
from server.metrics import Metrics
from server.moderation.alerts import (
    KeywordMatcher,
    Normalise,
    SpikeDetector,
    WatchList,
    WatchListError,
    parse_watchlists,
    stand_in_normalise,
)
from server.rooms.outbox import RoomOutbox

log = logging.getLogger("hudong.alerts")

WATCH_BOX = "~watchlists"
ALERTS_BOX = "~alerts"
ALERT_BOXES = (WATCH_BOX, ALERTS_BOX)
MAX_ALERTS_KEPT = 50  # per room, newest; older ones are deleted
ACTIVE_S = 3600  # an alert nobody acknowledged counts as active this long
SAMPLE_CHARS = 200
ALERT_ID_CHARS = 64


def _notice(record: dict[str, Any]) -> dict[str, Any]:
    return {"type": "notice", "kind": "keyword_alert", "alert": record}


@dataclass(eq=False)
class RoomWatch:
    """One room's watch lists, matcher and counts on this node, and the alerts it knows."""

    watchlists: list[WatchList]
    matcher: KeywordMatcher
    detector: SpikeDetector
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    reloading: bool = False
    again: bool = False  # marked while reloading: read once more after


class AlertDesk:
    """Matches accepted danmaku against watch lists, raises and acknowledges alerts, and
    tells the staff connections on every node."""

    def __init__(
        self,
        store: Store,
        outbox: Callable[[], RoomOutbox],
        changed: Callable[[str, str, int], None],
        *,
        node_id: str,
        # TODO(merge): use server.moderation.text.normalise
        normalise: Normalise = stand_in_normalise,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._outbox = outbox
        self._changed = changed
        self.node_id = node_id
        self.metrics: Metrics | None = None
        self.normalise = normalise
        self._clock = clock
        self.rooms: dict[str, RoomWatch] = {}
        self._raised: dict[str, float] = {}  # alert id -> when, raised here, not acknowledged
        self._tasks: set[asyncio.Task[None]] = set()

    def count_in(self, metrics: Metrics) -> None:
        """Count alerts in the node's metrics (``hudong_keyword_alerts_total``, and the
        gauge ``hudong_keyword_alerts_active``, read when scraped)."""
        self.metrics = metrics
        metrics.keyword_alerts_active.set_function(self.active)

    def active(self) -> int:
        """Alerts this node raised that nobody acknowledged (for the last ACTIVE_S)."""
        cutoff = self._clock() - ACTIVE_S
        self._raised = {a: at for a, at in self._raised.items() if at > cutoff}
        return len(self._raised)

    # --- which rooms -------------------------------------------------------------------------

    async def serve(self, room_id: str) -> None:
        """Read the room's watch lists and alerts when it starts being served here."""
        if room_id in self.rooms:
            return
        watch = RoomWatch([], KeywordMatcher([], self.normalise), SpikeDetector(self._clock))
        await self._read(room_id, watch)
        self.rooms.setdefault(room_id, watch)

    def release(self, room_id: str) -> None:
        self.rooms.pop(room_id, None)

    async def _read(self, room_id: str, watch: RoomWatch) -> list[dict[str, Any]]:
        """Re-read both boxes into ``watch``; the alerts that are new or changed."""
        stored = await self.store.records(room_id, WATCH_BOX)
        lists = []
        for record in stored.values():
            with contextlib.suppress(WatchListError):
                lists.append(WatchList.parse(record))
        lists.sort(key=lambda w: w.id)
        if lists != watch.watchlists:
            watch.watchlists = lists
            watch.matcher = KeywordMatcher(lists, self.normalise)
            watch.detector.watch(lists)
        alerts = await self.store.records(room_id, ALERTS_BOX)
        news = [a for i, a in alerts.items() if watch.alerts.get(i) != a]
        watch.alerts = dict(alerts)
        for record in news:
            if record.get("acked"):
                self._raised.pop(record.get("id", ""), None)
        return sorted(news, key=lambda a: a.get("at", 0))

    def stale(self, room_id: str, box: str) -> None:
        """Another node changed a box of ours (a relayed mark): re-read, tell staff here."""
        watch = self.rooms.get(room_id)
        if box not in ALERT_BOXES or watch is None:
            return
        if watch.reloading:  # the read under way may be older than this change
            watch.again = True
            return
        watch.reloading = True
        self._spawn(self._reload(room_id, watch))

    def resync(self, room_ids: Iterable[str] | None = None) -> None:
        """Re-read the watch lists of every room (or of ``room_ids``: a relay gap)."""
        for room_id in list(self.rooms) if room_ids is None else room_ids:
            self.stale(room_id, ALERTS_BOX)

    async def _reload(self, room_id: str, watch: RoomWatch) -> None:
        try:
            while True:
                watch.again = False
                news = await self._read(room_id, watch)
                for record in news:
                    self._outbox().tell_staff(room_id, _notice(record))
                if not watch.again:
                    break
        except (BackendUnavailable, RoomNotFound):
            pass  # the next mark or resync reads it again
        finally:
            watch.reloading = False

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- matching (on the danmaku path: no await) ----------------------------------------------

    def said(self, room_id: str, identity: Identity, text: str, now: float) -> None:
        """An accepted danmaku, wall post or question: count it for the lists it hits;
        raise an alert on a spike."""
        self._count(room_id, identity.user_id, identity.name, text, now)

    def heard(self, room_id: str, events: Sequence[Mapping[str, Any]]) -> None:
        """Danmaku another node accepted (relayed): they count here too, so each node
        counts the whole room's, and a spike spread over the nodes is one spike."""
        watch = self.rooms.get(room_id)
        if watch is None or not watch.matcher:
            return
        for event in events:
            text, user = event.get("text"), event.get("user")
            if event.get("type") == "danmaku" and isinstance(text, str):
                who = user if isinstance(user, dict) else {}
                ts = event.get("ts")
                at = ts / 1000 if isinstance(ts, int | float) else self._clock()
                self._count(room_id, str(who.get("id", "")), str(who.get("name", "")), text, at)

    def _count(self, room_id: str, user_id: str, name: str, text: str, now: float) -> None:
        watch = self.rooms.get(room_id)
        if watch is None or not watch.matcher:
            return
        hits = watch.matcher.hits(text)
        if not hits:
            return
        sample = {"user": user_id, "name": name, "text": text[:SAMPLE_CHARS], "ts": int(now * 1000)}
        for hit in hits:
            spike = watch.detector.add(hit, sample)
            if spike is None:
                continue
            # Every node counts the whole room, so several may see the same spike: the
            # alert's id is the list's and the window's, and the store keeps the first.
            alert_id = f"a-{hit.id}-{int(now // hit.window_s)}"
            record: dict[str, Any] = {
                "id": alert_id,
                "watch": hit.id,
                "name": hit.name,
                "count": spike.count,
                "threshold": hit.threshold,
                "window_s": hit.window_s,
                "normal": spike.normal,
                "at": int(now * 1000),
                "node": self.node_id,
                "samples": list(spike.samples),
                "acked": None,
            }
            self._spawn(self._raise(room_id, watch, record, now))

    async def _raise(
        self, room_id: str, watch: RoomWatch, record: dict[str, Any], now: float
    ) -> None:
        """Store a new alert; when this node's copy is the first, count it and tell the
        staff here (the other nodes learn of it from the mark), and forget the oldest
        beyond MAX_ALERTS_KEPT. A store that does not answer: staff here still hear."""
        alert_id = record["id"]
        try:
            result = await self.store.apply(
                room_id, ALERTS_BOX, alert_id, f"raise-{alert_id}", record, {}
            )
        except (BackendUnavailable, RoomNotFound) as exc:
            log.warning("alert %s of room %s not stored: %s", alert_id, room_id, exc)
        else:
            if result.status != "applied":
                return  # another node raised it first
            self._changed(room_id, ALERTS_BOX, result.version)
        watch.alerts[alert_id] = record
        self._raised[alert_id] = now
        if self.metrics is not None:
            self.metrics.keyword_alerts.inc()
        self._outbox().tell_staff(room_id, _notice(record))
        with contextlib.suppress(BackendUnavailable, RoomNotFound):
            held = await self.store.records(room_id, ALERTS_BOX)
            old = sorted(held.values(), key=lambda a: a.get("at", 0))[:-MAX_ALERTS_KEPT]
            for stale in old:
                await self._write(room_id, ALERTS_BOX, str(stale.get("id")), None)

    async def _write(self, room_id: str, box: str, key: str, record: dict[str, Any] | None) -> None:
        result = await self.store.apply(room_id, box, key, f"al-{secrets.token_hex(8)}", record, {})
        self._changed(room_id, box, result.version)

    # --- REST: watch lists, alerts, acknowledging ------------------------------------------------

    async def listing(self, room_id: str) -> dict[str, Any]:
        """The room's watch lists and alerts, newest alert first (GET …/alerts)."""
        await self.store.get_room(room_id)
        lists = []
        for record in (await self.store.records(room_id, WATCH_BOX)).values():
            with contextlib.suppress(WatchListError):  # only checked lists are stored
                lists.append(WatchList.parse(record))
        alerts = await self.store.records(room_id, ALERTS_BOX)
        return {
            "watchlists": [w.public() for w in sorted(lists, key=lambda w: w.id)],
            "alerts": sorted(alerts.values(), key=lambda a: a.get("at", 0), reverse=True),
            "active": sum(1 for a in alerts.values() if not a.get("acked")),
        }

    async def set_watchlists(self, room_id: str, value: Any) -> dict[str, Any]:
        """Replace the room's watch lists (PUT …/alerts/watchlists)."""
        try:
            lists = parse_watchlists(value)
        except WatchListError as exc:
            raise CommandError("invalid_field", str(exc)) from None
        await self.store.get_room(room_id)
        held = await self.store.records(room_id, WATCH_BOX)
        wanted = {w.id: w.public() for w in lists}
        for wid in held.keys() - wanted.keys():
            await self._write(room_id, WATCH_BOX, wid, None)
        for wid, record in wanted.items():
            if held.get(wid) != record:
                await self._write(room_id, WATCH_BOX, wid, record)
        watch = self.rooms.get(room_id)
        if watch is not None:  # here at once, not when the mark comes back
            await self._read(room_id, watch)
        return await self.listing(room_id)

    async def acknowledge(self, room_id: str, alert_id: str, by: Identity | None) -> dict[str, Any]:
        """Mark an alert acknowledged by ``by`` (None: the admin); repeat-safe: the first
        acknowledgement is kept."""
        if not 1 <= len(alert_id) <= ALERT_ID_CHARS or not alert_id.startswith("a-"):
            raise CommandError("unknown_target", f"no alert {alert_id!r:.48}")
        await self.store.get_room(room_id)
        record = (await self.store.records(room_id, ALERTS_BOX)).get(alert_id)
        if record is None:
            raise CommandError("unknown_target", f"no alert {alert_id!r:.48}")
        if record.get("acked"):
            return record
        who = {"user": "admin", "name": "admin", "role": "admin"}
        if by is not None:
            who = {"user": by.user_id, "name": by.name, "role": by.role}
        record = {**record, "acked": {**who, "at": int(self._clock() * 1000)}}
        await self._write(room_id, ALERTS_BOX, alert_id, record)
        self._raised.pop(alert_id, None)
        watch = self.rooms.get(room_id)
        if watch is not None:
            watch.alerts[alert_id] = record
        self._outbox().tell_staff(room_id, _notice(record))
        return record
