"""The node's full garbage collections (server/hub/collector.py): CPython's own is off
while a hub runs, and the node runs one when it is due and quiet, or overdue."""

from __future__ import annotations

import gc

import pytest

from server.hub import collector as collector_module
from server.hub.collector import OFF, OVERDUE_S, Collector


class Process:
    """What the collector reads and does, as numbers a test sets."""

    def __init__(self) -> None:
        self.now = 0.0
        self.blocks = 1000
        self.young_rounds = 0
        self.collected = 0

    def collect(self) -> None:
        self.collected += 1
        self.young_rounds = 0
        self.blocks = 1000


@pytest.fixture
def process() -> Process:
    return Process()


def make(process: Process) -> Collector:
    c = Collector(
        clock=lambda: process.now,
        blocks=lambda: process.blocks,
        young_rounds=lambda: process.young_rounds,
        collect=process.collect,
    )
    c._base = process.blocks
    return c


def test_nothing_runs_until_cpython_itself_would_collect(process):
    c = make(process)
    process.blocks = 1200  # grew 20 %: under CPython's quarter
    process.young_rounds = 50
    assert c.check(100, 0.0) is None
    process.blocks, process.young_rounds = 2000, 3  # grown, but too few young rounds
    assert c.check(100, 0.0) is None
    assert process.collected == 0


def test_a_due_collection_waits_for_a_quiet_node(process):
    c = make(process)
    assert c.check(5000, 0.0) is None  # first look: not due, the connection count noted
    process.blocks, process.young_rounds = 1300, 10
    assert c.check(5000, 4000.0) is None  # a vote burst: 4,000 commands a second
    assert c.check(0, 0.0) is None  # a mass leave: 5,000 connections fewer
    assert process.collected == 0
    assert c.check(0, 0.0) == "quiet: memory grew 30%"
    assert process.collected == 1
    assert c.check(0, 0.0) is None  # collected: not due again


def test_quiet_means_few_commands_and_a_steady_connection_count(process):
    c = make(process)
    c.check(3000, 0.0)
    process.blocks, process.young_rounds = 1700, 10
    assert c.check(3060, 10.0) is None  # 60 joined since the last look
    assert c.check(3000, 10.0) is None  # 60 left
    assert c.check(3040, 150.0) == "quiet: memory grew 70%"  # 40 joined, 150 commands/s
    assert process.collected == 1


def test_an_overdue_collection_runs_whatever_the_load(process):
    c = make(process)
    process.blocks, process.young_rounds = 1300, 10
    assert c.check(5000, 9000.0) is None
    process.now += OVERDUE_S
    assert c.check(5000, 9000.0) == "overdue: due for 60 s"
    process.blocks, process.young_rounds = 2000, 10  # memory doubled: at once
    assert c.check(5000, 9000.0) == "overdue: memory grew 100%"
    assert process.collected == 2


@pytest.fixture
def unfrozen():
    """A heap nobody froze, as in `hudong serve` (the suite freezes its own between tests)."""
    gc.unfreeze()
    yield
    gc.freeze()


def test_cpythons_full_collection_is_off_while_a_hub_runs_and_back_after(unfrozen):
    before = gc.get_threshold()
    first, second = Collector(), Collector()  # two hubs in one process (tests, a cluster)
    first.start()
    second.start()
    try:
        assert gc.get_threshold() == (before[0], before[1], OFF)
        assert gc.get_freeze_count() > 0  # start-up objects are never walked
        first.stop()
        assert gc.get_threshold()[2] == OFF  # the other hub still runs
    finally:
        second.stop()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert collector_module.Collector._running == 0


def test_a_real_full_collection_frees_cycles_on_a_quiet_node():
    c = Collector()
    c.start()
    try:

        class Node:
            pass

        for _ in range(20_000):  # cycles only the full collection can free
            a, b = Node(), Node()
            a.other, b.other = b, a  # type: ignore[attr-defined]
        del a, b
        c._base = 1  # pretend it grew a lot since the last full collection
        while gc.get_count()[2] < 10:
            gc.collect(1)
        assert c.check(0, 0.0) is not None
        assert c.collections == 1
        assert not [o for o in gc.get_objects() if type(o).__name__ == "Node"]
    finally:
        c.stop()


def test_a_heap_the_process_froze_itself_stays_frozen(unfrozen):
    """The process froze its heap before the first hub (the suite does): the hubs neither
    freeze more of it nor unfreeze it when the last one stops."""
    kept = [object() for _ in range(10)]  # noqa: F841  (alive across the freeze)
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    before = gc.get_threshold()
    c = Collector()
    c.start()
    try:
        made_after = [[] for _ in range(100)]  # noqa: F841
        assert gc.get_freeze_count() == frozen
        assert gc.get_threshold() == (before[0], before[1], OFF)
    finally:
        c.stop()
    assert gc.get_freeze_count() == frozen
    assert gc.get_threshold() == before
