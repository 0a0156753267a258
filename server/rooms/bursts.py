"""Buffered taps (reactions): any rate, no store write per tap.

Taps are added up per room and interaction. Once per tick the sums since the last tick
become one stream event per interaction (the kind's ``burst_event``). Once a second
the node commits its totals: this node holds, in the interaction's box, one
contribution whose deltas are everything it counted since it started, so each commit
replaces the previous one (``Store.apply``: counters move by new - old). A commit
that fails, or whose answer is lost, is simply superseded by the next one, so every
tap is counted exactly once however the store behaves, and what other nodes commit is
theirs. A node that stops commits what it holds first.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from server.backends.base import BackendUnavailable, RoomNotFound, Store
from server.interactions.kind import Definition, Kind

log = logging.getLogger("hudong.bursts")


@dataclass
class _Counts:
    """One interaction's taps on this node: since the last tick, and since start."""

    kind: Kind[Any, Any]
    definition: Definition
    box: str
    tick: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    committed: bool = True


def _add(into: dict[str, int], deltas: Mapping[str, int]) -> None:
    for name, n in deltas.items():
        into[name] = into.get(name, 0) + n


class Bursts:
    """Adds up buffered taps, hands over one merged event per interaction per tick, and
    commits this node's totals once a second, exactly once."""

    def __init__(self, store: Store, node_id: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        # This run of this node: a restarted node must not replace its earlier totals.
        self.holder = f"~{node_id}:{secrets.token_hex(4)}"
        self._clock = clock
        self._counts: dict[tuple[str, str], _Counts] = {}
        self._ticked: set[tuple[str, str]] = set()
        self._commits = 0

    def add(
        self, room_id: str, kind: Kind[Any, Any], d: Definition, box: str, deltas: Mapping[str, int]
    ) -> None:
        key = (room_id, d.id)
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = _Counts(kind, d, box)
        counts.definition = d
        _add(counts.tick, deltas)
        _add(counts.total, deltas)
        counts.committed = False
        self._ticked.add(key)

    def take_tick(self) -> list[tuple[str, dict[str, Any]]]:
        """(room id, event) for every interaction tapped since the last tick."""
        out = []
        for key in self._ticked:
            counts = self._counts[key]
            if counts.tick:
                out.append((key[0], counts.kind.burst_event(counts.definition, counts.tick)))
                counts.tick = {}
        self._ticked.clear()
        return out

    async def commit(self) -> list[tuple[str, str, int]]:
        """Commit every total that grew; (room id, interaction id, version) of each."""
        done = []
        for (room_id, iid), counts in list(self._counts.items()):
            if counts.committed:
                continue
            self._commits += 1
            total = dict(counts.total)
            try:
                result = await self.store.apply(
                    room_id,
                    counts.box,
                    self.holder,
                    f"{self.holder}:{self._commits}",
                    {"at": self._clock()},
                    total,
                )
            except RoomNotFound:
                del self._counts[(room_id, iid)]
                continue
            except BackendUnavailable as exc:
                log.warning("reactions of %s not committed yet: %s", room_id, exc)
                continue
            counts.committed = counts.total == total  # taps may have come in meanwhile
            done.append((room_id, iid, result.version))
        return done
