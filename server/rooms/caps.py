"""Caps on what a room holds (PROTOCOL.md, "Limits"; issue 15, "Unbounded interactions
per room"): how many interactions a host may create, and how large the snapshot in a
``joined`` message may grow. A refusal is ``limit_reached`` and changes nothing.

The snapshot's size is checked before a create: the interactions of the room's largest
snapshot now (the staff audience's views, which hold the most; the views of those
created since the last state flush reckoned from their specs) and the new
interaction's must fit under ``limits.max_joined_bytes`` together. What viewers add
afterwards is bounded by each kind (open questions and waiting posts per viewer, the
lists a view shows).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from server.config import LimitsSettings
from server.interactions.base import InteractionError
from server.interactions.kind import Audience, Definition
from server.interactions.registry import Registry
from server.rooms.served import ServedRoom

VIEW_PER_SPEC = 3


class RoomCaps:
    """Refuses the interaction that would take a room over its count or snapshot cap."""

    def __init__(self, limits: LimitsSettings, registry: Registry) -> None:
        self.limits = limits
        self.registry = registry

    def created(self, definitions: Mapping[str, Definition]) -> int:
        """Interactions a host created (the built-in ones every room has do not count)."""
        count = 0
        for d in definitions.values():
            kind = self.registry.get(d.kind)
            if kind is None or kind.builtin is None:
                count += 1
        return count

    def check_create(
        self,
        definitions: Mapping[str, Definition],
        served: ServedRoom | None,
        spec: Any,
    ) -> None:
        """Raise ``limit_reached`` if one more interaction (with ``spec``) is too many."""
        cap = self.limits.interactions_per_room
        if cap and self.created(definitions) >= cap:
            raise InteractionError(
                "limit_reached",
                f"the room has {cap} interactions, its cap (limits.interactions_per_room); "
                "delete none: reuse one, or create another room",
                cap="interactions_per_room",
                limit=cap,
            )
        most = self.limits.max_joined_bytes
        if not most or served is None:
            return
        views = served.snapshot_views(Audience.STAFF)
        size = len(orjson.dumps(views))
        # Interactions created since the last flush have no view yet, nor has the new
        # one: a view repeats its spec and adds its status and counts, VIEW_PER_SPEC
        # times the spec's size at most for an interaction no viewer has touched.
        for d in (*(d for iid, d in definitions.items() if iid not in views), spec):
            size += VIEW_PER_SPEC * len(orjson.dumps(getattr(d, "spec", d), default=_plain))
        if size > most:
            raise InteractionError(
                "limit_reached",
                f"with this interaction the room's snapshot would be about {size} bytes, "
                f"over its cap of {most} (limits.max_joined_bytes)",
                cap="max_joined_bytes",
                limit=most,
            )


def _plain(value: Any) -> Any:
    """A spec object (msgspec Struct or dataclass) as something orjson can size."""
    fields = getattr(value, "__struct_fields__", None)
    if fields is not None:
        return {f: getattr(value, f) for f in fields}
    return str(value)
