"""Prometheus metrics of a hub node.

The registry is injected (no globals at import time), and labels are bounded:
op, result, codec, reason and role take a handful of values each; nothing is
labelled by room, viewer or message.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The node's Prometheus metrics, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
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
        self.rooms = Gauge("hudong_rooms", "Rooms with at least one local connection", registry=r)
        self.commands = Counter(
            "hudong_commands", "Commands received, by op and result", ["op", "result"], registry=r
        )
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
