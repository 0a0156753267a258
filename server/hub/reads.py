"""Frames read in batches on a busy node (BENCHMARKS.md, "Reads in batches").

What a connection sends waits a little, and the node reads what waited on every
connection in one go: before each tick, or ``hub.read_batch_ms`` after the first of
them came, whichever is sooner.

Why: handling a danmaku (its frame, its command, the text filter, the stream) costs
the node two to three times as much CPU when the loop comes to it from sleep, one at a
time as they arrive, as when it handles fifty in a row (``python -m tests.intake_cost``
with and without ``--spread``): the interpreter's code and data are cold each time. At
500 danmaku/s that was about half of the node's own work.

What stays as it was: a connection's frames are read in the order they came; the
danmaku of a batch go out in the tick that reads them, the tick they would have gone
out in anyway (the tick reads first); what a connection sent before its close frame,
or before its FIN, is read before the close. What changes: an answer (``ack``,
``pong``, an error) comes up to ``read_batch_ms`` later, on a busy node only. A
connection that is reset (no close, no FIN) loses what was not read yet: nothing of it
was answered.

Only a busy node batches: with fewer than ``hub.read_batch_from`` reads a second
(counted over each tick) every read is handled as it comes; there would be nothing to
batch, and a quiet node answers at once. Nor does a node batch from
``hub.read_batch_until`` reads a second: reads that dense (a vote burst) come to the
loop together anyway, each turn of it reading every connection that has something, so
holding them would only delay them (a 5,000-viewer vote burst's p99 went from 340-440
to 440-580 ms when it was held). A round of reading is bounded
(``READ_ROUND_S``): past it, the rest is read in the loop's next turn, so a burst of
5,000 votes or closes does not stall the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from server.config import HubSettings

log = logging.getLogger("hudong.hub")

READ_ROUND_S = 0.01  # one round of reading, at most, before the loop's next turn


class Reader(Protocol):
    """A connection, as the reads see it: it reads what waited when its turn comes."""

    def read_now(self, data: bytes) -> None: ...


class Reads:
    """The reads waiting to be handled, by connection, in the order they came."""

    def __init__(self, window_s: float, from_per_s: float, until_per_s: float) -> None:
        self.window_s = window_s
        self.from_per_s = from_per_s
        self.until_per_s = until_per_s
        self.batching = False  # busy enough to batch, from the reads of the last tick
        self.came_since_tick = 0
        self.rounds = 0  # rounds of reading, all told (tests)
        self._waiting: dict[Reader, list[bytes]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._again: asyncio.Handle | None = None

    @classmethod
    def of(cls, hub: HubSettings) -> Reads:
        return cls(hub.read_batch_ms / 1000, hub.read_batch_from, hub.read_batch_until)

    def __len__(self) -> int:
        """Connections with something waiting."""
        return len(self._waiting)

    def holds(self, reader: Reader) -> bool:
        """Whether something of ``reader``'s waits (what it sends next goes after it)."""
        return reader in self._waiting

    def came(self, reader: Reader, data: bytes) -> bool:
        """Keep ``data`` for a later round (True), or say to read it now (False: the node
        is quiet, and nothing of this reader's waits)."""
        self.came_since_tick += 1
        chunks = self._waiting.get(reader)
        if chunks is not None:
            chunks.append(data)
            return True
        if not self.batching:
            return False
        self._waiting[reader] = [data]
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.window_s, self.read)
        return True

    def take(self, reader: Reader) -> bytes | None:
        """What waits of ``reader``'s, taken out (to be read now, or dropped)."""
        chunks = self._waiting.pop(reader, None)
        return None if chunks is None else b"".join(chunks)

    def tick(self, interval_s: float) -> None:
        """Before each tick: read what waits, and from the reads since the last tick,
        whether to batch until the next."""
        came = self.came_since_tick
        busy = self.from_per_s * interval_s <= came < self.until_per_s * interval_s
        self.batching = self.window_s > 0 and busy
        self.came_since_tick = 0
        self.read()

    def read(self) -> None:
        """Read what waits, the connections in the order they came, for READ_ROUND_S at
        most; what is left, in the loop's next turn."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._again is not None:
            self._again.cancel()
            self._again = None
        if not self._waiting:
            return
        self.rounds += 1
        waiting = self._waiting
        deadline = time.perf_counter() + READ_ROUND_S
        while waiting:
            reader = next(iter(waiting))
            chunks = waiting.pop(reader)
            try:
                reader.read_now(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            except Exception:  # pragma: no cover - one connection's failure stays its own
                log.exception("reading a connection's frames failed")
            if waiting and time.perf_counter() > deadline:
                self._again = asyncio.get_running_loop().call_soon(self.read)
                return

    def close(self) -> None:
        """Read everything that waits now (shutting down), and batch no more."""
        self.batching = False
        while self._waiting:
            self.read()
        if self._again is not None:
            self._again.cancel()
            self._again = None
