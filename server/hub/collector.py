"""Full collections of Python's cyclic garbage collector, at moments the node can afford.

A node with thousands of connections holds a few hundred thousand GC-tracked objects,
and one full (generation 2) collection walks them all: 86-250 ms on the project's 2-vCPU
VM (BENCHMARKS.md, "Mass leave"), a stall of the event loop. CPython starts one as soon
as enough objects have survived into the old generation, which is exactly what a burst
does: a connect wave, a mass leave, 5,000 votes at once. So the stall lands in the middle
of the burst, where it costs most.

While a hub runs, CPython's automatic full collection is off (its generation-2 threshold
out of reach; the young generations are collected as always) and :class:`Collector`
runs it from the upkeep loop instead, by the same rule CPython uses (due after
:data:`YOUNG_ROUNDS` young rounds once memory grew by :data:`GROWTH`), but only while
the node is quiet: fewer than :data:`QUIET_INGEST_PER_S` commands a second and fewer
than :data:`QUIET_CHURN` connections opened or closed since the last look. Memory comes
first: an overdue collection (grown by :data:`OVERDUE_GROWTH`, or due for
:data:`OVERDUE_S`) runs whatever the load. What was allocated at start-up (modules,
tables, the blocklist) is frozen out of every collection, unless the process froze its
heap itself before the first hub started (the test suite does, between tests): then the
heap is the process's to freeze and unfreeze, and the hubs leave it alone.

Growth is measured in allocated memory blocks (``sys.getallocatedblocks``, about 30 µs),
since CPython does not expose its own count of survivors.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Callable

log = logging.getLogger("hudong.hub")

YOUNG_ROUNDS = 10  # CPython's default generation-2 threshold: generation-1 rounds
GROWTH = 0.25  # CPython's rule: a full collection once the old objects grew by a quarter
OVERDUE_GROWTH = 1.0  # memory doubled since the last full collection: collect now
OVERDUE_S = 60.0  # due this long without a quiet moment: collect now
QUIET_INGEST_PER_S = 200.0
QUIET_CHURN = 50
OFF = 2**31 - 1  # a generation-2 threshold that is never reached


class Collector:
    """Decides when the cyclic GC's full collection runs while hubs run in this process
    (one setting for the process: the first :meth:`start` turns CPython's own off, the
    last :meth:`stop` turns it back on)."""

    _running = 0
    _saved: tuple[int, int, int] | None = None
    _froze = False  # whether the first start() froze the heap (its last stop() unfreezes)

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        blocks: Callable[[], int] = sys.getallocatedblocks,
        young_rounds: Callable[[], int] = lambda: gc.get_count()[2],
        collect: Callable[[], object] = lambda: gc.collect(2),
    ) -> None:
        self._clock = clock
        self._blocks = blocks
        self._young_rounds = young_rounds
        self._collect = collect
        self._base = 1
        self._due_since: float | None = None
        self._connections: int | None = None
        self.collections = 0  # full collections run here (for tests and the log)

    def start(self) -> None:
        if Collector._running == 0:
            Collector._saved = gc.get_threshold()
            # Start-up objects live as long as the process: never walk them. Unfreezing
            # at the end releases every frozen object, so a heap already frozen by
            # whoever runs the hubs is left to them.
            Collector._froze = gc.get_freeze_count() == 0
            if Collector._froze:
                gc.collect()
                gc.freeze()
            young, middle, _ = Collector._saved
            gc.set_threshold(young, middle, OFF)
        Collector._running += 1
        self._base = max(1, self._blocks())

    def stop(self) -> None:
        Collector._running = max(0, Collector._running - 1)
        if Collector._running == 0 and Collector._saved is not None:
            gc.set_threshold(*Collector._saved)
            if Collector._froze:
                gc.unfreeze()
            Collector._saved = None
            Collector._froze = False

    def check(self, connections: int, ingest_per_s: float) -> str | None:
        """Run a full collection if it is due and the node quiet, or overdue; why it ran
        (for the log), or None. Called once a second by the upkeep loop."""
        before = connections if self._connections is None else self._connections
        churn, self._connections = abs(connections - before), connections
        grown = self._blocks() / self._base - 1.0
        if self._young_rounds() < YOUNG_ROUNDS or grown < GROWTH:
            self._due_since = None
            return None
        now = self._clock()
        if self._due_since is None:
            self._due_since = now
        if grown >= OVERDUE_GROWTH:
            why = f"overdue: memory grew {grown:.0%}"
        elif now - self._due_since >= OVERDUE_S:
            why = f"overdue: due for {now - self._due_since:.0f} s"
        elif ingest_per_s < QUIET_INGEST_PER_S and churn < QUIET_CHURN:
            why = f"quiet: memory grew {grown:.0%}"
        else:
            return None  # busy: a full collection now would stall the burst
        started = time.perf_counter()
        self._collect()
        self.collections += 1
        self._base = max(1, self._blocks())
        self._due_since = None
        log.debug("full collection (%s) took %.0f ms", why, (time.perf_counter() - started) * 1e3)
        return why
