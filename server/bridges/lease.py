"""Which node runs a bridge: a lease in the store, renewed by its owner, taken over when it lapses.

Each bridge has, in the room's ``~bridge-leases`` box, one record per *claim*, under the holder
``<bridge id>#<epoch>``: ``{"node": <owner>, "until": <ms since the epoch>}``. The claim with the
highest epoch is the lease; its owner rewrites its own record every ``bridges.renew_s`` with
``until`` ``bridges.lease_s`` ahead. A node that sees the lease lapse (``until`` past) claims
epoch + 1 with a ``once`` write (:meth:`Store.apply`: a holder that already holds a record
refuses it, ``already_done``), which every backend applies atomically: when two nodes race for
one lapsed lease, both write the same holder, and exactly one write lands. The winner reads the
box again and owns the bridge only if its epoch is still the highest (a node that claimed
from an old reading loses); then it withdraws the older claims.

No new store surface: the box and ``once`` are those of every interaction. Times are wall
clock (``time.time()``) of different nodes: keep ``lease_s`` well above their clock skew.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server.backends.base import Store
from server.config import Settings

BRIDGES_BOX = "~bridges"  # one record per bridge, under "<platform>:<channel>"
LEASES_BOX = "~bridge-leases"  # one record per claim, under "<bridge id>#<epoch>"
# one record per bridge, under its id: where its run got to ({"cursor", "seen"}). Apart from
# the bridge's own record, so that writing it can never bring back a bridge removed meanwhile
CURSORS_BOX = "~bridge-cursors"


@dataclass(frozen=True, slots=True)
class Lease:
    """One claim on a bridge: its epoch, the node that holds it, and until when (s)."""

    bid: str
    epoch: int
    node: str
    until: float

    @property
    def holder(self) -> str:
        return holder(self.bid, self.epoch)

    def lapsed(self, now: float) -> bool:
        return self.until <= now


MIN_RENEW_S = 0.1


def renew_seconds(settings: Settings) -> float:
    return max(MIN_RENEW_S, settings.bridges.renew_s)


def lease_seconds(settings: Settings) -> float:
    """``bridges.lease_s``, and at least two renewals long."""
    return max(settings.bridges.lease_s, 2 * renew_seconds(settings))


def holder(bid: str, epoch: int) -> str:
    return f"{bid}#{epoch}"


def claims(records: Mapping[str, Mapping[str, Any]]) -> dict[str, list[Lease]]:
    """Every claim in the box, by bridge id, the highest epoch first (a malformed one is
    skipped)."""
    found: dict[str, list[Lease]] = {}
    for name, record in records.items():
        bid, _, epoch = name.rpartition("#")
        node, until = record.get("node"), record.get("until")
        if not bid or not epoch.isdigit() or not isinstance(node, str):
            continue
        if not isinstance(until, int | float):
            continue
        found.setdefault(bid, []).append(Lease(bid, int(epoch), node, until / 1000))
    for held in found.values():
        held.sort(key=lambda lease: lease.epoch, reverse=True)
    return found


def current(records: Mapping[str, Mapping[str, Any]]) -> dict[str, Lease]:
    """The lease of each bridge: its claim with the highest epoch."""
    return {bid: held[0] for bid, held in claims(records).items()}


class Leases:
    """A node's claims, renewals and releases of bridge leases in the store."""

    def __init__(self, store: Store, node_id: str, lease_s: float) -> None:
        self.store = store
        self.node_id = node_id
        self.lease_s = lease_s

    async def _write(
        self, room_id: str, name: str, record: dict[str, Any] | None, once: bool = False
    ) -> bool:
        key = f"lease-{secrets.token_hex(8)}"
        result = await self.store.apply(
            room_id, LEASES_BOX, name, key, record, {}, once=once, versioned=False
        )
        return result.status == "applied"

    def _record(self) -> dict[str, Any]:
        return {"node": self.node_id, "until": int((time.time() + self.lease_s) * 1000)}

    async def claim(self, room_id: str, bid: str, after: Lease | None) -> Lease | None:
        """Claim the bridge's next epoch after ``after`` (the lease as read: lapsed, ours,
        or None); the lease when this node won it, None when another node did."""
        epoch = (after.epoch if after is not None else 0) + 1
        record = self._record()
        if not await self._write(room_id, holder(bid, epoch), record, once=True):
            return None
        held = claims(await self.store.records(room_id, LEASES_BOX)).get(bid, [])
        if not held or held[0].epoch != epoch or held[0].node != self.node_id:
            await self._write(room_id, holder(bid, epoch), None)  # claimed from an old reading
            return None
        for older in held[1:]:
            await self._write(room_id, older.holder, None)
        return Lease(bid, epoch, self.node_id, record["until"] / 1000)

    async def renew(self, room_id: str, lease: Lease) -> Lease:
        """Push the lease's end ``lease_s`` ahead (the caller has read that it still holds it)."""
        record = self._record()
        await self._write(room_id, lease.holder, record)
        return Lease(lease.bid, lease.epoch, self.node_id, record["until"] / 1000)

    async def release(self, room_id: str, bid: str) -> None:
        """Withdraw every claim on a bridge (it was removed)."""
        held = claims(await self.store.records(room_id, LEASES_BOX)).get(bid, [])
        for lease in held:
            await self._write(room_id, lease.holder, None)


__all__ = [
    "BRIDGES_BOX",
    "CURSORS_BOX",
    "LEASES_BOX",
    "Lease",
    "Leases",
    "claims",
    "current",
    "holder",
    "lease_seconds",
    "renew_seconds",
]
