"""The durable embedded store (server/backends/embedded.py): what it acknowledged is
on disk and comes back at the next start; a write that fails is refused, kept and tried
again; one process at a time. The contract suite runs every Store test on it too."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time

import pytest

from server.backends import BackendUnavailable, RoomRecord, open_backends
from server.backends.embedded import EmbeddedStore
from server.backends.embedded_sql import COUNTERS_ROW, VERSION_ROW, coalesced
from server.backends.retention import Cutoffs, Retention
from server.backends.store_lock import StoreLocked


def room(room_id: str = "r1") -> RoomRecord:
    return RoomRecord(room_id, f"Room {room_id}", time.time(), 1, {"theme": "dark"})


async def test_everything_acknowledged_comes_back_after_a_reopen(tmp_path):
    path = tmp_path / "hudong.db"
    store = EmbeddedStore(path)
    await store.create_room(room())
    await store.create_room(room("gone"))
    await store.update_room("r1", title="Launch night", settings={"danmaku_merge_s": 5})
    await store.put_interaction("r1", "p", {"kind": "poll", "phase": "open"})
    for i in range(50):
        result = await store.apply("r1", "p", f"u{i}", f"k{i}", {"o": i % 3}, {f"o{i % 3}": 1})
        assert result.status == "applied"
    # u0 changes its mind, u1 withdraws: counters move by the difference
    await store.apply("r1", "p", "u0", "k0b", {"o": 2}, {"o2": 1})
    await store.apply("r1", "p", "u1", "k1b", None, {})
    await store.apply("r1", "moderation", "troll", "ban-1", {"banned": True}, {}, versioned=False)
    await store.remember_token("r1", "h" * 64, {"role": "viewer"}, ttl_s=3600)
    await store.add_participants("r1", ["u1", "u2"])
    await store.add_viewers("r1", ["u1", "u2", "u3"])
    await store.append_replay("r1", [{"t": f"d{i}"} for i in range(8)], keep=5)
    await store.append_audit("r1", [{"id": f"a{i}", "user": f"u{i % 2}"} for i in range(6)], 4)
    assert await store.redact_audit("r1", "u1", "(erased)") == 2
    await store.set_presence("r1", "node-a", 12, ttl_s=30)
    await store.delete_room("gone")
    before = await store.get_room("r1")
    counters = await store.counters("r1", "p")
    records = await store.records("r1", "p")
    await store.close()

    again = EmbeddedStore(path)
    try:
        assert await again.get_room("r1") == before
        assert before.title == "Launch night" and before.settings["danmaku_merge_s"] == 5
        assert [r.id for r in await again.list_rooms()] == ["r1"]
        assert await again.interactions("r1") == {"p": {"kind": "poll", "phase": "open"}}
        assert await again.counters("r1", "p") == counters
        assert sum(counters.values()) == 49 and counters["o2"] == 17
        assert await again.records("r1", "p") == records
        assert await again.records("r1", "moderation") == {"troll": {"banned": True}}
        assert await again.token_info("r1", "h" * 64) == {"role": "viewer"}
        assert await again.participants("r1") == 2
        assert await again.unique_viewers("r1") == 3
        assert await again.replay("r1", 10) == [{"t": f"d{i}"} for i in range(3, 8)]
        assert await again.presence("r1") == 0  # expires within seconds: not kept
        # The idempotency keys came back: a retry is a duplicate of the first application.
        retry = await again.apply("r1", "p", "u5", "k5", {"o": 2}, {"o2": 1})
        assert retry.status == "duplicate" and retry.counters == counters
        # Versions never go back, across restarts too.
        assert (await again.apply("r1", "p", "u99", "k", {"o": 0}, {"o0": 1})).version == (
            before.version + 1
        )
        audit = [{"id": "a2", "user": "u0"}, {"id": "a3", "user": "(erased)"}]
        audit += [{"id": "a4", "user": "u0"}, {"id": "a5", "user": "(erased)"}]
        assert await again.audit_log("r1") == audit  # bounded, redacted, in order
        await again.append_audit("r1", [{"id": "a6"}], keep=4)
        assert [e["id"] for e in await again.audit_log("r1")] == ["a3", "a4", "a5", "a6"]
        await again.append_replay("r1", [{"t": "after"}], keep=5)
        assert (await again.replay("r1", 2)) == [{"t": "d7"}, {"t": "after"}]
    finally:
        await again.close()


async def test_forgotten_ids_stay_counted_after_a_reopen(tmp_path):
    """Past the personal retention the ids of participants and viewers go from the file,
    their counts stay, also after a restart."""
    path = tmp_path / "hudong.db"
    store = EmbeddedStore(path)
    await store.create_room(room())
    await store.add_participants("r1", ["u1"])
    await store.add_viewers("r1", ["u1", "u2"])
    later = time.time() + 3 * 86400
    await store.prune("r1", Cutoffs.at(later, Retention(personal_s=86400)), later)
    await store.close()
    again = EmbeddedStore(path)
    try:
        assert (await again.participants("r1"), await again.unique_viewers("r1")) == (1, 2)
        assert not again._rooms["r1"].viewers and not again._rooms["r1"].participants
        await again.delete_room("r1")
    finally:
        await again.close()
    db = sqlite3.connect(path)
    try:  # a deleted room takes its counts along
        assert db.execute("SELECT key FROM meta WHERE key != 'schema'").fetchall() == []
    finally:
        db.close()


async def test_a_burst_of_applies_shares_commits(tmp_path):
    store = EmbeddedStore(tmp_path / "hudong.db")
    await store.create_room(room())
    commits = 0
    commit = store._commit

    def counted(batch, synced=True):
        nonlocal commits
        commits += 1
        commit(batch, synced)

    store._commit = counted  # type: ignore[method-assign]
    results = await asyncio.gather(
        *(store.apply("r1", "p", f"u{i}", "k", {"o": 1}, {"o": 1}) for i in range(500))
    )
    assert [r.status for r in results] == ["applied"] * 500
    assert commits < 50, f"{commits} commits for 500 votes"
    await store.close()
    again = EmbeddedStore(tmp_path / "hudong.db")
    assert await again.counters("r1", "p") == {"o": 500}
    await again.close()


async def test_a_batch_writes_each_counter_row_and_version_once_and_reads_back_exact(tmp_path):
    store = EmbeddedStore(tmp_path / "hudong.db")
    await store.create_room(room())
    transactions: list[list[str]] = []
    commit = store._commit

    def traced(batch, synced=True):
        transactions.append([sql for sql, _ in coalesced(batch)])
        commit(batch, synced)

    store._commit = traced  # type: ignore[method-assign]
    boxes = ("p", "q")
    results = await asyncio.gather(
        *(
            store.apply("r1", boxes[i % 2], f"u{i}", f"k{i}", {"o": 1}, {"o": 1, "n": i})
            for i in range(300)
        )
    )
    assert [r.status for r in results] == ["applied"] * 300
    assert len(transactions) < 50
    for rows in transactions:  # one row per poll's counters, one version, per transaction
        assert rows.count(COUNTERS_ROW) <= 2 and rows.count(VERSION_ROW) <= 1, rows
    held = [sql for rows in transactions for sql in rows if "INTO held" in sql]
    assert len(held) == 300  # but every voter's own row
    await store.close()
    again = EmbeddedStore(tmp_path / "hudong.db")
    evens, odds = range(0, 300, 2), range(1, 300, 2)
    assert await again.counters("r1", "p") == {"o": 150, "n": sum(evens)}
    assert await again.counters("r1", "q") == {"o": 150, "n": sum(odds)}
    assert (await again.get_room("r1")).version == max(r.version for r in results)
    await again.close()


def test_coalescing_keeps_the_last_overwrite_of_each_row_in_its_place():
    batch = [
        (COUNTERS_ROW, ("r", "p", b"1")),
        (VERSION_ROW, (2, "r")),
        (COUNTERS_ROW, ("r", "q", b"1")),
        ("DELETE FROM counters WHERE room = ?", ("r",)),
        (COUNTERS_ROW, ("r", "p", b"2")),
        (VERSION_ROW, (3, "r")),
        (VERSION_ROW, (1, "other")),
    ]
    assert coalesced(batch) == [
        (COUNTERS_ROW, ("r", "q", b"1")),
        ("DELETE FROM counters WHERE room = ?", ("r",)),
        (COUNTERS_ROW, ("r", "p", b"2")),
        (VERSION_ROW, (3, "r")),
        (VERSION_ROW, (1, "other")),
    ]
    assert coalesced(batch[:3]) == batch[:3]  # nothing replaced: the batch as it was


async def test_replay_rows_alone_are_committed_unsynced_and_a_vote_syncs(tmp_path):
    """The danmaku stream's replay rows (best effort) cost no fsync of their own; anything
    acknowledged is committed with synchronous=FULL, which syncs the log with them in it."""
    store = EmbeddedStore(tmp_path / "hudong.db")
    await store.create_room(room())
    modes = []
    commit = store._commit

    def watched(batch, synced=True):
        commit(batch, synced)
        modes.append((synced, store._db.execute("PRAGMA synchronous").fetchone()[0]))

    store._commit = watched  # type: ignore[method-assign]
    await store.append_replay("r1", [{"t": "666"}], keep=10)
    flushing = store._flushing
    assert flushing is not None
    await flushing
    assert modes == [(False, 1)]  # NORMAL
    await store.append_replay("r1", [{"t": "233"}], keep=10)
    await store.apply("r1", "p", "u1", "k1", {"o": 1}, {"o": 1})  # waits for its commit
    assert modes[-1] == (True, 2)  # FULL, with the queued replay row in the same commit
    await store.close()
    again = EmbeddedStore(tmp_path / "hudong.db")
    assert await again.replay("r1", 10) == [{"t": "666"}, {"t": "233"}]
    await again.close()


async def test_a_failed_write_is_refused_kept_and_retried(tmp_path):
    store = EmbeddedStore(tmp_path / "hudong.db")
    await store.create_room(room())
    commit = store._commit
    failures = 2

    def full_disk(batch, synced=True):
        nonlocal failures
        if failures:
            failures -= 1
            raise sqlite3.OperationalError("database or disk is full")
        commit(batch, synced)

    store._commit = full_disk  # type: ignore[method-assign]
    with pytest.raises(BackendUnavailable, match="disk is full"):
        await store.apply("r1", "p", "u1", "k1", {"o": 1}, {"o": 1})
    with pytest.raises(BackendUnavailable):
        await store.ping()  # not ready while writes fail
    with pytest.raises(BackendUnavailable):  # the disk is still full at the next try
        await store.apply("r1", "p", "u1", "k1", {"o": 1}, {"o": 1})
    # The client retries again with the same key: answered once the first try is on
    # disk, as the duplicate it is, and counted once.
    retry = await store.apply("r1", "p", "u1", "k1", {"o": 1}, {"o": 1})
    assert retry.status == "duplicate" and retry.counters == {"o": 1}
    await store.ping()
    await store.close()
    again = EmbeddedStore(tmp_path / "hudong.db")
    assert await again.counters("r1", "p") == {"o": 1}
    await again.close()


async def test_a_second_process_on_the_same_directory_is_told_who_has_it(tmp_path):
    store = EmbeddedStore(tmp_path / "hudong.db")
    try:
        with pytest.raises(StoreLocked, match=f"in use by process {os.getpid()}"):
            EmbeddedStore(tmp_path / "hudong.db")
    finally:
        await store.close()
    EmbeddedStore(tmp_path / "hudong.db")._db.close()  # free again once closed


def test_backend_urls(tmp_path):
    backends = open_backends(f"sqlite://{tmp_path}/x/hudong.db")
    assert isinstance(backends.store, EmbeddedStore) and backends.shared
    assert (tmp_path / "x" / "hudong.db").exists()
    backends.store._db.close()
    with pytest.raises(ValueError, match="names no file"):
        open_backends("sqlite://")
    with pytest.raises(ValueError, match="sqlite://, memory://"):
        open_backends("postgres://x")


def test_a_file_that_is_not_a_store_stops_the_start_with_its_name(tmp_path):
    path = tmp_path / "hudong.db"
    path.write_bytes(b"not a database, just some text " * 100)
    with pytest.raises(ValueError, match=f"cannot open the store {path}"):
        EmbeddedStore(path)
