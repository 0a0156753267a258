"""Group commit: contributions to one room that arrive while a commit for that room is in
flight go to the store together, in the next call (issue 14, "Batched commits").

A vote waits for its commit, as before: it is acknowledged only once the store has
committed it, and the idempotency key makes a retry safe. What changes is how many
store calls a burst costs. The first contribution to an idle room starts a commit at
once (a task, so whatever arrives in the same loop iteration joins it); while that
call is out, the next ones queue and go together in one :meth:`Store.submit_many`
(on Redis one script call) as soon as it returns, at most ``max_batch`` a call. So
the per-room queue a burst builds is committed in round trips of hundreds, not one
by one, and an idle room adds no wait.

One call at a time per room keeps the room's contributions in arrival order. A
failed call fails each of its callers with the exception one ``submit`` would have
raised (``RoomNotFound``, ``BackendUnavailable``); the queue behind it still goes.
A caller that is cancelled before its batch is taken is left out of it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from typing import Any

from server.backends.base import ApplyResult, Store, Submission
from server.interactions.kind import Write

# Items per store call. A Redis script runs alone on its server: 256 votes take it
# about a millisecond, and a burst of 5,000 needs 20 calls.
MAX_BATCH = 256

_Pending = tuple[str, Submission, asyncio.Future[ApplyResult]]


def _for_each_caller(exc: BaseException) -> BaseException:
    """A copy of ``exc`` for one caller (raised in many tasks, one instance would collect
    every task's traceback); the instance itself when its type cannot be remade."""
    try:
        copy = type(exc)(*exc.args)
    except Exception:
        return exc
    copy.__cause__ = exc
    return copy


class GroupCommit:
    """Commits each room's queued contributions together, one store call per room at a
    time; every caller gets its own result once its batch is committed."""

    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queues: dict[str, deque[_Pending]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._arrived: dict[str, int] = {}  # per room, since the last :meth:`take_burst`
        self.calls = 0  # store calls made (batches), for tests and metrics

    def submit(
        self, room_id: str, interaction_id: str, submission: Submission
    ) -> asyncio.Future[ApplyResult]:
        """Queue one contribution; await the answer for its result (or the batch's
        exception) once committed. A plain function that hands back a future: in a
        burst thousands wait at once, and each coroutine frame less is garbage less."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[ApplyResult] = loop.create_future()
        queue = self._queues.get(room_id)
        if queue is None:  # no commit in flight for this room: start one now
            queue = self._queues[room_id] = deque()
            task = loop.create_task(self._drain(room_id, queue), name="hudong-commit")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        queue.append((interaction_id, submission, done))
        self._arrived[room_id] = self._arrived.get(room_id, 0) + 1
        return done

    def backlog(self, room_id: str) -> int:
        """Contributions to the room waiting for a commit (a burst, when in the hundreds)."""
        queue = self._queues.get(room_id)
        return len(queue) if queue is not None else 0

    def take_burst(self, room_id: str) -> int:
        """How many contributions to the room arrived since the last call, or wait for a
        commit now, whichever is more: a burst, when in the hundreds. A node that reads
        a burst no faster than it commits it has a short queue but many arrivals."""
        return max(self._arrived.pop(room_id, 0), self.backlog(room_id))

    def forget(self, room_id: str) -> None:
        """The room is no longer served here: drop its count of arrivals (its queue, if
        any, still commits)."""
        self._arrived.pop(room_id, None)

    def apply(
        self,
        room_id: str,
        interaction_id: str,
        viewer_id: str,
        key: str,
        record: dict[str, Any] | None,
        deltas: dict[str, int],
        caps: dict[str, int] | None = None,
        once: bool = False,
        versioned: bool = True,
    ) -> asyncio.Future[ApplyResult]:
        """:meth:`Store.apply`'s arguments, committed with the room's batch."""
        submission = Submission(viewer_id, key, record, deltas, caps or {}, once, versioned)
        return self.submit(room_id, interaction_id, submission)

    def write(self, room_id: str, write: Write) -> asyncio.Future[ApplyResult]:
        """A kind's write (a viewer's command or a host action's), committed with the
        room's batch; a write without a key gets a fresh one (host actions)."""
        submission = Submission(
            write.holder,
            write.key or f"host-{secrets.token_hex(8)}",
            write.record,
            dict(write.deltas),
            dict(write.caps) if write.caps is not None else {},
            write.once,
            True,
        )
        return self.submit(room_id, write.box, submission)

    async def _drain(self, room_id: str, queue: deque[_Pending]) -> None:
        batch: list[_Pending] = []
        try:
            while queue:
                batch = []
                while queue and len(batch) < self.max_batch:
                    item = queue.popleft()
                    if not item[2].done():  # its caller went away: leave it out
                        batch.append(item)
                if batch:
                    await self._commit(room_id, batch)
                batch = []
        except BaseException as exc:  # cancelled (shutdown): nobody may wait forever
            for _, _, done in [*batch, *queue]:
                if done.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    done.cancel()
                else:
                    done.set_exception(_for_each_caller(exc))
            raise
        finally:
            if self._queues.get(room_id) is queue:
                del self._queues[room_id]

    async def _commit(self, room_id: str, batch: list[_Pending]) -> None:
        self.calls += 1
        try:
            results = await self.store.submit_many(room_id, [(i, s) for i, s, _ in batch])
        except Exception as exc:
            for _, _, done in batch:
                if not done.done():
                    done.set_exception(_for_each_caller(exc))
            return
        for (_, _, done), result in zip(batch, results, strict=True):
            if not done.done():
                done.set_result(result)


__all__ = ["MAX_BATCH", "GroupCommit"]
