"""Carries a node's room traffic to the other nodes through the Broker.

Local viewers never wait for Redis: a danmaku accepted here goes straight into the
room's pending list, and also into the relay's outbox. A publisher task sends the
outbox at most once per ``interval_s`` (``[hub] relay_ms``): the first event after a
pause goes out at once, and at high rates everything that arrived in one interval
leaves as one message per room (ARCHITECTURE.md, "The hot path", step 2). A flush is
:meth:`Broker.relay`, on Redis one round trip: the messages, and every
REPLAY_INTERVAL_S the events since the last append to the rooms' shared replay lists
(so at 200 danmaku/s about 60 Redis commands per second for a room, not 800).
Nodes drop their own messages when they come back from the channel.

Wire format between nodes (MessagePack map, PROTOCOL.md does not cover it: it is
internal and versioned by ``v``): ``n`` node id, ``e`` stream events, ``p`` private
notices as ``[user ids, notice]`` pairs, ``s`` changed interactions by id as ``[room
version, redefined]`` (redefined: a host action changed its definition, not only votes
its counters; older nodes sent None there), ``u`` room record changed, ``x`` room deleted,
``q`` the sender's sequence number for the room (1, 2, 3, ... per sender and room).

Pub/sub is at most once: a node whose pub/sub connection broke misses what was
published meanwhile. Two things catch it at once, not at the 15 s resync: the broker
calls :attr:`Broker.on_resubscribed` once its channels are confirmed again on a new
connection, and a ``q`` that skips a number shows a lost message; both re-read the
rooms concerned from the store (``on_gap``: their interactions, mutes, bans,
revocations and records). A node that follows a room after another has sent to it sees
a ``q`` above 1 first, and re-reads once, which costs one flush's reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import msgpack

from server.backends.base import BackendUnavailable, Broker, Store
from server.metrics import Metrics

log = logging.getLogger("hudong.relay")
WIRE_VERSION = 1
# Events reach the shared replay list (read by a node that opens the room, for its
# late joiners' snapshots) at most this late, in the flush that is due then.
REPLAY_INTERVAL_S = 0.1


class Relay:
    """Sends this node's room traffic to the other nodes and hands theirs to the hub."""

    def __init__(
        self,
        broker: Broker,
        store: Store,
        node_id: str,
        metrics: Metrics,
        on_remote: Callable[[str, dict[str, Any]], None],
        *,
        enabled: bool,
        replay_keep: int,
        interval_s: float = 0.0,
        on_gap: Callable[[list[str] | None], None] = lambda rooms: None,
    ) -> None:
        self.broker = broker
        self.store = store
        self.node_id = node_id
        self.metrics = metrics
        self.enabled = enabled
        self.replay_keep = replay_keep
        self.interval_s = interval_s
        self._sent_at = -interval_s  # loop time of the last flush
        self._replays: dict[str, list[dict[str, Any]]] = {}  # events not yet in the replay
        self._replayed_at = -REPLAY_INTERVAL_S  # loop time of the last replay append
        self._on_remote = on_remote
        self._outbox: dict[str, dict[str, Any]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._following: set[str] = set()
        self._on_gap = on_gap
        self._sent_seq: dict[str, int] = {}  # room -> the last q this node sent
        self._seen_seq: dict[tuple[str, str], int] = {}  # (room, sender) -> last q seen

    async def start(self) -> None:
        if not self.enabled:
            return
        await self.broker.start(self._receive)
        # Channels confirmed again after the pub/sub connection broke: re-read them all.
        self.broker.on_resubscribed = lambda: self._on_gap(None)
        self._task = asyncio.get_running_loop().create_task(
            self._publish_loop(), name="hudong-relay"
        )

    async def stop(self) -> None:
        if self._task is not None:
            await self._flush(final=True)  # what is queued still goes out
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.broker.close()

    # --- following rooms ---------------------------------------------------------------

    async def follow(self, room_id: str) -> None:
        if not self.enabled or room_id in self._following:
            return
        self._following.add(room_id)
        try:
            await self.broker.subscribe(room_id)
        except BackendUnavailable as exc:  # subscribed again when the broker reconnects
            log.warning("subscribe to %s deferred: %s", room_id, exc)

    async def unfollow(self, room_id: str) -> None:
        if room_id not in self._following:
            return
        self._following.discard(room_id)
        for key in [k for k in self._seen_seq if k[0] == room_id]:
            del self._seen_seq[key]
        with contextlib.suppress(BackendUnavailable):
            await self.broker.unsubscribe(room_id)

    # --- sending -----------------------------------------------------------------------

    def _box(self, room_id: str) -> dict[str, Any]:
        box = self._outbox.get(room_id)
        if box is None:
            box = self._outbox[room_id] = {}
        self._wake.set()
        return box

    def events(
        self, room_id: str, events: list[dict[str, Any]], notices: list[list[Any]] | None = None
    ) -> None:
        if self.enabled:
            box = self._box(room_id)
            box.setdefault("e", []).extend(events)
            pending = self._replays.setdefault(room_id, [])
            pending.extend(events)
            if len(pending) > self.replay_keep:  # only the last ones are kept anyway
                del pending[: len(pending) - self.replay_keep]
            if notices:
                box.setdefault("p", []).extend(notices)

    def state(self, room_id: str, interaction_id: str, version: int, redefined: bool) -> None:
        if self.enabled:
            box = self._box(room_id).setdefault("s", {})
            held = box.get(interaction_id)
            if held is not None:  # several changes before the publisher ran: merge them
                version, redefined = max(version, held[0]), redefined or held[1]
            box[interaction_id] = [version, redefined]

    def room_changed(self, room_id: str, version: int) -> None:
        if self.enabled:
            self._box(room_id)["u"] = version

    def room_deleted(self, room_id: str) -> None:
        if self.enabled:
            self._box(room_id)["x"] = True

    async def _publish_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._replays:  # events wait for their replay append, at most so long
                due = self._replayed_at + REPLAY_INTERVAL_S - loop.time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, due))
            else:
                await self._wake.wait()
            wait = self._sent_at + self.interval_s - loop.time()
            if wait > 0:  # what arrives meanwhile leaves in the same flush
                await asyncio.sleep(wait)
            self._sent_at = loop.time()
            await self._flush()

    async def _flush(self, *, final: bool = False) -> None:
        """Publish the outbox; the events of the last REPLAY_INTERVAL_S ride along to
        the replay lists in the same round trip."""
        self._wake.clear()
        now = asyncio.get_running_loop().time()
        replays: dict[str, list[dict[str, Any]]] = {}
        if self._replays and (final or now - self._replayed_at >= REPLAY_INTERVAL_S):
            replays, self._replays = self._replays, {}
            self._replayed_at = now
        if not self._outbox and not replays:
            return
        outbox, self._outbox = self._outbox, {}
        items = []
        for room_id, box in outbox.items():
            box["n"] = self.node_id
            box["v"] = WIRE_VERSION
            box["q"] = self._sent_seq[room_id] = self._sent_seq.get(room_id, 0) + 1
            items.append((room_id, msgpack.packb(box, use_bin_type=True)))
        started = time.perf_counter()
        try:
            await self.broker.relay(items, self.store, replays, self.replay_keep)
            self.metrics.relay_messages.labels("out").inc(len(items))
            self.metrics.broker_latency.observe(time.perf_counter() - started)
        except BackendUnavailable:
            self.metrics.broker_errors.inc()
            # At most once: other nodes miss these events; local viewers already have them.
            self.metrics.drops.labels("broker_unavailable").inc(
                sum(len(box.get("e", ())) for box in outbox.values())
            )

    # --- receiving ---------------------------------------------------------------------

    def _receive(self, room_id: str, payload: bytes) -> None:
        try:
            message = msgpack.unpackb(payload, raw=False)
        except Exception:
            log.warning("undecodable relay message on room %s", room_id)
            return
        if not isinstance(message, dict) or message.get("n") == self.node_id:
            return
        if message.get("v") != WIRE_VERSION:
            log.warning("relay message of wire version %r ignored", message.get("v"))
            return
        self.metrics.relay_messages.labels("in").inc()
        seq, key = message.get("q"), (room_id, str(message.get("n")))
        if type(seq) is int:
            if seq != self._seen_seq.get(key, 0) + 1:
                log.info("relay gap on room %s from %s: re-reading it", room_id, key[1])
                self._on_gap([room_id])
            self._seen_seq[key] = seq
        self._on_remote(room_id, message)
