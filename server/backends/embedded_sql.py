"""The embedded store's SQLite file: its schema, and what its transactions are made of
(server/backends/embedded.py). Every table but ``meta`` and ``rooms`` is keyed by room
first, so a room's rows go with one ``DELETE … WHERE room = ?`` each."""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rooms (
    id TEXT PRIMARY KEY, record BLOB NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS interactions (
    room TEXT, id TEXT, state BLOB NOT NULL, PRIMARY KEY (room, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    room TEXT, box TEXT, value BLOB NOT NULL, PRIMARY KEY (room, box)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS held (
    room TEXT, box TEXT, holder TEXT, value BLOB NOT NULL,
    PRIMARY KEY (room, box, holder)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS done (
    room TEXT, box TEXT, key TEXT, version INTEGER NOT NULL,
    PRIMARY KEY (room, box, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
    room TEXT, hash TEXT, info BLOB NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (room, hash)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS participants (
    room TEXT, user TEXT, PRIMARY KEY (room, user)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS viewers (
    room TEXT, user TEXT, PRIMARY KEY (room, user)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replay (
    room TEXT, seq INTEGER, event BLOB NOT NULL, PRIMARY KEY (room, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    room TEXT, seq INTEGER, entry BLOB NOT NULL, PRIMARY KEY (room, seq)) WITHOUT ROWID;
"""
ROOM_TABLES = (
    "interactions",
    "counters",
    "held",
    "done",
    "tokens",
    "participants",
    "viewers",
    "replay",
    "audit",
)
# meta rows "<name>:<room>": how many ids of the room were forgotten (the _Room's field)
FORGOTTEN = {"forgotten": "forgotten", "unseen": "viewers_forgotten"}

Statement = tuple[str, tuple[Any, ...]]
COUNTERS_ROW = "INSERT OR REPLACE INTO counters VALUES (?, ?, ?)"
VERSION_ROW = "UPDATE rooms SET version = ? WHERE id = ?"
# Statements that overwrite one row whole, without reading it, by the part of their
# parameters that names the row: in one transaction only the last of each counts. A
# burst of 256 votes writes a poll's counters and the room's version 256 times each.
OVERWRITES = {COUNTERS_ROW: slice(0, 2), VERSION_ROW: slice(1, 2)}


def coalesced(batch: list[Statement]) -> list[Statement]:
    """``batch`` less each overwrite that a later one of the same row replaces (the
    transaction ends in the same state: nothing in it reads those rows)."""
    last: dict[tuple[str, tuple[Any, ...]], int] = {}
    overwrites = 0
    for i, (sql, params) in enumerate(batch):
        row = OVERWRITES.get(sql)
        if row is not None:
            last[sql, params[row]] = i
            overwrites += 1
    if len(last) == overwrites:
        return batch
    keep = set(last.values())
    return [st for i, st in enumerate(batch) if st[0] not in OVERWRITES or i in keep]
