"""The durable embedded default: the memory store's rooms, kept in SQLite.

``hudong serve`` without ``--redis`` runs on this store (``sqlite:///<data dir>/hudong.db``).
Reads are served from memory, exactly as :class:`MemoryStore` serves them (the contract
suite runs the same tests on both). Every change is also written to SQLite, in WAL mode
with ``synchronous=FULL``, and a call that changed something returns only once the
change is committed to disk: an acknowledged vote survives ``kill -9`` and a power cut.
At start, the file is read back into memory.

Group commit: the writes of every call that arrives while a commit is on disk go
together in the next transaction (one fsync), so a burst of 5,000 votes costs a few
dozen commits, not 5,000. Commits run on one worker thread; the event loop never waits
on the disk. A commit that fails (a full disk) fails the calls waiting on it with
:class:`BackendUnavailable` and is tried again, first in line: nothing is acknowledged
before it is on disk, and a retry of a failed call (same idempotency key) is answered
only once the first application is.

Kept on disk: rooms, interactions, every box (counters, held contributions, applied
idempotency keys: votes, moderation, draw entries), token records, participants, the
audit log and the replay buffer. Presence and per-node live counts are not: they expire
within seconds.
The replay buffer is written with the next commit without being waited for (it is best
effort, and the danmaku path must not wait on the disk). A commit that holds nothing but
replay rows is not synced (``synchronous=NORMAL`` for that transaction): a danmaku stream
alone costs no fsync, and the next synced commit syncs the log with those rows in it.

One process at a time: the data directory is locked while a store has it open; a second
``hudong serve`` on the same directory is told which process holds it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from server.backends.base import (
    TOKENS_KEPT,
    ApplyResult,
    BackendUnavailable,
    RoomRecord,
    Submission,
)
from server.backends.embedded_sql import (
    COUNTERS_ROW,
    FORGOTTEN,
    ROOM_TABLES,
    SCHEMA,
    SCHEMA_VERSION,
    VERSION_ROW,
    Statement,
    coalesced,
)
from server.backends.memory import MemoryStore, _Room
from server.backends.retention import Cutoffs
from server.backends.store_lock import lock
from server.backends.viewers import ViewerData

log = logging.getLogger("hudong.store")

RETRY_FIRST_S = 0.05
RETRY_MAX_S = 5.0
CLOSE_WAIT_S = 10.0


class EmbeddedStore(MemoryStore):
    """The memory store, with every change committed to a SQLite file before the call
    that made it returns, and the file read back at start."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self._audit_seq: dict[str, int] = {}  # the last audit row's seq, per room
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = lock(self.path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            # An erased viewer's rows are overwritten on disk, not left in free pages.
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.executescript(SCHEMA)
            self._check_schema()
            self._load()
        except sqlite3.Error as exc:
            self._db.close()
            os.close(self._lock)
            raise ValueError(f"cannot open the store {self.path}: {exc}") from None
        self._replay_seq: dict[str, int] = {}
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="hudong-store")
        self._queue: list[Statement] = []
        self._queued = 0  # changes handed to the queue since start
        self._queue_synced = False  # whether what is queued needs a synced commit
        self._commits_synced = True  # the connection's synchronous mode: FULL or NORMAL
        self._synced = 0  # of those, how many are on disk
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._failing = False  # the last commit failed; the next try is pending
        self._closed = False

    # --- start: the file back into memory ---------------------------------------------

    def _check_schema(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {row[0]}, this hudong reads version {SCHEMA_VERSION}"
            )

    def _load(self) -> None:
        db = self._db
        for room_id, raw, version in db.execute("SELECT id, record, version FROM rooms"):
            record = RoomRecord.from_json(orjson.loads(raw))
            self._rooms[room_id] = _Room(record, version)
        rooms = self._rooms
        for room_id, iid, state in db.execute("SELECT room, id, state FROM interactions"):
            rooms[room_id].interactions[iid] = state
        for room_id, box, value in db.execute("SELECT room, box, value FROM counters"):
            rooms[room_id].contributions[box].counters = orjson.loads(value)
        for room_id, box, holder, value in db.execute("SELECT * FROM held"):
            rooms[room_id].contributions[box].records[holder] = value
        for room_id, box, key, version in db.execute("SELECT * FROM done"):
            rooms[room_id].contributions[box].done[key] = version
        now = time.time()
        db.execute("DELETE FROM tokens WHERE expires < ?", (now,))
        for room_id, token_hash, info, expires in db.execute("SELECT * FROM tokens"):
            rooms[room_id].tokens[token_hash] = (info, expires)
        now = time.time()  # when each was counted is not kept on disk: from now on
        for table in ("participants", "viewers"):
            for room_id, user in db.execute(f"SELECT room, user FROM {table}"):
                getattr(rooms[room_id], table)[user] = now
        for key, value in db.execute("SELECT key, value FROM meta WHERE key LIKE '%:%'"):
            name, _, room_id = key.partition(":")
            if name in FORGOTTEN and room_id in rooms:
                setattr(rooms[room_id], FORGOTTEN[name], int(value))
        for room_id, event in db.execute("SELECT room, event FROM replay ORDER BY room, seq"):
            rooms[room_id].replay.append(event)
        for room_id, seq, entry in db.execute("SELECT * FROM audit ORDER BY room, seq"):
            rooms[room_id].audit.append(entry)
            self._audit_seq[room_id] = seq

    # --- writes: queued in call order, committed together -----------------------------

    def _write(self, *statements: Statement, synced: bool = True) -> None:
        self._queue.extend(statements)
        self._queued += 1
        self._queue_synced |= synced
        self._kick()

    def _kick(self) -> None:
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _durable(self) -> None:
        """Return once every change queued so far is on disk."""
        target = self._queued
        if self._synced >= target:
            return
        if self._closed:
            raise BackendUnavailable("the store is closed")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        self._kick()
        await waiter

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        delay = RETRY_FIRST_S
        try:
            while self._queue:
                batch, upto, synced = self._queue, self._queued, self._queue_synced
                self._queue, self._queue_synced = [], False
                try:
                    await loop.run_in_executor(self._writer, self._commit, batch, synced)
                except (sqlite3.Error, OSError) as exc:
                    self._queue[:0] = batch  # first in line for the next try
                    self._queue_synced |= synced
                    self._failing = True
                    log.error("store commit failed (retrying in %.2f s): %s", delay, exc)
                    self._settle(self._queued, BackendUnavailable(f"store write failed: {exc}"))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
                    continue
                delay = RETRY_FIRST_S
                self._failing = False
                self._synced = upto
                self._settle(upto)
        finally:
            self._flushing = None

    def _settle(self, upto: int, error: Exception | None = None) -> None:
        """Answer the waiters whose changes are at most ``upto``: done, or ``error``."""
        waiting = []
        for target, waiter in self._waiters:
            if target > upto:
                waiting.append((target, waiter))
            elif not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)
        self._waiters = waiting

    def _commit(self, batch: list[Statement], synced: bool = True) -> None:
        """One transaction on the writer thread; ``synced``: fsync'd before it returns."""
        db = self._db
        if synced != self._commits_synced:
            db.execute(f"PRAGMA synchronous={'FULL' if synced else 'NORMAL'}")
            self._commits_synced = synced
        db.execute("BEGIN")
        try:
            for sql, params in coalesced(batch):
                db.execute(sql, params)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # --- rooms ------------------------------------------------------------------------

    def _room_row(self, room_id: str) -> Statement:
        room = self._rooms[room_id]
        return (
            "INSERT OR REPLACE INTO rooms VALUES (?, ?, ?)",
            (room_id, orjson.dumps(room.record.to_json()), room.version),
        )

    def _version_row(self, room_id: str) -> Statement:
        return (
            VERSION_ROW,
            (self._rooms[room_id].version, room_id),
        )

    async def create_room(self, room: RoomRecord) -> RoomRecord:
        created = await super().create_room(room)
        self._write(self._room_row(room.id))
        await self._durable()
        return created

    async def update_room(
        self, room_id: str, *, title: str | None = None, settings: dict[str, Any] | None = None
    ) -> RoomRecord:
        updated = await super().update_room(room_id, title=title, settings=settings)
        self._write(self._room_row(room_id))
        await self._durable()
        return updated

    async def delete_room(self, room_id: str) -> None:
        await super().delete_room(room_id)
        self._replay_seq.pop(room_id, None)
        self._audit_seq.pop(room_id, None)
        self._write(
            ("DELETE FROM rooms WHERE id = ?", (room_id,)),
            *(("DELETE FROM meta WHERE key = ?", (f"{name}:{room_id}",)) for name in FORGOTTEN),
            *(("DELETE FROM " + t + " WHERE room = ?", (room_id,)) for t in ROOM_TABLES),
        )
        await self._durable()

    async def remember_token(
        self,
        room_id: str,
        token_hash: str,
        info: dict[str, Any],
        ttl_s: int,
        keep: int = TOKENS_KEPT,
    ) -> None:
        gone = self._remember_token(room_id, token_hash, info, ttl_s, keep)
        entry = self._rooms[room_id].tokens.get(token_hash)
        writes: list[Statement] = [
            ("DELETE FROM tokens WHERE room = ? AND hash = ?", (room_id, h)) for h in gone
        ]
        if entry is not None:  # kept (a token that expires at once is not)
            writes.append(
                (
                    "INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?)",
                    (room_id, token_hash, entry[0], entry[1]),
                )
            )
        self._write(*writes)
        await self._durable()

    async def put_interaction(
        self, room_id: str, interaction_id: str, state: dict[str, Any]
    ) -> int:
        version = await super().put_interaction(room_id, interaction_id, state)
        raw = self._rooms[room_id].interactions[interaction_id]
        self._write(
            (
                "INSERT OR REPLACE INTO interactions VALUES (?, ?, ?)",
                (room_id, interaction_id, raw),
            ),
            self._version_row(room_id),
        )
        await self._durable()
        return version

    # --- contributions ----------------------------------------------------------------

    async def submit(
        self, room_id: str, interaction_id: str, submission: Submission
    ) -> ApplyResult:
        result = await self._submit_now(room_id, interaction_id, submission)
        # A duplicate's first application, or what a refusal was measured against, may
        # still be on its way to disk: answer once it is there.
        await self._durable()
        return result

    async def submit_many(
        self, room_id: str, items: list[tuple[str, Submission]]
    ) -> list[ApplyResult]:
        """Apply each in order (as :meth:`submit` one after another), then wait for one
        commit for all of them."""
        results = [await self._submit_now(room_id, box, item) for box, item in items]
        await self._durable()
        return results

    async def _submit_now(self, room_id: str, box: str, submission: Submission) -> ApplyResult:
        """Apply in memory and queue the write, without waiting for the disk (nothing in
        here suspends, so no other call comes between the two)."""
        result = await super().submit(room_id, box, submission)
        if result.status == "applied":
            self._write(*self._applied(room_id, box, submission, result))
        return result

    def _applied(
        self, room_id: str, box: str, submission: Submission, result: ApplyResult
    ) -> Iterator[Statement]:
        state = self._rooms[room_id].contributions[box]
        yield COUNTERS_ROW, (room_id, box, orjson.dumps(state.counters))
        held = state.records.get(submission.viewer_id)
        if held is None:
            yield (
                "DELETE FROM held WHERE room = ? AND box = ? AND holder = ?",
                (room_id, box, submission.viewer_id),
            )
        else:
            yield (
                "INSERT OR REPLACE INTO held VALUES (?, ?, ?, ?)",
                (room_id, box, submission.viewer_id, held),
            )
        if submission.versioned and submission.keyed:  # bookkeeping keeps no key (base.py)
            yield (
                "INSERT OR REPLACE INTO done VALUES (?, ?, ?, ?)",
                (room_id, box, submission.done_key, result.version),
            )
        if submission.versioned:
            yield self._version_row(room_id)

    async def add_participants(self, room_id: str, user_ids: Collection[str]) -> None:
        await super().add_participants(room_id, user_ids)
        if room_id in self._rooms and user_ids:
            self._write(
                *(
                    ("INSERT OR IGNORE INTO participants VALUES (?, ?)", (room_id, user))
                    for user in user_ids
                )
            )
            await self._durable()

    async def add_viewers(self, room_id: str, user_ids: Collection[str]) -> None:
        await super().add_viewers(room_id, user_ids)
        if room_id in self._rooms and user_ids:
            self._write(
                *(("INSERT OR IGNORE INTO viewers VALUES (?, ?)", (room_id, u)) for u in user_ids)
            )
            await self._durable()

    async def append_replay(self, room_id: str, events: list[dict[str, Any]], keep: int) -> None:
        await super().append_replay(room_id, events, keep)
        if room_id not in self._rooms or not events:
            return
        seq = self._replay_seq.get(room_id)
        if seq is None:
            seq = self._last_replay_seq(room_id)
        rows: list[Statement] = []
        for event in events:
            seq += 1
            rows.append(
                ("INSERT INTO replay VALUES (?, ?, ?)", (room_id, seq, orjson.dumps(event)))
            )
        rows.append(("DELETE FROM replay WHERE room = ? AND seq <= ?", (room_id, seq - keep)))
        self._replay_seq[room_id] = seq
        self._write(*rows, synced=False)  # best effort: not waited for (module docstring)

    async def append_audit(self, room_id: str, entries: list[dict[str, Any]], keep: int) -> None:
        await super().append_audit(room_id, entries, keep)
        seq = self._audit_seq.get(room_id, 0)
        rows: list[Statement] = []
        for entry in entries:
            seq += 1
            rows.append(("INSERT INTO audit VALUES (?, ?, ?)", (room_id, seq, orjson.dumps(entry))))
        rows.append(("DELETE FROM audit WHERE room = ? AND seq <= ?", (room_id, seq - keep)))
        self._audit_seq[room_id] = seq
        self._write(*rows)
        await self._durable()  # an audit entry is kept like any change, not best effort

    async def redact_audit(self, room_id: str, user_id: str, replacement: str) -> int:
        changed = await super().redact_audit(room_id, user_id, replacement)
        if changed:  # the log again, in its place: the same seqs, ending at the last
            entries = self._rooms[room_id].audit
            first = self._audit_seq.get(room_id, 0) - len(entries) + 1
            rows: list[Statement] = [("DELETE FROM audit WHERE room = ?", (room_id,))]
            for seq, entry in enumerate(entries, first):
                rows.append(("INSERT INTO audit VALUES (?, ?, ?)", (room_id, seq, entry)))
            self._write(*rows)
            await self._durable()
        return changed

    async def erase_viewer(self, room_id: str, viewer_id: str) -> tuple[ViewerData, int]:
        """Erase in memory, then write the rows that changed (nothing in between
        suspends), and answer once they are on disk."""
        room = self._room(room_id)
        tokens = set(room.tokens)
        data, version = await super().erase_viewer(room_id, viewer_id)
        rows: list[Statement] = [
            (
                "DELETE FROM done WHERE room = ? AND (substr(key, 1, ?) = ? OR instr(key, ?) > 0)",
                (room_id, len(viewer_id) + 1, f"{viewer_id}|", f"|{viewer_id}|"),
            ),
            ("DELETE FROM participants WHERE room = ? AND user = ?", (room_id, viewer_id)),
            ("DELETE FROM viewers WHERE room = ? AND user = ?", (room_id, viewer_id)),
            *(
                ("DELETE FROM tokens WHERE room = ? AND hash = ?", (room_id, gone))
                for gone in tokens - set(room.tokens)
            ),
            self._version_row(room_id),
        ]
        for box, held in data.records.items():
            counters = room.contributions[box].counters
            rows.append((COUNTERS_ROW, (room_id, box, orjson.dumps(counters))))
            rows += [
                ("DELETE FROM held WHERE room = ? AND box = ? AND holder = ?", (room_id, box, h))
                for h in held
            ]
        for iid in data.interactions:
            rows.append(
                (
                    "INSERT OR REPLACE INTO interactions VALUES (?, ?, ?)",
                    (room_id, iid, room.interactions[iid]),
                )
            )
        if data.replay:
            rows += self._replay_rows(room_id)
        self._write(*rows)
        await self._durable()
        return data, version

    def _forgotten_rows(self, room_id: str) -> list[Statement]:
        room = self._rooms[room_id]
        return [
            ("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"{name}:{room_id}", str(count)))
            for name, count in ((n, getattr(room, f)) for n, f in FORGOTTEN.items())
        ]

    def _replay_rows(self, room_id: str) -> list[Statement]:
        """The room's replay buffer written anew, numbered up to the last number used."""
        replay = self._rooms[room_id].replay
        seq = self._replay_seq.get(room_id)
        if seq is None:
            seq = self._last_replay_seq(room_id)
        self._replay_seq[room_id] = seq
        first = seq - len(replay)
        return [
            ("DELETE FROM replay WHERE room = ?", (room_id,)),
            *(
                ("INSERT INTO replay VALUES (?, ?, ?)", (room_id, first + n, event))
                for n, event in enumerate(replay, 1)
            ),
        ]

    async def prune(self, room_id: str, cutoffs: Cutoffs, now: float) -> tuple[int, int]:
        """Prune in memory, then delete the rows that went (nothing in between suspends)."""
        room = self._room(room_id)
        held = {box: set(state.records) for box, state in room.contributions.items()}
        keys = {box for box, state in room.contributions.items() if state.done}
        tokens, replay = set(room.tokens), len(room.replay)
        participants, viewers = set(room.participants), set(room.viewers)
        dropped, version = await super().prune(room_id, cutoffs, now)
        if not dropped:
            return dropped, version
        rows: list[Statement] = [self._version_row(room_id)]
        gone = participants - set(room.participants)
        rows += [
            ("DELETE FROM participants WHERE room = ? AND user = ?", (room_id, user))
            for user in gone
        ]
        unseen = viewers - set(room.viewers)
        rows += [
            ("DELETE FROM viewers WHERE room = ? AND user = ?", (room_id, user)) for user in unseen
        ]
        if gone or unseen:
            rows += self._forgotten_rows(room_id)
        for box, holders in held.items():
            rows += [
                ("DELETE FROM held WHERE room = ? AND box = ? AND holder = ?", (room_id, box, h))
                for h in holders - set(room.contributions[box].records)
            ]
            if box in keys and not room.contributions[box].done:
                rows.append(("DELETE FROM done WHERE room = ? AND box = ?", (room_id, box)))
        rows += [
            ("DELETE FROM tokens WHERE room = ? AND hash = ?", (room_id, gone))
            for gone in tokens - set(room.tokens)
        ]
        if len(room.replay) != replay:
            rows += self._replay_rows(room_id)
        self._write(*rows)
        await self._durable()
        return dropped, version

    def _last_replay_seq(self, room_id: str) -> int:
        # Read once per room and run, before this run's first append (the writer thread
        # only appends after it, so the reading thread sees every row there is).
        row = self._db.execute("SELECT MAX(seq) FROM replay WHERE room = ?", (room_id,)).fetchone()
        return int(row[0] or 0)

    async def ping(self) -> None:
        if self._failing:
            raise BackendUnavailable(f"the store {self.path} is not taking writes")

    async def close(self) -> None:
        """Commit what is queued (waiting at most CLOSE_WAIT_S), then let go of the file."""
        if self._closed:
            return
        try:
            await asyncio.wait_for(self._durable(), CLOSE_WAIT_S)
        except (TimeoutError, BackendUnavailable):
            log.error("store closed with %d changes not written", len(self._queue))
        self._closed = True
        if self._flushing is not None:
            self._flushing.cancel()
        self._writer.shutdown(wait=True)
        self._db.close()
        os.close(self._lock)
