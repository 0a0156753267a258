"""Batched commits (server/rooms/commits.py, issue 14): contributions that arrive while a
commit of their room is in flight go to the store together, and each caller is answered
after its own batch committed, with its own result or the batch's exception."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.auth import Authority
from server.backends import BackendUnavailable, RoomNotFound, open_backends
from server.backends.base import ApplyResult, RoomRecord, Store, Submission
from server.backends.memory import MemoryStore
from server.interactions.kind import Audience
from server.interactions.registry import Registry
from server.rooms.commits import GroupCommit
from server.rooms.service import RoomService
from tests.conftest import SECRET
from tests.test_room_service import ROOM, Outbox, poll, viewer


class GatedStore(MemoryStore):
    """A memory store whose batches can be held in flight; it records each batch."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.fail: list[Exception] = []  # raised by the next batches, in turn

    async def submit_many(
        self, room_id: str, items: list[tuple[str, Submission]]
    ) -> list[ApplyResult]:
        self.batches.append([s.viewer_id for _, s in items])
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise self.fail.pop(0)
        return await super().submit_many(room_id, items)


def vote(viewer_id: str, choice: str = "a", key: str = "k") -> Submission:
    return Submission(viewer_id, key, {"c": choice}, {choice: 1}, {}, False, True)


@pytest.fixture
async def gated() -> GatedStore:
    store = GatedStore()
    await store.create_room(RoomRecord(ROOM, "Room", 0.0, 1, {}))
    return store


async def test_an_idle_room_commits_at_once_and_a_busy_one_in_the_next_call(gated):
    commits = GroupCommit(gated)
    gated.gate = asyncio.Event()
    first = asyncio.ensure_future(commits.submit(ROOM, "p", vote("v0")))
    await gated.entered.wait()  # the first vote went alone, without waiting for others
    assert gated.batches == [["v0"]]
    rest = [asyncio.ensure_future(commits.submit(ROOM, "p", vote(f"v{i}"))) for i in (1, 2, 3)]
    rest.append(asyncio.ensure_future(commits.submit(ROOM, "p", vote("v1"))))  # a retry
    await asyncio.sleep(0)
    assert not first.done()  # acknowledged only after its commit
    gated.gate.set()
    results = await asyncio.gather(first, *rest)
    assert gated.batches == [["v0"], ["v1", "v2", "v3", "v1"]]
    assert [r.status for r in results] == ["applied"] * 4 + ["duplicate"]
    assert [r.version for r in results] == [2, 3, 4, 5, 3]
    assert results[3].counters == {"a": 4} and commits.calls == 2


async def test_a_call_takes_at_most_max_batch_items_in_arrival_order(gated):
    commits = GroupCommit(gated, max_batch=4)
    calls = [commits.submit(ROOM, "p", vote(f"v{i}")) for i in range(10)]
    results = await asyncio.gather(*calls)
    assert [len(b) for b in gated.batches] == [4, 4, 2]
    assert [v for b in gated.batches for v in b] == [f"v{i}" for i in range(10)]
    assert [r.version for r in results] == list(range(2, 12))


@pytest.mark.parametrize("error", [BackendUnavailable("redis: down"), RoomNotFound(ROOM)])
async def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_goes(gated, error):
    commits = GroupCommit(gated)
    gated.gate = asyncio.Event()
    gated.fail = [error]
    failing = [asyncio.ensure_future(commits.submit(ROOM, "p", vote(f"v{i}"))) for i in (1, 2)]
    await gated.entered.wait()
    after = asyncio.ensure_future(commits.submit(ROOM, "p", vote("v3")))
    await asyncio.sleep(0)
    gated.gate.set()
    for call in failing:
        with pytest.raises(type(error)) as raised:
            await call
        assert raised.value.args == error.args  # what one submit would have raised
    assert (await after).status == "applied"
    assert gated.batches == [["v1", "v2"], ["v3"]]
    assert await gated.counters(ROOM, "p") == {"a": 1}


