"""The stream of a room on this node (ARCHITECTURE.md, "How a danmaku travels"):
danmaku in (the room's mode, degrade level, mutes, slow mode, rates), events and
private notices out, to the room's pending list here and through the relay to the
other nodes. The tick (:mod:`.fanout`) sends what is pending."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

from protocol.messages import CommandError, Danmaku, ack
from server.auth import STAFF_ROLES, Identity
from server.hub.degrade import POLICIES, DegradeLevel
from server.hub.ports import Rooms
from server.hub.relay import Relay
from server.hub.room import LiveRoom
from server.metrics import Metrics


class Sender(Protocol):
    """Who sends a danmaku, as the stream needs it: a viewer's connection, or one sender
    of a platform's chat (server/bridges/runner.py)."""

    address: str  # its share of the room's danmaku budget
    last_danmaku: float  # slow mode

    def send(self, message: dict[str, Any]) -> None: ...


class Stream:
    """Takes danmaku into their room's stream and announces events: pending here for the
    next tick, and relayed to the other nodes; private notices go to their users."""

    def __init__(
        self,
        live: Mapping[str, LiveRoom],
        rooms: Rooms,
        relay: Relay,
        metrics: Metrics,
        level_of: Callable[[LiveRoom], DegradeLevel],
        node_id: str,
        clock: Callable[[], float],
    ) -> None:
        self.live = live
        self.rooms = rooms
        self.relay = relay
        self.metrics = metrics
        self.level_of = level_of
        self.node_id = node_id
        self.clock = clock
        self.dirty: set[LiveRoom] = set()  # rooms with events pending for the next tick
        self._counter = 0

    def take_dirty(self) -> set[LiveRoom]:
        dirty, self.dirty = self.dirty, set()
        return dirty

    # --- danmaku in -------------------------------------------------------------------------

    def danmaku(self, conn: Sender, room: LiveRoom, identity: Identity, cmd: Danmaku) -> None:
        """Accept a danmaku into the room's stream, or raise the documented refusal."""
        now = self.clock()
        budget = room.danmaku_budget
        if identity.role not in STAFF_ROLES:
            self._check_viewer(conn, room, identity, cmd.id, now)
        # Mutes, then the text filter (PROTOCOL.md, "Text filter"): refused, held, masked.
        screened = self.rooms.check_danmaku(room.id, identity, cmd.text, time.time(), cmd.id)
        if screened.held:  # held for review: nobody but the sender hears of it
            self.metrics.command("danmaku", "held")
            if cmd.id is not None:
                conn.send(ack(cmd.id, held=True))
            return
        if identity.role not in STAFF_ROLES:
            wait = budget.take(now, conn.address)  # this address's share of the room's
        else:
            wait = budget.room.take(now)  # hosts and moderators: the room's budget only
        if wait:
            raise CommandError(
                "room_rate_limited",
                f"room {room.id!r} is receiving more danmaku than it allows "
                f"({budget.rate:g}/s{', shared among the addresses sending' if budget.fair else ''}"
                "); try again",
                cmd.id,
                retry_after_ms=max(1, round(wait * 1000)),
            )
        self._counter += 1
        wall = time.time()
        event = {
            "type": "danmaku",
            "id": f"{self.node_id}.{self._counter}",
            "user": identity.public(),
            "text": screened.text,
            "color": cmd.color,
            "mode": cmd.mode,
            "ts": int(wall * 1000),
        }
        conn.last_danmaku = now
        voted = self.rooms.danmaku_sent(room.id, identity, screened.text, wall)
        if voted and room.record.settings.get("hide_vote_danmaku"):
            # A vote by danmaku ("1", "红色") in a room that keeps them off the scrolling
            # layer: its bar moves, the text goes to nobody (PROTOCOL.md, "danmaku").
            self.metrics.command("danmaku", "ok")
            if cmd.id is not None:
                conn.send(ack(cmd.id, vote=True, hidden=True))
            return
        room.pending.append(event)
        room.replay.append(event)
        self.dirty.add(room)
        self.relay.events(room.id, [event])
        self.metrics.command("danmaku", "ok")
        self.metrics.danmaku_in(room.id)
        if cmd.id is not None:
            conn.send(ack(cmd.id, event=event["id"], **({"vote": True} if voted else {})))

    def _check_viewer(
        self, conn: Sender, room: LiveRoom, identity: Identity, cid: int | None, now: float
    ) -> None:
        """The room's mode, the degrade level's pause and slow mode, and mutes."""
        policy = POLICIES[self.level_of(room)]
        settings = room.record.settings
        mode = settings.get("mode", "open")
        if policy.staff_only or mode == "staff":
            why = (
                "the host let only hosts and moderators send danmaku"
                if mode == "staff"
                else "danmaku are paused while the room is at degrade level 3"
            )
            raise CommandError(
                "danmaku_paused", f"{why}; votes still work", cid, retry_after_ms=5000
            )
        slow = policy.slow_mode_s or 0.0
        if mode == "slow":
            slow = max(slow, float(settings.get("slow_mode_s", 5)))
        if slow:
            waited = now - conn.last_danmaku
            if waited < slow:
                raise CommandError(
                    "slow_mode",
                    f"slow mode: one danmaku per {slow:g} s",
                    cid,
                    retry_after_ms=max(1, round((slow - waited) * 1000)),
                )

    # --- events out ------------------------------------------------------------------------

    def announce(
        self,
        room_id: str,
        event: dict[str, Any],
        notify: Collection[str] = (),
        notice: dict[str, Any] | None = None,
        private: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        """A public event in the room's stream, with the next batch here and through the
        relay everywhere; ``notice`` privately to the users in ``notify``, each of
        ``private`` to its one user."""
        event["ts"] = int(time.time() * 1000)
        notices = [[sorted(notify), notice]] if notice is not None and notify else []
        notices.extend([[user], own] for user, own in (private or {}).items())
        live = self.live.get(room_id)
        if live is not None:
            self.deliver(live, [event], notices)
        self.relay.events(room_id, [event], notices)

    def deliver(
        self, room: LiveRoom, events: list[dict[str, Any]], notices: list[list[Any]]
    ) -> None:
        """Events (here, or from another node) for the room's next batch; notices now."""
        room.pending.extend(events)
        self.dirty.add(room)
        for event in events:
            if event.get("type") == "retract":
                room.forget(event.get("id"))
        if not notices:
            return
        # One pass over the members, however many notices (a quiz's standings: one each).
        by_user: dict[str, list[dict[str, Any]]] = {}
        for users, notice in notices:
            for user in users:
                by_user.setdefault(user, []).append(notice)
        for conn in room.members():
            if conn.identity is not None:
                for notice in by_user.get(conn.identity.user_id, ()):
                    conn.send(notice)
