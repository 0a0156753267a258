"""The bridges of a node: each reads one platform channel into one room (PROTOCOL.md, "Bridges").

A host adds a bridge (platform and channel) to a room; it is kept in the room's
``~bridges`` box in the store, and the cursor of its last message, with the ids of the last
messages taken, in the ``~bridge-cursors`` box (a run writes only there: a bridge removed
while its cursor is written stays removed). One node runs it, the holder of its lease
(server/bridges/lease.py): when that node dies, another takes the bridge over once the lease
lapses, and resumes it from the cursor, dropping the messages the last ids say were taken
(server/bridges/failover.py).
Each bridge runs as one task (:class:`BridgeRun`):

- it reads the adapter's events, and on :class:`BridgeError` with ``retry`` waits a full-jitter
  backoff (``random(0, min(max, min * 2**attempt))``) and connects again; an error without
  ``retry`` (a refused credential) stops it, shown as ``failed``; it shows as ``connected``
  from its first event, or as soon as the adapter's optional ``connected`` attribute is true;
- it drops a message whose id it has already seen (a bounded memory of the last ids);
- each message becomes a danmaku of the room from the identity ``<platform>:<sender>``,
  pseudonymous at rest as any outside id (``Authority.viewer_id``), through the very path a
  viewer's danmaku takes (:meth:`server.hub.stream.Stream.danmaku`: the room's mode, degrade
  level, slow mode, mutes, the text filter, the room's budget), after the viewer's command
  rate and a ban check (``RoomService.enter``);
- the platform's moderation is followed: a deleted message is retracted, a ban bans the
  bridged identity, a timeout mutes it for as long (audited as the ``system``'s actions).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import itertools
import logging
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from protocol.messages import Bridge, CommandError, Danmaku, parse_command, store_unavailable
from server.auth import Authority, Identity
from server.backends.base import BackendUnavailable, RoomNotFound, Store
from server.bridges.base import Adapter, BridgeError, ChatMessage, PlatformModeration
from server.bridges.lease import (
    BRIDGES_BOX,
    CURSORS_BOX,
    LEASES_BOX,
    Lease,
    Leases,
    current,
    lease_seconds,
)
from server.bridges.remote import event_from_wire
from server.config import Settings
from server.hub.hub import Hub
from server.metrics import Metrics
from server.moderation.ratelimit import TokenBucket
from server.rooms.moderation import MAX_MUTE_S
from server.rooms.service import RoomService

log = logging.getLogger("hudong.bridges")

MAX_BRIDGES_PER_ROOM = 8
SEEN_KEEP = 10_000  # message ids remembered per bridge (repeats, and deletions to retract)
SENDERS_KEEP = 10_000  # senders whose rate and slow mode are kept per bridge
CURSOR_EVERY_S = 1.0  # a bridge's cursor is written to the store at most this often
SEEN_SAVED = 100  # message ids kept with the cursor, for the node that takes it over
# Modules that may define adapters; a module that is not there is skipped.
PLATFORM_MODULES = ("server.bridges.twitch", "server.bridges.webhook", "server.bridges.bilibili")


def platforms() -> dict[str, type[Adapter]]:
    """The adapters this node has, by platform name (a bounded metrics label)."""
    for name in PLATFORM_MODULES:
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(name)
    return {
        cls.platform: cls
        for cls in Adapter.__subclasses__()
        if cls.__module__ in PLATFORM_MODULES and hasattr(cls, "platform")
    }


def bridge_id(platform: str, channel: str) -> str:
    return f"{platform}:{channel}"


def options_of(settings: Settings, platform: str) -> dict[str, Any]:
    """The ``[bridges.<platform>]`` settings, as the adapter's options ({} where the
    platform has no section)."""
    section = getattr(settings.bridges, platform, None)
    if not dataclasses.is_dataclass(section) or isinstance(section, type):
        return {}
    return dataclasses.asdict(section)


class BridgedSender:
    """One platform sender as the stream sees it: where its danmaku count in the room's
    budget, when it last sent one (slow mode), its command rate, and the ack it got."""

    __slots__ = ("acked", "address", "bucket", "last_danmaku")

    def __init__(self, address: str, bucket: TokenBucket) -> None:
        self.address = address  # its own share of the room's danmaku budget
        self.last_danmaku = -1e9
        self.bucket = bucket  # limits.viewer_commands_per_s, as a viewer's connection
        self.acked: dict[str, Any] = {}

    def send(self, message: dict[str, Any]) -> None:
        self.acked = message  # the stream's ack: the event id, or ``held``


@dataclass(slots=True)
class BridgeStatus:
    """What the console shows of a running bridge."""

    state: str = "connecting"  # connecting, connected, retrying, failed, stopped
    messages: int = 0
    refused: int = 0
    errors: int = 0
    last_error: str | None = None
    lag_s: float | None = None  # the platform's send time to the danmaku, last message
    connected_at: float | None = None
    refusals: dict[str, int] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "messages": self.messages,
            "refused": self.refused,
            "refusals": dict(self.refusals),
            "errors": self.errors,
            "last_error": self.last_error,
            "lag_ms": None if self.lag_s is None else round(self.lag_s * 1000),
            "connected_at": None if self.connected_at is None else int(self.connected_at * 1000),
        }


class BridgeRun:
    """One bridge's task: connect, read, deliver, reconnect with backoff (module docstring)."""

    def __init__(
        self,
        bridges: Bridges,
        room_id: str,
        adapter: Adapter,
        cursor: str | None,
        seen: Any = (),
        lease: Lease | None = None,
    ):
        self.bridges = bridges
        self.room_id = room_id
        self.adapter = adapter
        self.platform = adapter.platform
        self.id = bridge_id(self.platform, adapter.channel)
        self.cursor = cursor
        self.status = BridgeStatus()
        self.seen: OrderedDict[str, str | None] = OrderedDict()  # message id -> event id
        if isinstance(seen, list):  # those its last node took (a take-over, a restart)
            self.seen.update((str(mid), None) for mid in seen[-SEEN_SAVED:])
        self.lease = lease  # None: not leased (a ``hudong bridge`` process's)
        self.senders: OrderedDict[str, BridgedSender] = OrderedDict()
        self._cursor_written = cursor
        self._cursor_at = 0.0
        self._dirty = False  # ids taken since the cursor was written
        self._flush: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.gone = False
        self.remote = False  # fed by a ``hudong bridge`` process, not run here

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"bridge {self.id}")

    async def stop(self, save: bool = True) -> None:
        """Stop the task; write the cursor unless ``save`` is false (the lease is lost:
        another node writes it now)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self._flush is not None:
            self._flush.cancel()
        self._set_state("stopped")
        if save:
            await self.save_cursor(force=True)

    def _set_state(self, state: str) -> None:
        gauge = self.bridges.metrics.bridges_connected.labels(self.platform)
        if self.status.state == "connected" and state != "connected":
            gauge.dec()
        elif state == "connected" and self.status.state != "connected":
            gauge.inc()
        self.status.state = state

    def _connected(self) -> None:
        if self.status.state == "connecting":
            self._set_state("connected")
            self.status.connected_at = time.time()

    async def _watch_ready(self) -> None:
        """An adapter that says it is in (``connected``: Twitch after its welcome) shows as
        connected before its channel says anything."""
        while self.status.state == "connecting":
            if getattr(self.adapter, "connected", False):
                self._connected()
                return
            await asyncio.sleep(0.1)

    async def run(self) -> None:
        settings = self.bridges.settings.bridges
        attempt = 0
        while True:
            self._set_state("connecting")
            watch = asyncio.get_running_loop().create_task(self._watch_ready())
            try:
                async for event in self.adapter.events(self.cursor):
                    attempt = 0
                    self._connected()
                    await self.take(event)
                    if self.gone:
                        self.bridges.runs.pop((self.room_id, self.id), None)
                        self._set_state("stopped")
                        return
                delay = random.uniform(0, settings.backoff_min_s)  # the platform ended it
            except Exception as exc:  # a BridgeError, or an adapter's bug: both reconnect
                if not isinstance(exc, BridgeError):
                    log.exception("bridge %s in room %s broke", self.id, self.room_id)
                self.status.errors += 1
                self.status.last_error = str(exc)[:200] or type(exc).__name__
                self.bridges.metrics.bridge_errors.labels(self.platform).inc()
                if isinstance(exc, BridgeError) and not exc.retry:
                    log.warning("bridge %s in room %s failed: %s", self.id, self.room_id, exc)
                    self._set_state("failed")
                    return
                cap = min(settings.backoff_max_s, settings.backoff_min_s * 2**attempt)
                delay = random.uniform(0, cap)  # full jitter
                attempt = min(attempt + 1, 30)
            finally:
                watch.cancel()
            self._set_state("retrying")
            await self.save_cursor(force=True)
            await asyncio.sleep(delay)

    async def take(self, event: ChatMessage | PlatformModeration) -> dict[str, Any] | CommandError:
        """Deliver one event: what happened (the danmaku's ``event`` id, ``duplicate``,
        ``held``, the moderation ``action``), or the refusal, counted, not raised."""
        try:
            if isinstance(event, ChatMessage):
                return await self.deliver(event)
            return await self.follow(event)
        except BackendUnavailable:
            err = store_unavailable()
        except RoomNotFound:
            err = CommandError("room_not_found", f"room {self.room_id!r} was deleted")
            self.gone = True  # the room was deleted, and its bridges with it
        except CommandError as refusal:
            err = refusal
        self._refused(err.code)
        return err

    def _refused(self, code: str) -> None:
        self.status.refused += 1
        self.status.refusals[code] = self.status.refusals.get(code, 0) + 1
        self.bridges.metrics.bridged.labels(self.platform, code).inc()

    def identity(self, sender: str, name: str | None) -> Identity:
        user_id = self.bridges.authority.viewer_id(f"{self.platform}:{sender}", "viewer", False)
        return Identity(user_id, (name or f"{self.platform} {sender}")[:32], "viewer", self.room_id)

    def _sender(self, user_id: str, now: float) -> BridgedSender:
        sender = self.senders.get(user_id)
        if sender is None:
            limits = self.bridges.settings.limits
            bucket = TokenBucket(limits.viewer_commands_per_s, limits.viewer_command_burst, now)
            sender = self.senders[user_id] = BridgedSender(f"{self.platform}:{user_id}", bucket)
            if len(self.senders) > SENDERS_KEEP:
                self.senders.popitem(last=False)
        else:
            self.senders.move_to_end(user_id)
        return sender

    async def deliver(self, message: ChatMessage) -> dict[str, Any]:
        if message.id is not None:
            if message.id in self.seen:
                self.bridges.metrics.bridged.labels(self.platform, "duplicate").inc()
                return {"duplicate": True}
            self.seen[message.id] = None
            self._dirty = True
            if len(self.seen) > SEEN_KEEP:
                self.seen.popitem(last=False)
        if message.cursor is not None:
            self.cursor = message.cursor
        bridges, limits = self.bridges, self.bridges.settings.limits
        rooms, hub = bridges.rooms, bridges.hub
        record = await rooms.room(self.room_id)
        identity = self.identity(message.sender, message.name)
        try:
            identity = Identity(
                identity.user_id, rooms.text.name(record, identity.name), "viewer", self.room_id
            )
        except CommandError:  # a name posing as staff, or with a blocked word
            identity = Identity(identity.user_id, f"{self.platform} viewer", "viewer", self.room_id)
        await rooms.enter(record, identity)  # refuses a banned identity
        now = hub.now()
        sender = self._sender(identity.user_id, now)
        if sender.bucket.take(now):
            raise CommandError("rate_limited", "the bridged sender sends too fast")
        command = parse_command(
            {"op": "danmaku", "id": 1, "text": message.text}, max_text_chars=limits.max_text_chars
        )
        assert isinstance(command, Danmaku)
        live = await hub.serve_room(record)
        sender.acked = {}
        hub.stream.danmaku(sender, live, identity, command)
        event_id = sender.acked.get("event")
        if sender.acked.get("held"):
            self._refused("held")
            return {"held": True}
        if message.id is not None and isinstance(event_id, str):
            self.seen[message.id] = event_id
        self.status.messages += 1
        bridges.metrics.bridged.labels(self.platform, "ok").inc()
        if message.at is not None:
            lag = max(0.0, time.time() - message.at)
            self.status.lag_s = lag
            bridges.metrics.bridge_lag.labels(self.platform).observe(lag)
        await self.save_cursor()
        return {"event": event_id}

    async def follow(self, signal: PlatformModeration) -> dict[str, Any]:
        """The platform's moderators acted: retract, ban or mute here too."""
        host = self.bridges.rooms.host
        via = {"via": self.id}
        if signal.action == "delete":
            event_id = self.seen.get(signal.message_id or "")
            if event_id is None:
                return {"action": "retract", "event": None}  # not one this bridge sent
            return await host(self.room_id, "retract", {"event": event_id, **via}, by="system")
        if not signal.sender:
            raise CommandError("invalid_field", f"{signal.action} needs the sender")
        user = self.identity(signal.sender, None).user_id
        if signal.action == "ban":
            return await host(self.room_id, "ban", {"user": user, **via}, by="system")
        seconds = round(signal.seconds or 600)
        fields = {"user": user, "duration_s": max(1, min(MAX_MUTE_S, seconds)), **via}
        return await host(self.room_id, "mute", fields, by="system")

    async def save_cursor(self, force: bool = False) -> None:
        """Keep the cursor and the last ids in the bridge's record: at most once a second
        (a later call is kept for then), unless ``force``."""
        if self.cursor == self._cursor_written and not self._dirty:
            return
        if self.lease is not None and self.lease.lapsed(time.time()):
            return  # another node may hold it now: its cursor is not this run's to write
        now = time.monotonic()
        wait = CURSOR_EVERY_S - (now - self._cursor_at)
        if not force and wait > 0:
            if self._flush is None:
                self._flush = asyncio.get_running_loop().call_later(wait, self._flush_later)
            return
        self._cursor_at = now
        cursor, self._dirty = self.cursor, False
        seen = list(itertools.islice(reversed(self.seen), SEEN_SAVED))[::-1]
        try:
            await self.bridges.write(
                self.room_id, self.id, {"cursor": cursor, "seen": seen}, CURSORS_BOX
            )
            self._cursor_written = cursor
        except (BackendUnavailable, RoomNotFound):
            self._dirty = True

    def _flush_later(self) -> None:
        self._flush = None
        if self.task is not None and not self.task.done():
            self._flushing = asyncio.get_running_loop().create_task(self.save_cursor())


