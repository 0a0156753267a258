"""The room service: what people do in rooms, between the edge (hub, REST) and the store.

It takes commands from the hub and from the REST API, finds the kind in the registry,
has it decide, commits through the Store, and tells the hub (a
:class:`~server.rooms.outbox.RoomOutbox`) what to send: interactions that changed,
events to announce, connections to close. Views are kept by the
:class:`~server.rooms.views.ViewKeeper`; moderation, buffered taps, live counts and
REST's reads of interactions (:mod:`.queries`) have parts of their own. Every refusal
is a :class:`~protocol.messages.CommandError` with a code of ``protocol/codes.py``
(:mod:`.refusals`); the hub sends it as an ``error``, REST as an HTTP error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from protocol.messages import CommandError, OpRule
from server.auth import STAFF_ROLES, AuthError, Authority, Identity, guest_name
from server.backends.base import (
    BackendUnavailable,
    RoomNotFound,
    RoomRecord,
    Store,
    Submission,
)
from server.config import LimitsSettings
from server.interactions.base import PRESENCE_BOX, InteractionError
from server.interactions.kind import (
    AUDIENCES,
    UNCHANGED,
    Audience,
    Context,
    Definition,
    Viewer,
    ViewerCommand,
)
from server.interactions.registry import Registry
from server.rooms.alerts import AlertDesk
from server.rooms.audit import AuditLog, audited
from server.rooms.bursts import Bursts
from server.rooms.caps import RoomCaps
from server.rooms.commits import GroupCommit
from server.rooms.counts import LiveCounts
from server.rooms.listening import DanmakuInput
from server.rooms.moderation import ACTIONS as MODERATION_ACTIONS
from server.rooms.moderation import MODERATION_BOX, Moderation, check_not_muted
from server.rooms.outbox import RoomOutbox
from server.rooms.queries import Queries
from server.rooms.refusals import REFUSALS, refusals, refused
from server.rooms.screening import TextFilter, TextGuard, Verdict
from server.rooms.served import ServedRoom
from server.rooms.views import RoomChanges, ViewKeeper

log = logging.getLogger("hudong.rooms")

GUEST_TOKEN_TTL_S = 24 * 3600  # an anonymous viewer's token: its identity across reconnects
COMMIT_INTERVAL_S = 1.0  # buffered taps' totals to the store
AUDIENCE_OF_ROLE = {"viewer": Audience.PUBLIC, "screen": Audience.SCREEN}


def audience_of(identity: Identity) -> Audience:
    return AUDIENCE_OF_ROLE.get(identity.role, Audience.STAFF)


@dataclass(frozen=True, slots=True)
class Admission:
    """Who joined: the identity, the views it gets, and an anonymous viewer's own token."""

    identity: Identity
    audience: Audience
    token: str | None = None