async def test_a_caller_cancelled_before_its_batch_is_left_out(gated):
    commits = GroupCommit(gated)
    gated.gate = asyncio.Event()
    first = asyncio.ensure_future(commits.submit(ROOM, "p", vote("v1")))
    await gated.entered.wait()
    gone = asyncio.ensure_future(commits.submit(ROOM, "p", vote("v2")))
    kept = asyncio.ensure_future(commits.submit(ROOM, "p", vote("v3")))
    await asyncio.sleep(0)
    gone.cancel()
    gated.gate.set()
    assert (await first).status == (await kept).status == "applied"
    assert gated.batches == [["v1"], ["v3"]]


class CountingStore:
    """Counts a store's write calls (one ``submit_many`` is one call; the ``submit`` calls
    it makes inside are not counted again); everything else passes through."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls = 0
        self._inside = False
        original_many, original_one = store.submit_many, store.submit

        async def submit_many(room_id: str, items: list[tuple[str, Submission]]) -> Any:
            self.calls += 1
            self._inside = True
            try:
                return await original_many(room_id, items)
            finally:
                self._inside = False

        async def submit(room_id: str, iid: str, submission: Submission) -> Any:
            self.calls += 0 if self._inside else 1
            return await original_one(room_id, iid, submission)

        store.submit_many = submit_many  # type: ignore[method-assign]
        store.submit = submit  # type: ignore[method-assign]


@pytest.fixture(params=["memory", "redis"])
async def any_store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    url = request.getfixturevalue("shared_redis").url
    backends = open_backends(url, prefix=f"t{uuid.uuid4().hex[:8]}:")
    try:
        yield backends.store
    finally:
        await backends.broker.close()
        await backends.store.close()


async def test_concurrent_votes_take_fewer_store_calls_and_each_is_acknowledged(any_store):
    await any_store.create_room(RoomRecord(ROOM, "Room", 0.0, 1, {}))
    counting = CountingStore(any_store)
    rooms = RoomService(
        any_store, Registry(), Authority("admin-token-xxxxxxxx", SECRET), node_id="n1", shared=False
    )
    rooms.bind(Outbox())
    await rooms.enter(await rooms.room(ROOM), viewer("host"))
    await poll(rooms)
    counting.calls = 0
    n = 600

    def votes() -> list[Any]:
        return [
            rooms.participate(
                ROOM,
                viewer(f"u{i}"),
                "vote",
                f"k{i}",
                {"interaction": "p", "option": "ab"[i % 3 % 2]},
            )
            for i in range(n)
        ]

    acks = await asyncio.gather(*votes())
    assert all(ack["duplicate"] is False for ack in acks)
    assert len({ack["version"] for ack in acks}) == n  # each its own application
    assert counting.calls < n / 10  # batched: 600 votes in a handful of calls
    results = (await rooms.interaction(ROOM, "p", Audience.PUBLIC))["results"]
    assert results["voters"] == n
    assert [o["count"] for o in results["options"]] == [400, 200]
    retried = await asyncio.gather(*votes())  # every client retries: nothing counts twice
    assert [ack["version"] for ack in retried] == [ack["version"] for ack in acks]
    assert all(ack["duplicate"] for ack in retried)
    results = (await rooms.interaction(ROOM, "p", Audience.PUBLIC))["results"]
    assert [o["count"] for o in results["options"]] == [400, 200]


async def test_a_burst_is_what_arrived_since_the_last_look_or_still_waits():
    store = MemoryStore()
    commits = GroupCommit(store)
    assert commits.take_burst("r") == 0
    await store.create_room(RoomRecord("r", "R", 0.0))
    futures = [commits.apply("r", "p", f"v{i}", f"k{i}", None, {"a": 1}) for i in range(300)]
    assert commits.take_burst("r") == 300  # arrived (and queued)
    assert commits.take_burst("r") == 300  # no new ones, but still queued
    await asyncio.gather(*futures)
    assert commits.take_burst("r") == 0  # committed, nothing new
    await commits.apply("r", "p", "w", "kw", None, {"a": 1})
    assert commits.take_burst("r") == 1