class Tending(Protocol):
    """What keeps the leases of a node's bridges: started and stopped with them."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Bridges:
    """The node's bridges: adds and removes them (kept in the store), runs those whose
    lease it holds (taking over lapsed ones: :class:`Failover`), and answers the console's
    listing."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        rooms: RoomService,
        hub: Hub,
        authority: Authority,
        metrics: Metrics,
        node_id: str,
    ) -> None:
        self.settings = settings
        self.store = store
        self.rooms = rooms
        self.hub = hub
        self.authority = authority
        self.metrics = metrics
        self.node_id = node_id
        self.shared = hub.shared
        # one node on its store (memory, the embedded store's locked directory): it runs
        # every bridge at once, whoever held the lease before
        self.alone = not hub.shared
        self.platforms = platforms()
        self.runs: dict[tuple[str, str], BridgeRun] = {}  # (room, bridge id) -> its run
        self.adding: set[tuple[str, str]] = set()  # claimed by add(), not yet started
        self.leases = Leases(store, node_id, lease_seconds(settings))
        # the lease loop (server/bridges/failover.py: :class:`Failover`), set by the app
        self.failover: Tending | None = None
        for name in self.platforms:  # every platform shown from the start, at 0
            metrics.bridges_connected.labels(name)
            metrics.bridge_errors.labels(name)

    def adapter(self, platform: str, channel: str) -> Adapter:
        """A new adapter, or ValueError saying what is wrong with the platform or channel."""
        cls = self.platforms.get(platform)
        if cls is None:
            known = ", ".join(sorted(self.platforms))
            raise ValueError(f"unknown platform {platform!r:.32}; this node has: {known}")
        return cls(channel, options_of(self.settings, platform))

    async def write(
        self, room_id: str, bid: str, record: dict[str, Any] | None, box: str = BRIDGES_BOX
    ) -> None:
        """Write (None: withdraw) a bridge's record, or with ``CURSORS_BOX`` its cursor."""
        key = f"br-{secrets.token_hex(8)}"
        await self.store.apply(room_id, box, bid, key, record, {}, versioned=False)

    async def add(self, room_id: str, platform: str, channel: str, by: str) -> dict[str, Any]:
        """Add (and start) a bridge; adding one that exists again changes nothing."""
        adapter = self.adapter(platform, channel)
        bid = bridge_id(adapter.platform, adapter.channel)
        data = await self.store.read(room_id, (), (BRIDGES_BOX, LEASES_BOX))
        held, leases = data.records[BRIDGES_BOX], current(data.records[LEASES_BOX])
        if bid in held:
            return self._public(room_id, bid, held[bid], leases.get(bid))
        if len(held) >= MAX_BRIDGES_PER_ROOM:
            raise CommandError(
                "limit_reached",
                f"a room has at most {MAX_BRIDGES_PER_ROOM} bridges",
                limit=MAX_BRIDGES_PER_ROOM,
            )
        record = {
            "platform": adapter.platform,
            "channel": adapter.channel,
            "by": by,
            "added_at": int(time.time() * 1000),
            "node": self.node_id,
        }
        # The lease first: a node that sees the record then sees its owner.
        self.adding.add((room_id, bid))
        try:
            lease = await self.leases.claim(room_id, bid, leases.get(bid))
            await self.write(room_id, bid, record)
            if lease is not None:
                self._start(room_id, adapter, None, (), lease)
        finally:
            self.adding.discard((room_id, bid))
        return self._public(room_id, bid, record, lease)

    async def remove(self, room_id: str, bid: str) -> bool:
        """Stop and forget a bridge (False when the room has none by that id)."""
        held = await self.store.records(room_id, BRIDGES_BOX)
        run = self.runs.pop((room_id, bid), None)
        if run is not None:
            await run.stop()
        if bid not in held:
            return run is not None
        await self.write(room_id, bid, None)  # its node stops it at its next renewal
        await self.write(room_id, bid, None, CURSORS_BOX)
        await self.leases.release(room_id, bid)
        return True

    async def listing(self, room_id: str) -> dict[str, Any]:
        data = await self.store.read(room_id, (), (BRIDGES_BOX, LEASES_BOX))
        held, leases = dict(data.records[BRIDGES_BOX]), current(data.records[LEASES_BOX])
        for (rid, bid), run in self.runs.items():  # ``hudong bridge`` processes, here
            if rid == room_id and run.remote and bid not in held:
                channel = run.adapter.channel
                held[bid] = {"platform": run.platform, "channel": channel, "node": "remote"}
        return {
            "bridges": [
                self._public(room_id, bid, r, leases.get(bid)) for bid, r in sorted(held.items())
            ],
            "platforms": sorted(self.platforms),
        }

    def _public(
        self, room_id: str, bid: str, record: Mapping[str, Any], lease: Lease | None
    ) -> dict[str, Any]:
        """A bridge as listed: ``node`` is its lease's owner (``lease_until`` in ms; both
        null while nobody holds it), or ``remote`` for a ``hudong bridge`` process."""
        run = self.runs.get((room_id, bid))
        status = run.status.public() if run is not None else {"state": "elsewhere"}
        keys = ("platform", "channel", "added_at")
        record = {"added_at": 0, **record}
        node = lease.node if lease is not None else record.get("node")
        if run is not None and run.remote:
            node = "remote"
        until = None if lease is None else int(lease.until * 1000)
        public = {k: record.get(k) for k in keys}
        return {"id": bid, **public, "node": node, "lease_until": until, "status": status}

    async def remote(self, room_id: str, command: Bridge) -> dict[str, Any]:
        """A ``bridge`` command of a ``hudong bridge`` process (server/bridges/remote.py):
        its event taken as a bridge run here would take it; a refusal is raised."""
        try:
            adapter = self.adapter(command.platform, command.channel)
        except ValueError as exc:
            raise CommandError("invalid_field", str(exc), command.id) from None
        event = event_from_wire(command.event, self.settings.limits.max_text_chars)
        key = (room_id, bridge_id(adapter.platform, adapter.channel))
        run = self.runs.get(key)
        if run is None:
            run = self.runs[key] = BridgeRun(self, room_id, adapter, None)
            run.remote = True
            run._set_state("connected")
            run.status.connected_at = time.time()
        result = await run.take(event)
        if isinstance(result, CommandError):
            result.id = command.id
            raise result
        return result

    def running(self, room_id: str, platform: str, channel: str) -> Adapter | None:
        """The adapter of a bridge run here, while its lease (if leased) has not lapsed."""
        run = self.runs.get((room_id, bridge_id(platform, channel)))
        if run is None or (run.lease is not None and run.lease.lapsed(time.time())):
            return None
        return run.adapter

    def _start(
        self, room_id: str, adapter: Adapter, cursor: str | None, seen: Any, lease: Lease
    ) -> None:
        run = BridgeRun(self, room_id, adapter, cursor, seen, lease)
        old = self.runs.get((room_id, run.id))
        if old is not None and old.task is not None:
            old.task.cancel()
        self.runs[(room_id, run.id)] = run
        run.start()

    async def start(self) -> None:
        """Claim the bridges that lapsed or were this node's, and tend leases from now on."""
        if self.failover is not None:
            await self.failover.start()

    async def stop(self) -> None:
        if self.failover is not None:
            await self.failover.stop()
        runs, self.runs = list(self.runs.values()), {}
        for run in runs:
            await run.stop()


__all__ = ["BRIDGES_BOX", "CURSORS_BOX", "BridgeRun", "BridgedSender", "Bridges", "platforms"]