class RoomService:
    """The room layer's front: joins, viewer commands, host actions and moderation, run
    through the kinds and committed to the store, with the hub told what to send."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        authority: Authority,
        *,
        node_id: str,
        shared: bool,
        clock: Callable[[], float] = time.time,
        text_filter: TextFilter | None = None,
        limits: LimitsSettings | None = None,
    ) -> None:
        self.store = store
        self.caps = RoomCaps(limits or LimitsSettings(), registry)  # server/rooms/caps.py
        self.registry = registry
        self.authority = authority
        self.node_id = node_id
        self.shared = shared
        self._clock = clock
        self._outbox: RoomOutbox | None = None
        # What live counts are kept for: danmaku, and what each kind's commands count as.
        counted = (op.counts_as for op in registry.ops.values())
        self.activities = tuple(dict.fromkeys(("danmaku", *counted)))
        self.views = ViewKeeper(
            store, registry, self.outbox, shared=shared, activities=self.activities, clock=clock
        )
        self.moderation = Moderation(store, self.outbox, clock=clock)
        self.text = TextGuard(store, text_filter, clock)
        self.alerts = AlertDesk(store, self.outbox, self.changed, node_id=node_id, clock=clock)
        self.heard = self.alerts.heard  # other nodes' danmaku count for keyword alerts too
        self.audit_log = AuditLog(store, node_id, clock=clock)  # keep: limits.audit_log_keep
        self.bursts = Bursts(store, node_id, clock=clock)
        self.counts = LiveCounts(store, self.views, self.outbox, self.activities, node_id, clock)
        # REST's reads of interactions (server/rooms/queries.py), as the service answers them
        self.queries = Queries(store, registry, self.views, clock)
        self.interactions, self.interaction = self.queries.interactions, self.queries.interaction
        self.own_view, self.audit = self.queries.own_view, self.queries.audit
        self.export, self.report = self.queries.export, self.queries.report
        self.commits = GroupCommit(store)  # contributions: one store call per room at a time
        self.listening = DanmakuInput(self.commits, self.changed, lambda *k: self.contributed(*k))
        self._tasks: list[asyncio.Task[None]] = []
        self.contributed: Callable[[str, str], None] = lambda kind, room: None  # app.py

    # --- wiring and lifecycle ---------------------------------------------------------------

    def bind(self, outbox: RoomOutbox) -> None:
        self._outbox = outbox

    def outbox(self) -> RoomOutbox:
        assert self._outbox is not None, "bind() the hub first"
        return self._outbox

    @property
    def ops(self) -> Mapping[str, OpRule]:
        """The viewer commands of every kind, as the protocol's parser checks them."""
        return {
            name: OpRule(names_interaction=op.targets == "interaction", keyed=op.keyed)
            for name, op in self.registry.ops.items()
        }

    async def start(self) -> None:
        for kind in self.registry:
            kind.prepare()  # before serving: no viewer's command waits for it
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._commit_loop(), name="hudong-bursts")]
        report = self.counts.report_loop()  # shared counts, and the timeline
        self._tasks.append(loop.create_task(report, name="hudong-report"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._commit_bursts()  # what this node counted is not lost

    # --- rooms ---------------------------------------------------------------------------

    async def room(self, room_id: str) -> RoomRecord:
        async with refusals():  # a room served here: its record from memory
            return await self.views.records.get(room_id)

    async def update_room(
        self, room_id: str, *, title: str | None, settings: dict[str, Any]
    ) -> RoomRecord:
        async with refusals():
            record = await self.store.update_room(room_id, title=title, settings=settings)
        self.views.update_record(record)
        self.outbox().room_updated(record)
        return record

    async def delete_room(self, room_id: str) -> None:
        async with refusals():
            await self.store.delete_room(room_id)
        self.room_gone(room_id)
        self.outbox().room_deleted(room_id)

    def room_gone(self, room_id: str) -> None:
        """A room was deleted (here or on another node): forget it."""
        self.release(room_id)
        self.text.forget(room_id)

    async def reload(self, room_id: str, check: bool = False) -> RoomRecord | None:
        """Another node changed the room's record: read it again (None if gone). ``check``
        (the hub's safety net): and re-read everything of a room whose version moved
        since its last full read."""
        try:
            record = await self.views.records.reread(room_id)
        except (BackendUnavailable, RoomNotFound):
            return None
        if check and self.views.moved(record):
            self.resync([room_id])
        return record if self.views.update_record(record) else None

    # --- joining ---------------------------------------------------------------------------

    def identify(
        self, record: RoomRecord, token: str | None, name: str | None, lang: str | None = None
    ) -> Admission:
        """Who a join is: the token's identity (a guest's under the new ``name`` it
        asks for), or a new anonymous viewer with its own token, named in its ``lang``
        unless it gives a name; refuses ``unauthorized`` and ``anonymous_not_allowed``."""
        if token is not None:
            try:
                identity = self.authority.verify(token, record.id)
            except AuthError as exc:
                raise CommandError("unauthorized", str(exc)) from None
            if identity.guest and name and name != identity.name:
                # One device, one guest: a new name keeps the id, so its ballots,
                # check-in and draw entries stay its own (PROTOCOL.md, "join").
                return self._guest(record, replace(identity, name=name))
            return Admission(identity, audience_of(identity))
        if not record.settings.get("allow_anonymous", True):
            raise CommandError("anonymous_not_allowed", f"room {record.id!r} needs a token to join")
        user_id = f"guest-{secrets.token_hex(5)}"
        name = name or guest_name(user_id, lang)
        return self._guest(record, Identity(user_id, name, "viewer", record.id, guest=True))

    def _guest(self, record: RoomRecord, identity: Identity) -> Admission:
        """Admit a guest with its own token: joining again with it (after a reconnect)
        keeps the identity, so retried commands stay exactly-once."""
        identity = replace(identity, name=self.text.name(record, identity.name))
        token = self.authority.mint_guest(record.id, record.created_at, identity, GUEST_TOKEN_TTL_S)
        return Admission(identity, Audience.PUBLIC, token)

    async def enter(self, record: RoomRecord, identity: Identity) -> None:
        """Serve the room here (views as fresh as the store's) and let ``identity`` in;
        refuses ``unauthorized`` (rooms/trust.py) and ``banned`` (viewers only, not staff)."""
        async with refusals():
            served = await self.views.serve(record)
            if served.stale:
                await self.views.refresh(served)  # a snapshot is never older than the store
            await self.alerts.serve(record.id)  # its watch lists (server/rooms/alerts.py)
        await self.views.trust.check(identity, served.record, served.revoked)
        if identity.role not in STAFF_ROLES and served.moderation.get(identity.user_id, {}).get(
            "banned"
        ):
            raise CommandError("banned", "a moderator banned you from this room")
        self.text.note_staff(record.id, identity)

    def release(self, room_id: str) -> None:
        """No connection of the room is left on this node: stop keeping its views."""
        self.views.release(room_id)
        self.alerts.release(room_id)
        self.commits.forget(room_id)

    def resync(self, room_ids: Collection[str] | None = None) -> None:
        self.views.resync(room_ids)
        self.alerts.resync(room_ids)
        self.counts.forget_written(room_ids)

    async def note_presence(self, room_id: str, identity: Identity, present: bool) -> None:
        """Keep the presence box (entrants of draws from presence) current; best effort."""
        record = {"name": identity.name, "at": self._clock()} if present else None
        # not keyed (no `done` entry per join), uniform: counted by its write (base.py)
        note = Submission(identity.user_id, "", record, {"n": 1}, {}, False, False, True)
        with contextlib.suppress(BackendUnavailable, RoomNotFound):
            await self.commits.submit(room_id, PRESENCE_BOX, note)

    # --- viewer commands -----------------------------------------------------------------

    async def participate(
        self,
        room_id: str,
        identity: Identity,
        op_name: str,
        key: str | None,
        fields: Mapping[str, Any],
    ) -> dict[str, Any]:
        """A viewer's command on an interaction: the ``ack`` fields, after the store
        committed it (buffered taps: at once)."""
        found = self.registry.op(op_name)
        served = self.views.get(room_id)
        if found is None or served is None:
            raise CommandError("unknown_op", f"unknown op {op_name[:40]!r}")
        kind, op = found
        now = self._clock()
        staff = identity.role in STAFF_ROLES
        if op.text and not staff:
            check_not_muted(served, identity.user_id, now)
        fields, held = self.text.command(served, identity, op, key, fields)
        try:  # not `async with refusals()`: the vote path, thousands a second
            iid = kind.builtin if op.targets == "room" else fields.get("interaction")
            d = await self._definition(served, iid)
            if d.kind != kind.name:
                raise InteractionError(
                    "unknown_target", f"{d.id} is a {d.kind}; {op_name} is for a {kind.name}"
                )
            who = Viewer(identity.user_id, identity.name)
            asked = ViewerCommand(op_name, d, fields, who, key or "", held)
            ctx = Context(now, served.record.settings, served.definitions)
            if kind.command_needs(asked, ctx):  # most commands need nothing
                ctx = await self.views.reader.context(
                    room_id,
                    lambda c: kind.command_needs(asked, c),
                    now=now,
                    settings=served.record.settings,
                    definitions=served.definitions,
                )
            write = kind.command(asked, ctx)
            if op.buffered:
                self.bursts.add(room_id, kind, d, write.box, write.deltas)
                served.stats.add(op.counts_as, identity.user_id, now)
                self.contributed(kind.name, room_id)
                return {}
            result = await self.commits.write(room_id, write)
            reply = {"version": result.version, "duplicate": result.status == "duplicate"}
            reply.update(kind.acknowledge(op_name, write, result))
        except REFUSALS as exc:
            raise refused(exc) from exc
        if result.status == "applied":
            self.changed(room_id, d.id, result.version)
            served.stats.add(op.counts_as, identity.user_id, now)
            self.contributed(kind.name, room_id)
            if op.text:  # posts and questions count for keyword alerts like danmaku
                self.alerts.said(room_id, identity, str(fields.get("text", "")), now)
        return reply

    async def _definition(self, served: ServedRoom, iid: Any) -> Definition:
        """The interaction ``iid``: the node's copy, kept fresh by the state flush (only
        whether it is open may be one flush old); from the store when a host action
        changed it since (votes change counters, not definitions: a burst of votes costs
        only the batched commits of its contributions, server/rooms/commits.py)."""
        if not isinstance(iid, str):
            raise InteractionError("invalid_field", "the command needs an 'interaction' id")
        found = served.definitions.get(iid)
        if found is None or iid in served.redefined:
            found = (await self.views.definitions(served.id)).get(iid)
        if found is None:
            raise InteractionError("unknown_target", f"no interaction {iid!r:.64}")
        return found

    def changed(
        self, room_id: str, interaction_id: str, version: int, *, redefined: bool = False
    ) -> None:
        """An interaction changed: re-read its views at the next flush, here and (through
        the hub's relay) on every other node serving the room. ``redefined``: a host
        action changed its definition, not only a viewer its counters."""
        self.views.mark(room_id, interaction_id, version, redefined)
        self.outbox().interaction_changed(room_id, interaction_id, version, redefined)

    # --- host operations ------------------------------------------------------------------

    @audited  # by=who acted; each call is an entry of the room's audit log
    async def host(self, room_id: str, action: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Create an interaction, act on one, or moderate; shared by REST and WebSocket."""
        async with refusals():
            if action in MODERATION_ACTIONS:
                reply = await self.moderation.act(room_id, action, fields)
                if "version" in reply:
                    self.changed(room_id, MODERATION_BOX, reply["version"])
                    served = self.views.get(room_id)
                    if served is not None:  # at once here, not at the next flush
                        await self.views.reload_moderation(served)
                return reply
            if action == "create":
                return await self._create(room_id, fields)
            return await self._act(room_id, action, fields)

    async def _create(self, room_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        kind = self.registry.creatable(fields.get("kind"))
        spec = kind.parse_spec(fields.get("spec"))
        definitions = await self.views.definitions(room_id)
        if spec.id in definitions:
            raise InteractionError("invalid_field", f"an interaction {spec.id!r} exists already")
        self.caps.check_create(definitions, self.views.get(room_id), spec)
        now = self._clock()
        entropy = secrets.token_bytes(32)
        d = Definition(spec.id, kind.name, spec, kind.first_state(spec, now, entropy), now)
        version = await self.store.put_interaction(room_id, d.id, kind.encode(d))
        self.changed(room_id, d.id, version, redefined=True)
        return await self._reply(room_id, d, version, {})

    async def _act(self, room_id: str, action: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        iid = fields.get("interaction")
        if not isinstance(iid, str):
            known = ", ".join(sorted({*self.registry.actions, *MODERATION_ACTIONS}))
            raise InteractionError(
                "invalid_field",
                f"action {action!r:.32} needs an 'interaction' id (actions: create, {known})",
            )
        record = await self.store.get_room(room_id)
        kind, d, definitions = await self.queries.found(room_id, iid)
        fields = self.text.action(room_id, kind, action, record.settings, fields)
        if action not in kind.actions:
            raise InteractionError(
                "invalid_field",
                f"a {kind.name} takes the actions {', '.join(kind.actions)}; got {action!r:.40}",
            )
        ctx = await self.views.reader.context(
            room_id,
            lambda c: kind.action_needs(action, d, fields, c),
            now=self._clock(),
            settings=record.settings,
            definitions=definitions,
        )
        change = kind.act(action, d, fields, ctx)
        version: int | None = None
        for write in change.writes:
            version = (await self.commits.write(room_id, write)).version
        if change.changes_definition:
            state = d.state if change.state is UNCHANGED else change.state
            d = Definition(d.id, d.kind, d.spec, state, d.created_at, change.audit or d.audit)
            version = await self.store.put_interaction(room_id, iid, kind.encode(d))
        if version is None:
            version = await self.store.room_version(room_id)
        else:
            self.changed(room_id, iid, version, redefined=change.changes_definition)
        for a in change.announce:
            self.outbox().announce(room_id, dict(a.event), a.notify, a.notice, a.private)
        return await self._reply(room_id, d, version, change.reply)

    async def _reply(
        self, room_id: str, d: Definition, version: int, extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A host operation's answer: the interaction's host view as the store has it now."""
        record = await self.store.get_room(room_id)
        definitions = await self.views.definitions(room_id)
        fresh = definitions.get(d.id, d)
        views = await self.views.compute(room_id, [fresh], record.settings, definitions)
        view = views[d.id][Audience.STAFF]
        return {"interaction": d.id, "version": version, "view": view, **extra}

    # --- the stream side ---------------------------------------------------------------------

    def check_danmaku(
        self, room_id: str, identity: Identity, text: str, now: float, cid: int | None
    ) -> Verdict:
        """Refuse a muted viewer's danmaku (``muted``), then filter its text (screening.py)."""
        served = self.views.get(room_id)
        if served is not None and identity.role not in STAFF_ROLES:
            check_not_muted(served, identity.user_id, now, cid)
        return self.text.danmaku(served, identity, text, cid)

    def danmaku_sent(self, room_id: str, identity: Identity, text: str, now: float) -> bool:
        """A danmaku was accepted: count it, and let interactions that listen to danmaku
        take it (server/rooms/listening.py); True when it counted as a vote or pick."""
        served = self.views.get(room_id)
        if served is None:
            return False
        self.counts.danmaku(served, identity.user_id, text, now)  # and its top words
        self.alerts.said(room_id, identity, text, now)  # keyword alerts
        return self.listening.take(served, Viewer(identity.user_id, identity.name), text, now)

    def before_tick(self) -> None:
        """Hand the hub this tick's merged taps, one event per interaction."""
        for room_id, event in self.bursts.take_tick():
            self.outbox().announce(room_id, event)

    async def _commit_bursts(self) -> None:
        for room_id, iid, version in await self.bursts.commit():
            self.changed(room_id, iid, version)

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(COMMIT_INTERVAL_S)
            try:
                await self._commit_bursts()
            except Exception:  # pragma: no cover - a bug must not stop the commits
                log.exception("committing taps failed")

    # --- live counts ---------------------------------------------------------------------

    async def stats(self, room_id: str) -> dict[str, Any]:
        """Live counts of a room over every node (GET /api/v1/rooms/{id}/stats)."""
        async with refusals():
            return await self.counts.stats(room_id)

    # --- from other nodes ---------------------------------------------------------------------

    def stale(self, room_id: str, interaction_id: str, version: int, redefined: bool) -> None:
        """Another node changed an interaction (a relay message)."""
        self.views.mark(room_id, interaction_id, version, redefined)
        self.alerts.stale(room_id, interaction_id)  # or a box of alerts

    def take_burst(self, room_id: str) -> int:
        return self.commits.take_burst(room_id)

    async def changes(self, due: Callable[[str], bool] = lambda _: True) -> list[RoomChanges]:
        return await self.views.changes(due)

    def snapshot_views(self, room_id: str, audience: str) -> tuple[int, dict[str, Any]]:
        served = self.views.get(room_id)
        if served is None:
            return 0, {}
        return served.hand_out(Audience(audience))


__all__ = ["AUDIENCES", "Admission", "RoomService", "audience_of"]
