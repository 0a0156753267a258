"""Bridge leases in the store (server/bridges/lease.py) on every backend: when two nodes
claim one lapsed lease at once, exactly one wins, each time; a claim from an old reading
loses; the owner renews its own claim; a release leaves no claim behind."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from server.backends import RoomRecord, open_backends
from server.bridges.lease import LEASES_BOX, Lease, Leases, claims, current

BACKENDS = ["memory", "embedded", "redis"]
BID = "webhook:shop"
ROOM = "r1"


@pytest.fixture(params=BACKENDS)
async def stores(request):
    """Two nodes' stores on one backend: two connections to Redis; one store otherwise
    (memory and the embedded store serve one process)."""
    kind = request.param
    if kind == "memory":
        from server.backends.memory import MemoryStore

        store = MemoryStore()
        yield store, store
    elif kind == "embedded":
        from server.backends.embedded import EmbeddedStore

        store = EmbeddedStore(request.getfixturevalue("tmp_path") / "hudong.db")
        try:
            yield store, store
        finally:
            await store.close()
    else:
        url = request.getfixturevalue("shared_redis").url
        prefix = f"t{uuid.uuid4().hex[:8]}:"
        a, b = open_backends(url, prefix=prefix), open_backends(url, prefix=prefix)
        try:
            yield a.store, b.store
        finally:
            for backends in (a, b):
                await backends.broker.close()
                await backends.store.close()


async def with_room(store) -> None:
    await store.create_room(RoomRecord(ROOM, "Room", time.time(), 1, {}))


async def test_two_nodes_racing_for_a_lapsed_lease_one_wins(stores):
    store_a, store_b = stores
    await with_room(store_a)
    a, b = Leases(store_a, "a", 0.0), Leases(store_b, "b", 0.0)  # every claim lapses at once
    lease: Lease | None = None
    winners = []
    for _ in range(40):
        got = await asyncio.gather(a.claim(ROOM, BID, lease), b.claim(ROOM, BID, lease))
        won = [claim for claim in got if claim is not None]
        assert len(won) == 1, got
        lease = won[0]
        winners.append(lease.node)
        held = current(await store_a.records(ROOM, LEASES_BOX))
        assert held[BID].node == lease.node and held[BID].epoch == lease.epoch
    assert lease is not None and lease.epoch == 40
    # the older claims were withdrawn: the box holds the last one, not one per epoch
    assert len(claims(await store_a.records(ROOM, LEASES_BOX))[BID]) <= 2


async def test_a_claim_from_an_old_reading_loses(stores):
    store_a, store_b = stores
    await with_room(store_a)
    a, b = Leases(store_a, "a", 0.0), Leases(store_b, "b", 0.0)
    first = await a.claim(ROOM, BID, None)
    assert first is not None and first.epoch == 1
    second = await a.claim(ROOM, BID, first)
    assert second is not None and second.epoch == 2
    third = await a.claim(ROOM, BID, second)
    assert third is not None and third.epoch == 3
    # b read the lease at epoch 2 and claims epoch 3: a holds it, the write is refused
    assert await b.claim(ROOM, BID, second) is None
    # b read it at epoch 1 or before: those claims were withdrawn, so its write lands,
    # yet it is not the highest claim, and b withdraws it again
    assert await b.claim(ROOM, BID, first) is None
    assert await b.claim(ROOM, BID, None) is None
    held = claims(await store_a.records(ROOM, LEASES_BOX))[BID]
    assert [(c.epoch, c.node) for c in held] == [(3, "a")]


async def test_the_owner_renews_and_a_release_leaves_nothing(stores):
    store_a, _ = stores
    await with_room(store_a)
    a = Leases(store_a, "a", 30.0)
    lease = await a.claim(ROOM, BID, None)
    assert lease is not None and not lease.lapsed(time.time())
    renewed = await a.renew(ROOM, lease)
    assert renewed.epoch == lease.epoch and renewed.until >= lease.until
    assert current(await store_a.records(ROOM, LEASES_BOX))[BID].until == pytest.approx(
        renewed.until, abs=0.001
    )
    await a.release(ROOM, BID)
    assert await store_a.records(ROOM, LEASES_BOX) == {}


def test_malformed_claims_are_skipped():
    records = {
        f"{BID}#2": {"node": "a", "until": 5000},
        f"{BID}#x": {"node": "b", "until": 1},
        "#3": {"node": "b", "until": 1},
        f"{BID}#4": {"node": 7, "until": 1},
        f"{BID}#5": {"node": "b"},
    }
    assert current(records) == {BID: Lease(BID, 2, "a", 5.0)}
