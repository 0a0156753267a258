"""The contract suite, continued: :meth:`Store.submit_many` (batched commits, issue 14) on
every backend of tests/test_contract.py (its ``pair`` fixture: memory, Redis, Redis
Cluster, and any backend added there). A batch gives exactly what the same items give
one after another through ``submit``."""

import asyncio
import re

import pytest

from server.backends import RoomNotFound
from server.backends.base import Submission
from tests.test_contract import pair, room, room_keys  # noqa: F401  (the fixture)


def sub(viewer, key, record, deltas, caps=None, once=False, versioned=True):
    return Submission(viewer, key, record, deltas, caps or {}, once, versioned)


CAPS = {"sauce:bbq": 2}
# One batch with everything in it: two boxes, duplicates inside the batch, replace,
# once, a cap hit mid-batch and freed again, withdraw, bookkeeping that is no state.
MIXED = [
    ("poll", sub("v1", "k1", {"c": "a"}, {"a": 1})),
    ("poll", sub("v2", "k1", {"c": "b"}, {"b": 1})),
    ("poll", sub("v1", "k1", {"c": "a"}, {"a": 1})),  # a retry inside the batch
    ("poll", sub("v1", "k2", {"c": "b"}, {"b": 1})),  # v1 moves to b: a goes
    ("qa", sub("v1", "u1", {"up": True}, {"q:1": 1}, once=True)),
    ("qa", sub("v1", "u2", {"up": True}, {"q:1": 1}, once=True)),  # already done
    ("cd", sub("v1", "s", {}, {"sauce:bbq": 1}, CAPS)),
    ("cd", sub("v2", "s", {}, {"sauce:bbq": 1}, CAPS)),
    ("cd", sub("v3", "s", {}, {"sauce:bbq": 1}, CAPS)),  # capped
    ("cd", sub("v1", "s2", {}, {"sauce:mayo": 1}, CAPS)),  # frees one bbq
    ("cd", sub("v3", "s", {}, {"sauce:bbq": 1}, CAPS)),  # now it fits
    ("poll", sub("v2", "k2", None, {})),  # withdrawn
    ("presence", sub("v9", "p1", {"at": 1}, {"n": 1}, versioned=False)),
    ("poll", sub("v2", "k2", None, {})),  # a retry of the withdrawal
]
MIXED_SEEN = [
    ("applied", {"a": 1}, None),
    ("applied", {"a": 1, "b": 1}, None),
    ("duplicate", {"a": 1, "b": 1}, None),
    ("applied", {"b": 2}, None),
    ("applied", {"q:1": 1}, None),
    ("already_done", {"q:1": 1}, None),
    ("applied", {"sauce:bbq": 1}, None),
    ("applied", {"sauce:bbq": 2}, None),
    ("capped", {"sauce:bbq": 2}, "sauce:bbq"),
    ("applied", {"sauce:bbq": 1, "sauce:mayo": 1}, None),
    ("applied", {"sauce:bbq": 2, "sauce:mayo": 1}, None),
    ("applied", {"b": 1}, None),
    ("applied", {"n": 1}, None),
    ("duplicate", {"b": 1}, None),
]


async def state(store, room_id):
    boxes = ["poll", "qa", "cd", "presence"]
    data = await store.read(room_id, boxes, boxes)
    return data.counters, data.records, await store.room_version(room_id)


async def test_a_batch_gives_what_the_same_submits_give_one_by_one(pair):  # noqa: F811
    store, _, _ = pair
    await store.create_room(room("batched"))
    await store.create_room(room("single"))
    batched = await store.submit_many("batched", MIXED)
    single = [await store.submit("single", iid, s) for iid, s in MIXED]
    assert batched == single
    assert [(r.status, r.counters, r.capped_field) for r in batched] == MIXED_SEEN
    # versions: each versioned application grows it by one, refusals and the
    # unversioned presence keep it, a duplicate names its first application's
    assert [r.version for r in batched] == [2, 3, 2, 4, 5, 5, 6, 7, 7, 8, 9, 10, 10, 10]
    assert await state(store, "batched") == await state(store, "single")
    counters, records, version = await state(store, "batched")
    assert counters == {
        "poll": {"b": 1},
        "qa": {"q:1": 1},
        "cd": {"sauce:bbq": 2, "sauce:mayo": 1},
        "presence": {"n": 1},
    }
    assert records["poll"] == {"v1": {"c": "b"}} and version == 10


async def test_a_retried_batch_is_all_duplicates_and_changes_nothing(pair):  # noqa: F811
    store, _, _ = pair
    await store.create_room(room())
    first = await store.submit_many("r1", MIXED)
    before = await state(store, "r1")
    again = await store.submit_many("r1", MIXED)
    # every key that applied once is a duplicate with its first version (v3's "s" was
    # capped, then applied with the same key); v1's second upvote is still refused;
    # the presence note keeps no key (base.py): applied again, to the same effect
    seen = [("duplicate", v) for v in (2, 3, 2, 4, 5)] + [("already_done", 10)]
    seen += [("duplicate", v) for v in (6, 7, 9, 8, 9, 10)]
    seen += [("applied", 10), ("duplicate", 10)]
    assert [(r.status, r.version) for r in again] == seen
    assert first[-1].version == 10
    assert await state(store, "r1") == before


