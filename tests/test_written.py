"""What a node last wrote to the store (server/backends/written.py): a write that would
change nothing is due again only after its refresh time, or never without one."""

from server.backends.written import LastWritten


def test_a_value_is_due_when_it_changed_or_its_refresh_time_passed():
    kept = LastWritten(refresh_s=3.0)
    assert kept.due("r1", 5, 0.0)  # never written
    kept.wrote("r1", 5, 0.0)
    assert not kept.due("r1", 5, 2.9)
    assert kept.due("r1", 6, 0.1)  # changed
    assert kept.due("r1", 5, 3.0)  # written 3 s ago: refreshed before its TTL runs out
    assert kept.due("r2", 5, 0.1)  # another room


def test_without_a_refresh_time_the_same_value_is_never_due_again():
    kept = LastWritten()
    kept.wrote("r1", {"m": 1, "online": 2}, 0.0)
    assert not kept.due("r1", {"m": 1, "online": 2}, 1e9)
    assert kept.due("r1", {"m": 1, "online": 3}, 0.0)


def test_forgotten_values_are_due_again():
    kept = LastWritten()
    for room in ("r1", "r2", "r3"):
        kept.wrote(room, 1, 0.0)
    kept.forget(["r1"])  # a gap in one room's relay messages
    assert kept.due("r1", 1, 0.0) and not kept.due("r2", 1, 0.0)
    kept.keep({"r3"})  # r2 is no longer served here
    assert len(kept) == 1 and kept.due("r2", 1, 0.0)
    kept.forget()  # the store was away: it may have lost everything
    assert len(kept) == 0 and kept.due("r3", 1, 0.0)
