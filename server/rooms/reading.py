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
            records = needs.records - data.records_by_box.keys()
            missing = Needs(
                needs.counters - data.counters_by_box.keys(),
                records,
                frozenset(
                    (box, holder)
                    for box, holder in needs.held - data.asked
                    if box not in data.records_by_box and box not in records
                ),
            )
            if not missing:
                break
            got = await self.store.read(room_id, missing.counters, missing.records, missing.held)
            held = {box: dict(found) for box, found in data.held_by_box.items()}
            for box, found in got.held.items():
                held.setdefault(box, {}).update(found)
            ctx = dataclasses.replace(
                ctx,
                data=Data(
                    {**data.counters_by_box, **got.counters},
                    {**data.records_by_box, **got.records},
                    held,
                    data.asked | missing.held,
                ),
            )
        return ctx
