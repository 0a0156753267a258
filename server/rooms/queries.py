"""What REST reads of a room's interactions: their views for an audience, a user's own
view, a drawn draw's audit record, the export rows and the event report, each as the
interaction's kind writes it (server/api/interactions.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.backends.base import Store
from server.interactions.base import InteractionError
from server.interactions.kind import Audience, Context, Definition, Kind
from server.interactions.registry import Registry
from server.rooms.refusals import refusals
from server.rooms.views import ViewKeeper


class Queries:
    """Answers REST's reads of interactions from the store, through the kinds."""

    def __init__(
        self, store: Store, registry: Registry, views: ViewKeeper, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.registry = registry
        self.views = views
        self._clock = clock

    async def interactions(self, room_id: str, audience: Audience) -> list[dict[str, Any]]:
        """Every interaction's view for ``audience``, oldest first."""
        async with refusals():
            record = await self.store.get_room(room_id)
            definitions = await self.views.definitions(room_id)
            ordered = sorted(definitions.values(), key=lambda d: d.created_at)
            views = await self.views.compute(room_id, ordered, record.settings, definitions)
        return [views[d.id][audience] for d in ordered if d.id in views]

    async def interaction(self, room_id: str, iid: str, audience: Audience) -> dict[str, Any]:
        async with refusals():
            _, d, definitions = await self.found(room_id, iid)
            record = await self.store.get_room(room_id)
            views = await self.views.compute(room_id, [d], record.settings, definitions)
        return views[d.id][audience]

    async def own_view(self, room_id: str, iid: str, user_id: str) -> dict[str, Any]:
        """What only ``user_id`` may see of an interaction (a draw winner's claim code)."""
        async with refusals():
            kind, d, definitions = await self.found(room_id, iid)
        own = kind.own_view(d, Context(self._clock(), {}, definitions), user_id)
        return {"interaction": iid, **own}

    async def found(
        self, room_id: str, iid: str
    ) -> tuple[Kind[Any, Any], Definition, dict[str, Definition]]:
        definitions = await self.views.definitions(room_id)
        d = definitions.get(iid)
        kind = self.registry.get(d.kind) if d is not None else None
        if d is None or kind is None:
            raise InteractionError("unknown_target", f"no interaction {iid!r:.64}")
        return kind, d, definitions

    async def audit(self, room_id: str, iid: str, audience: Audience) -> dict[str, Any]:
        """The audit record of an interaction whose kind keeps one (a drawn draw), as
        ``audience`` may read it."""
        async with refusals():
            kind, d, _ = await self.found(room_id, iid)
            if not kind.audited:
                raise InteractionError(
                    "invalid_field", f"{iid} is a {kind.name}, which keeps no audit record"
                )
            if d.audit is None:
                raise InteractionError("not_open", f"{kind.name} {iid} has no audit record yet")
            return kind.audit_view(d.audit, audience)

    async def export(self, room_id: str, iid: str) -> list[dict[str, Any]]:
        """Rows of what the interaction collected, for a spreadsheet."""
        async with refusals():
            kind, d, definitions = await self.found(room_id, iid)
            record = await self.store.get_room(room_id)
            ctx = await self.views.reader.context(
                room_id,
                lambda c: kind.export_needs(d, c),
                now=self._clock(),
                settings=record.settings,
                definitions=definitions,
            )
            return kind.export(d, ctx)

    async def report(self, room_id: str) -> dict[str, Any]:
        """The event report: the room, and each interaction's section of it, as its kind
        writes it (oldest first)."""
        async with refusals():
            record = await self.store.get_room(room_id)
            definitions = await self.views.definitions(room_id)
            sections = []
            for d in sorted(definitions.values(), key=lambda d: d.created_at):
                kind = self.registry.get(d.kind)
                if kind is None:
                    continue
                ctx = await self.views.reader.context(
                    room_id,
                    lambda c, kind=kind, d=d: kind.view_needs(d, c),  # type: ignore[misc]
                    now=self._clock(),
                    settings=record.settings,
                    definitions=definitions,
                )
                sections.append({"id": d.id, "kind": d.kind, "section": kind.report(d, ctx)})
        return {"room": record.public(), "at": int(self._clock() * 1000), "interactions": sections}
