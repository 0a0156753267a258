"""Prometheus metrics of a hub node.

The registry is injected (no globals at import time), and labels are bounded:
op, result, codec, reason and role take a handful of values each, kind the
registry's names; nothing is labelled by viewer or message. By room only with
``server.metrics_room_labels`` on, and then at most ``metrics_room_labels_max``
rooms at a time (:class:`RoomLabels`; the rest share ``room="_other"``).
docs/metrics.md lists every metric (tests/test_metrics_docs.py keeps it true).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

OTHER_ROOMS = "_other"  # the room label of the rooms past the cap


class RoomLabels:
    """Gives rooms their ``room`` label: each of the first ``cap`` rooms served here its
    own id, every later one :data:`OTHER_ROOMS`, until a labelled room stops being
    served here and frees its place. ``cap`` 0: no room is labelled."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.labelled: set[str] = set()

    def of(self, room_id: str) -> str:
        if room_id in self.labelled:
            return room_id
        if len(self.labelled) < self.cap and room_id != OTHER_ROOMS:
            self.labelled.add(room_id)
            return room_id
        return OTHER_ROOMS

    def keep(self, room_ids: Iterable[str]) -> set[str]:
        """Free the places of rooms not in ``room_ids``; the labels that went."""
        gone = self.labelled - set(room_ids)
        self.labelled -= gone
        return gone


