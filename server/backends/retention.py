"""Retention (PROTOCOL.md, "Privacy"): how long a room's store keeps danmaku, posts and
questions, and personal data, and which stored values are past it. Pure code: no I/O;
every backend's :meth:`Store.prune` applies these rules.

- *danmaku*: an event of the replay buffer whose ``ts`` (ms) is older than
  ``danmaku_s`` is dropped (on Redis the replay list also expires ``danmaku_s`` after
  its last append, in the store itself);
- *content*: a held record that carries a ``viewer_id`` (a question, a wall post: the
  viewer's words, under their own id) older than ``content_s`` is dropped;
- *personal*: every other held record (votes, picks, entries, presence, moderation:
  under the viewer's id, with the name it had) older than ``personal_s`` is dropped,
  and so are the idempotency keys of a box nobody wrote to for ``personal_s``;
  expired token records go too.

The boxes of :data:`KEPT_BOXES` hold the room's own set-up and its timeline of counts, not
records about a viewer: retention drops none of their records.

A dropped record leaves the counters as they are: results stay as aggregates, with no
record of who made them. (A viewer who contributes again to the same interaction after
that counts as a new one.) Held records carry the time they were written (``t``, s);
a record written before that was kept has none and is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from server.room_settings import (
    CONTENT_RETENTION_S,
    DANMAKU_RETENTION_S,
    PERSONAL_RETENTION_S,
)

# The room's own set-up and history, named by the modules that write them
# (tests/test_contract_retention.py holds these names to theirs): bridges and their cursors
# (server/bridges/lease.py), the word list (server/rooms/screening.py), keyword watch lists
# (server/rooms/alerts.py), token revocations (server/rooms/trust.py; each ends by itself, at
# its ``until``) and the per-minute timeline of counts (server/rooms/timeline.py; a node
# keeps a day of minutes of it).
KEPT_BOXES = frozenset(
    {"~bridges", "~bridge-cursors", "~words", "~watchlists", "~revoked", "~timeline"}
)


@dataclass(frozen=True, slots=True)
class Retention:
    """How many seconds a room keeps each kind of data (0: no limit)."""

    danmaku_s: int = DANMAKU_RETENTION_S
    content_s: int = CONTENT_RETENTION_S
    personal_s: int = PERSONAL_RETENTION_S

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Retention:
        """A room's retention from its settings (server/room_settings.py)."""
        return cls(
            int(settings.get("danmaku_retention_s", DANMAKU_RETENTION_S)),
            int(settings.get("content_retention_s", CONTENT_RETENTION_S)),
            int(settings.get("personal_retention_s", PERSONAL_RETENTION_S)),
        )


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """The moments before which each kind of data is past its retention (s since the
    epoch; 0: keep all)."""

    danmaku: float
    content: float
    personal: float

    @classmethod
    def at(cls, now: float, retention: Retention) -> Cutoffs:
        def cut(seconds: int) -> float:
            return now - seconds if seconds > 0 else 0.0

        return cls(cut(retention.danmaku_s), cut(retention.content_s), cut(retention.personal_s))


def stale_event(event: bytes | str, cutoffs: Cutoffs) -> bool:
    """A replay event sent before the danmaku cutoff."""
    ts = orjson.loads(event).get("ts")
    return isinstance(ts, int | float) and ts < cutoffs.danmaku * 1000


def written_at(held: bytes) -> int | None:
    """When a held value was written, read off its end (``…,"t":123}``, the last key
    :meth:`Submission.held` writes) without parsing the record; None if it has none."""
    start = held.rfind(b',"t":')
    if start < 0 or not held.endswith(b"}"):
        return None
    digits = held[start + 5 : -1]
    return int(digits) if digits.isdigit() else None


def stale_record(held: bytes | str, cutoffs: Cutoffs) -> bool:
    """A held record written before its kind's cutoff (module docstring). Only a
    record older than one of the cutoffs is parsed: a pass over a large box costs a
    scan of its values' ends."""
    raw = held.encode() if isinstance(held, str) else held
    written = written_at(raw)
    latest = max(cutoffs.content, cutoffs.personal)
    if written is None or written >= latest:
        return False
    record = orjson.loads(raw).get("r")
    content = isinstance(record, dict) and "viewer_id" in record
    return written < (cutoffs.content if content else cutoffs.personal)


def stale_token(info: bytes | str, now: float) -> bool:
    expires = orjson.loads(info).get("_expires")
    return isinstance(expires, int | float) and expires < now
