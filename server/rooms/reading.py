"""Reading what kinds ask for: a :class:`~server.interactions.kind.Needs` becomes
:class:`~server.interactions.kind.Data`, one store round trip per round."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from server.backends.base import Store
from server.interactions.kind import MAX_READS, Context, Data, Definition, Needs

Ask = Callable[[Context], Needs]


class StoreReader:
    """Gives kinds the counters and records they name, reading only what is missing,
    until they ask for nothing new (at most :data:`MAX_READS` rounds)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def context(
        self,
        room_id: str,
        ask: Ask,
        *,
        now: float,
        settings: Mapping[str, Any],
        definitions: Mapping[str, Definition],
    ) -> Context:
        ctx = Context(now, settings, definitions)
        for _ in range(MAX_READS):
            needs = ask(ctx)
            data = ctx.data
            missing = Needs(
                needs.counters - data.counters_by_box.keys(),
                needs.records - data.records_by_box.keys(),
            )
            if not missing:
                break
            counters, records = await self._read(room_id, missing)
            ctx = dataclasses.replace(
                ctx,
                data=Data({**data.counters_by_box, **counters}, {**data.records_by_box, **records}),
            )
        return ctx

    async def _read(self, room_id: str, needs: Needs) -> tuple[dict[str, Any], dict[str, Any]]:
        got = await self.store.read(room_id, needs.counters, needs.records)
        return got.counters, got.records
