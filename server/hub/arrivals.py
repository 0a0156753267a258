"""Arrivals and departures in bursts: the per-viewer work of joins and leaves, spread
over the loop's turns so that 5,000 viewers coming or going at once do not stall it
(BENCHMARKS.md, "Connect bursts").

Three parts, each in bounded portions:

* :class:`JoinGate` lets at most ``per_slice`` joins begin their work in each slice of
  ``slice_s``; the others wait for a later slice, in arrival order. What a join does
  and answers is unchanged (PROTOCOL.md, "join"); a burst only queues a little.
* :class:`PresenceNotes` keeps the presence box (who is here, for draws from presence)
  current without a store write per join or leave at the moment it happens: notes are
  queued, one per (room, user), the latest winning (a leave after a join is the
  leave: the box keeps one record per user, each write replacing the last), and
  written ``per_round`` at a time, one round per ``pause_s`` at most while a backlog
  lasts. A lone note is written at once; after a burst of 5,000, the last within about
  a second, so a draw from presence run in that second may miss the latest arrivals.
* :class:`LeaveGate` does the same for the closing handshakes that viewers start: a
  connection whose data begins with a close frame is answered at once while fewer
  than ``per_slice`` were this slice; past that it stops reading and waits for a later
  slice, in arrival order (server/hub/connection.py). Answering a close (parsing it,
  the close frame back, closing the socket, forgetting the viewer) is tens of
  microseconds, and 5,000 viewers closing at one moment arrive in one turn of the
  loop: answered all at once, that turn stalled the loop for 170-340 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from itertools import islice

from server.auth import Identity

log = logging.getLogger("hudong.hub")

# Joins: 100 per 20 ms is 5,000/s, more than a core completes; a slice of them is a
# few milliseconds of the loop's time.
JOINS_PER_SLICE = 100
JOIN_SLICE_S = 0.02
# Presence: a round of writes is awaited together (one group commit, or pipelined
# round trips); 250 every 50 ms writes 5,000 notes in a second.
PRESENCE_PER_ROUND = 250
PRESENCE_PAUSE_S = 0.05

# Leaves: 100 per 10 ms is 10,000/s; a slice of them is 5-8 ms of the loop's time.
LEAVES_PER_SLICE = 100
LEAVE_SLICE_S = 0.01

Note = Callable[[str, Identity, bool], Awaitable[None]]


class JoinGate:
    """Meters how many joins begin per slice of time, first come first served."""

    def __init__(self, per_slice: int = JOINS_PER_SLICE, slice_s: float = JOIN_SLICE_S) -> None:
        self.per_slice = per_slice
        self.slice_s = slice_s
        self._slice_ends = float("-inf")
        self._used = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def turn(self) -> None:
        """Return when this join may go on: at once, unless this slice is used up."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now >= self._slice_ends and not self._waiting:
            self._slice_ends, self._used = now + self.slice_s, 0
        if self._used < self.per_slice and not self._waiting:
            self._used += 1
            return
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append(future)
        if self._timer is None:
            self._timer = loop.call_at(self._slice_ends, self._release)
        try:
            await future
        except asyncio.CancelledError:
            # A connection that went away while waiting gives its place to the next.
            if future in self._waiting:
                self._waiting.remove(future)
            raise

    def _release(self) -> None:
        """A new slice: let the next ``per_slice`` waiters go on."""
        loop = asyncio.get_running_loop()
        self._timer = None
        self._slice_ends, self._used = loop.time() + self.slice_s, 0
        while self._waiting and self._used < self.per_slice:
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(None)
                self._used += 1
        if self._waiting:
            self._timer = loop.call_at(self._slice_ends, self._release)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.cancel()


class LeaveGate:
    """Meters how many closing handshakes are answered per slice of time; the others
    are called back in later slices, first come first served."""

    def __init__(self, per_slice: int = LEAVES_PER_SLICE, slice_s: float = LEAVE_SLICE_S) -> None:
        self.per_slice = per_slice
        self.slice_s = slice_s
        self._slice_ends = float("-inf")
        self._used = 0
        self._waiting: deque[Callable[[], None]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self.deferred = 0  # answers that waited for a later slice, all told (tests)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def admit(self) -> bool:
        """Whether one more may be answered now (then it counts against this slice);
        False: the caller hands its answer to :meth:`defer`."""
        now = asyncio.get_running_loop().time()
        if now >= self._slice_ends and not self._waiting:
            self._slice_ends, self._used = now + self.slice_s, 0
        if self._used < self.per_slice and not self._waiting:
            self._used += 1
            return True
        return False

    def defer(self, answer: Callable[[], None]) -> None:
        """Call ``answer`` in a later slice, after those deferred before it."""
        self._waiting.append(answer)
        self.deferred += 1
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_at(self._slice_ends, self._release)

    def _release(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = None
        self._slice_ends, self._used = loop.time() + self.slice_s, 0
        while self._waiting and self._used < self.per_slice:
            self._used += 1
            answer = self._waiting.popleft()
            try:
                answer()
            except Exception:  # pragma: no cover - one connection's failure stays its own
                log.exception("answering a close failed")
        if self._waiting:
            self._timer = loop.call_at(self._slice_ends, self._release)

    def close(self) -> None:
        """Answer every waiting one now (shutting down: nothing is left hanging)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiting:
            with contextlib.suppress(Exception):
                self._waiting.popleft()()


class PresenceNotes:
    """Writes who joined and who left to the presence box in bounded rounds, the
    latest note per (room, user) only."""

    def __init__(
        self,
        note: Note,
        per_round: int = PRESENCE_PER_ROUND,
        pause_s: float = PRESENCE_PAUSE_S,
    ) -> None:
        self._note = note
        self.per_round = per_round
        self.pause_s = pause_s
        # (room id, user id) -> (identity, present); dicts keep insertion order.
        self._pending: dict[tuple[str, str], tuple[Identity, bool]] = {}
        self._writing = 0  # notes of the round being written
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()  # nothing queued, nothing being written
        self._settled.set()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        """Notes not written yet: queued, or in the round being written."""
        return len(self._pending) + self._writing

    def add(self, room_id: str, identity: Identity, present: bool) -> None:
        key = (room_id, identity.user_id)
        self._pending.pop(key, None)  # the latest goes to the back of the queue
        self._pending[key] = (identity, present)
        self._settled.clear()
        self._wake.set()

    async def settled(self) -> None:
        """Return once every note so far is written (or failed: presence is best effort)."""
        await self._settled.wait()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="hudong-presence-notes"
            )

    async def stop(self, timeout: float = 2.0) -> None:
        """Stop, writing what is queued first (best effort, within ``timeout``)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._pending:
                    await self._round()
        self._settled.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                try:
                    await self._round()
                except Exception:  # pragma: no cover - presence is best effort
                    log.exception("presence notes failed")
                if self._pending:
                    await asyncio.sleep(self.pause_s)
            self._settled.set()

    async def _round(self) -> None:
        taken = []
        for key in list(islice(self._pending, self.per_round)):
            identity, present = self._pending.pop(key)
            taken.append(self._note(key[0], identity, present))
        self._writing = len(taken)
        try:
            await asyncio.gather(*taken)
        finally:
            self._writing = 0