@pytest.mark.parametrize("how", ["never created", "deleted"])
async def test_a_batch_for_a_missing_room_raises_and_changes_nothing(pair, how):  # noqa: F811
    store, _, _ = pair
    await store.create_room(room("other"))
    if how == "deleted":
        await store.create_room(room("ghost"))
        await store.submit_many("ghost", MIXED[:3])
        await store.delete_room("ghost")
    with pytest.raises(RoomNotFound):
        await store.submit_many("ghost", MIXED)
    assert await store.submit_many("ghost", []) == []  # nothing to do, nothing read
    assert await room_keys(store, "ghost") in (None, set())
    with pytest.raises(RoomNotFound):
        await store.room_version("ghost")
    assert await store.room_version("other") == 1
    assert await store.counters("other", "poll") == {}


async def test_concurrent_batches_and_single_submits_keep_exact_counts(pair):  # noqa: F811
    store, _, _ = pair
    await store.create_room(room())
    votes = [("p", sub(f"v{i}", "k", {"c": "abc"[i % 3]}, {"abc"[i % 3]: 1})) for i in range(300)]
    retries = votes[::7]  # the same votes again, as a client retries: whichever goes first
    calls = [store.submit_many("r1", votes[i : i + 40]) for i in range(0, 300, 40)]
    calls += [store.submit_many("r1", retries[:20]), store.submit_many("r1", retries[20:])]
    calls += [store.submit("r1", iid, s) for iid, s in votes[::11]]  # the same keys again
    results = await asyncio.gather(*calls)
    flat = [r for batch in results for r in (batch if isinstance(batch, list) else [batch])]
    assert sum(r.status == "applied" for r in flat) == 300
    assert await store.counters("r1", "p") == {"a": 100, "b": 100, "c": 100}
    assert await store.room_version("r1") == 301


def note(viewer, present, key="", versioned=False):
    """A presence note as server/rooms/service.py writes it: not keyed, uniform."""
    record = {"at": 1} if present else None
    return Submission(viewer, key, record, {"n": 1}, {}, False, versioned, True)


# Joins and leaves without a key, in a box that counts its holders: a repeated join
# replaces the record and counts nothing, a leave of one absent counts nothing.
NOTES = [
    ("presence", note("gx1", True)),
    ("presence", note("gx1", True)),  # joined again: replaced, still one
    ("presence", note("gx2", True)),
    ("presence", note("gx1", False)),
    ("presence", note("gx1", False)),  # left again: nothing to take back
    ("presence", note("gx3", False)),  # never came
    ("presence", note("gx3", True, key="k", versioned=True)),  # keyed and uniform
    ("presence", note("gx3", True, key="k", versioned=True)),  # its retry: a duplicate
    ("presence", note("gx4", True, versioned=True)),  # unkeyed but versioned: grows it
    ("presence", note("gx4", True, versioned=True)),  # and again (nothing remembered)
    ("poll", sub("gx5", "", {"c": "a"}, {"a": 1})),  # unkeyed, not uniform
    ("poll", sub("gx5", "", {"c": "b"}, {"b": 1})),  # replaces: a goes, b comes
]
NOTES_SEEN = [
    ("applied", 1, {"n": 1}),
    ("applied", 1, {"n": 1}),
    ("applied", 1, {"n": 2}),
    ("applied", 1, {"n": 1}),
    ("applied", 1, {"n": 1}),
    ("applied", 1, {"n": 1}),
    ("applied", 2, {"n": 2}),
    ("duplicate", 2, {"n": 2}),
    ("applied", 3, {"n": 3}),
    ("applied", 4, {"n": 3}),
    ("applied", 5, {"a": 1}),
    ("applied", 6, {"b": 1}),
]


async def test_unkeyed_notes_are_neither_looked_up_nor_kept(pair):  # noqa: F811
    """An empty key is no key (base.py): a repeat applies again, and no backend keeps
    a ``done`` entry for it; a uniform box counts its holders by their writes."""
    from tests.test_contract_viewers import everything

    store, _, _ = pair
    await store.create_room(room("batched"))
    await store.create_room(room("single"))
    batched = await store.submit_many("batched", NOTES)
    single = [await store.submit("single", iid, s) for iid, s in NOTES]
    assert batched == single
    assert [(r.status, r.version, r.counters) for r in batched] == NOTES_SEEN
    for room_id in ("batched", "single"):
        data = await store.read(room_id, ["presence", "poll"], ["presence", "poll"])
        assert data.counters == {"presence": {"n": 3}, "poll": {"b": 1}}
        assert set(data.records["presence"]) == {"gx2", "gx3", "gx4"}
        assert data.records["poll"] == {"gx5": {"c": "b"}}
    blob = await everything(store)
    assert b"gx3|k" in blob  # the keyed one is remembered (the test can see a key) ...
    for viewer in ("gx1", "gx2", "gx4", "gx5"):
        assert f"{viewer}|".encode() not in blob  # ... the unkeyed ones nowhere
    # many joins and leaves add no key: the store holds what it held, one record each
    for i in range(300):
        await store.submit_many("batched", [("presence", note(f"gy{i}", True))])
        await store.submit("batched", "presence", note(f"gy{i}", i % 3 == 0))
    assert (await store.counters("batched", "presence")) == {"n": 103}
    assert not re.search(rb"gy\d+\|", await everything(store))


def test_a_uniform_submission_has_no_caps_and_is_not_once():
    with pytest.raises(ValueError):
        Submission("v1", "", {}, {"n": 1}, {"n": 5}, False, False, True)
    with pytest.raises(ValueError):
        Submission("v1", "", {}, {"n": 1}, {}, True, False, True)