class Metrics:
    """The node's Prometheus metrics, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None, room_labels: int = 0) -> None:
        # No ``_created`` samples: they double the series and no rule uses them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.connections = Gauge(
            "hudong_connections", "Open WebSocket connections", ["codec"], registry=r
        )
        self.connections_total = Counter(
            "hudong_connections_opened", "WebSocket connections accepted", registry=r
        )
        self.disconnects = Counter(
            "hudong_disconnects", "Connections closed, by close code name", ["reason"], registry=r
        )
        self.rooms = Gauge(
            "hudong_rooms", "Rooms that exist (all nodes, from the store)", registry=r
        )
        self.rooms_active = Gauge(
            "hudong_rooms_active", "Rooms with at least one connection on this node", registry=r
        )
        # The text filter (server/moderation/screen.py): never labelled by the word.
        self.text_decisions = Counter(
            "hudong_text_decisions",
            "Texts decided by the filter, by action (pass, mask, review, reject) and reason",
            ["action", "reason"],
            registry=r,
        )
        self.commands = Counter(
            "hudong_commands", "Commands received, by op and result", ["op", "result"], registry=r
        )
        self._children: dict[tuple[Any, ...], Counter] = {}  # see _inc
        self.events_out = Counter(
            "hudong_events_out", "Events put into batches (each counted once per batch)", registry=r
        )
        self.messages_delivered = Counter(
            "hudong_messages_delivered",
            "Events written to connections (events x receiving connections)",
            registry=r,
        )
        self.frames_out = Counter(
            "hudong_frames_out", "WebSocket data frames written", ["codec"], registry=r
        )
        self.bytes_out = Counter(
            "hudong_bytes_out", "Bytes of data frames written", ["codec"], registry=r
        )
        self.encodes = Counter(
            "hudong_batch_encodes",
            "Batch encodings (one per codec per room per tick)",
            ["codec"],
            registry=r,
        )
        self.drops = Counter(
            "hudong_drops", "Deliveries skipped, by reason", ["reason"], registry=r
        )
        self.relay_messages = Counter(
            "hudong_relay_messages",
            "Messages between nodes through the broker",
            ["direction"],
            registry=r,
        )
        self.store_errors = Counter(
            "hudong_store_errors",
            "Store or broker calls that failed (Redis unreachable)",
            registry=r,
        )
        self.ready = Gauge("hudong_ready", "1 when /readyz reports ready", registry=r)
        self.presence = Gauge(
            "hudong_room_viewers_max",
            "Viewers online in this node's busiest room, all nodes",
            registry=r,
        )
        self.state_updates = Counter(
            "hudong_state_updates", "Coalesced state messages sent to local viewers", registry=r
        )
        self.degrade_level = Gauge(
            "hudong_degrade_level",
            "This node's degrade level (0 normal .. 3 essential)",
            registry=r,
        )
        self.degrade_changes = Counter(
            "hudong_degrade_changes",
            "Degrade level changes, by the level entered",
            ["level"],
            registry=r,
        )
        self.tick_duration = Histogram(
            "hudong_tick_duration_seconds",
            "Time to build and write one tick of all rooms",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.loop_lag = Gauge(
            "hudong_event_loop_lag_seconds", "Lateness of the last event-loop lag probe", registry=r
        )
        self.loop_lag_hist = Histogram(
            "hudong_event_loop_lag_probe_seconds",
            "Event-loop lag probes",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        # A finer probe (every 50 ms) that catches stalls the lag probe sleeps through.
        self.loop_stall = Histogram(
            "hudong_event_loop_stall_seconds",
            "Lateness of the 50 ms stall probe: how long the event loop ran something else",
            buckets=(0.01, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.loop_stall_max = Gauge(
            "hudong_event_loop_stall_max_seconds",
            "The longest stall the 50 ms probe saw in the last 5 to 10 seconds",
            registry=r,
        )
        # Keyword alerts (server/rooms/alerts.py): no labels, never a word or a room.
        self.keyword_alerts = Counter(
            "hudong_keyword_alerts", "Keyword alerts (watch-list spikes) raised here", registry=r
        )
        self.keyword_alerts_active = Gauge(
            "hudong_keyword_alerts_active",
            "Keyword alerts raised here in the last hour that nobody acknowledged",
            registry=r,
        )
        # Delivery, store and broker (issue 16): one observation per batch or call.
        self.delivery_lag = Histogram(
            "hudong_delivery_lag_seconds",
            "From an event's acceptance (its ts) to its batch's write here: the oldest "
            "event of each batch",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.store_up = Gauge(
            "hudong_store_up", "1 when the store (Redis) answered the last ping", registry=r
        )
        self.store_up.set(1)  # one node's own store is always up; with Redis, pinged
        self.store_latency = Histogram(
            "hudong_store_ping_seconds",
            "Round trip of the store health ping (every second)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5),
            registry=r,
        )
        self.broker_latency = Histogram(
            "hudong_broker_relay_seconds",
            "Time of one relay flush to the broker (all rooms' messages of a tick)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.broker_errors = Counter(
            "hudong_broker_errors",
            "Relay flushes the broker refused (Redis unreachable)",
            registry=r,
        )
        self.contributions = Counter(
            "hudong_contributions",
            "Viewer commands on interactions taken (votes, answers, posts ...), by kind",
            ["kind"],
            registry=r,
        )

        # Platform chat bridges (server/bridges/): labelled by platform, a handful.
        self.bridged = Counter(
            "hudong_bridged_messages",
            "Platform chat messages taken by bridges, by platform and result (ok, duplicate,"
            " held, or the refusal's code)",
            ["platform", "result"],
            registry=r,
        )
        self.bridge_errors = Counter(
            "hudong_bridge_errors",
            "Bridge connections that failed or broke, by platform",
            ["platform"],
            registry=r,
        )
        self.bridges_connected = Gauge(
            "hudong_bridges_connected",
            "Bridges on this node connected to their platform, by platform",
            ["platform"],
            registry=r,
        )
        self.bridge_takeovers = Counter(
            "hudong_bridge_takeovers",
            "Bridges this node took over from another node whose lease had lapsed, by platform",
            ["platform"],
            registry=r,
        )
        self.bridge_lag = Histogram(
            "hudong_bridge_lag_seconds",
            "From a platform's send time of a chat message to its danmaku here, by platform",
            ["platform"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        # By room (server.metrics_room_labels): declared always, with samples only when on.
        self.rooms_labelled = RoomLabels(room_labels)
        self.room_viewers = Gauge(
            "hudong_room_viewers",
            "Viewers online on this node, by room (only with server.metrics_room_labels)",
            ["room"],
            registry=r,
        )
        self.room_danmaku = Counter(
            "hudong_room_danmaku",
            "Danmaku accepted on this node, by room (only with server.metrics_room_labels)",
            ["room"],
            registry=r,
        )
        self.room_contributions = Counter(
            "hudong_room_contributions",
            "Viewer commands on interactions taken on this node, by room (only with "
            "server.metrics_room_labels)",
            ["room"],
            registry=r,
        )

    def command(self, op: str, result: str) -> None:
        """Count one command in ``hudong_commands``."""
        self._inc(self.commands, op, result)

    def text_decision(self, action: str, reason: str) -> None:
        """Count one of the text filter's verdicts in ``hudong_text_decisions``."""
        self._inc(self.text_decisions, action, reason)

    def _inc(self, counter: Counter, *labels: str) -> None:
        """One more in a counter's labelled child, which is kept (the labels are bounded
        names): ``labels()`` costs microseconds, once per vote or danmaku."""
        key = (counter, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*labels)
        child.inc()

    def contributed_to(self, kinds: Iterable[str]) -> Callable[[str, str], None]:
        """The count of contributions by kind, every kind of the registry shown from the
        start (at 0): its labels are those names, so their number is bounded; and by
        room when rooms are labelled."""
        counters = {name: self.contributions.labels(name) for name in kinds}

        def contributed(kind: str, room_id: str) -> None:
            counters[kind].inc()
            if self.rooms_labelled.cap:
                self.room_contributions.labels(self.rooms_labelled.of(room_id)).inc()

        return contributed

    def danmaku_in(self, room_id: str) -> None:
        """A danmaku accepted here, counted by room when rooms are labelled."""
        if self.rooms_labelled.cap:
            self.room_danmaku.labels(self.rooms_labelled.of(room_id)).inc()

    def viewers_by_room(self, viewers: dict[str, int]) -> None:
        """The viewers of each room served here (every 2 s): rooms past the cap summed
        as ``_other``; the series of rooms no longer served here go."""
        labels = self.rooms_labelled
        if not labels.cap:
            return
        for gone in labels.keep(viewers):
            for metric in (self.room_viewers, self.room_danmaku, self.room_contributions):
                with contextlib.suppress(KeyError):
                    metric.remove(gone)
        totals: dict[str, int] = {}
        for room_id, n in viewers.items():
            label = labels.of(room_id)
            totals[label] = totals.get(label, 0) + n
        if OTHER_ROOMS not in totals:
            totals[OTHER_ROOMS] = 0
        for label, n in totals.items():
            self.room_viewers.labels(label).set(n)
