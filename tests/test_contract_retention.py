"""The contract suite, continued: retention (server/backends/retention.py) on every
backend of tests/test_contract.py. :meth:`Store.prune` is given the moment "now" and
the cutoffs, so a test moves time forward instead of sleeping."""

import time

import pytest

from server.backends import RoomNotFound
from server.backends.retention import KEPT_BOXES, Cutoffs, Retention
from tests.test_contract import pair, room  # noqa: F401  (the fixture)
from tests.test_contract_viewers import everything

NAME = "Carol 李四"


async def seed(store, now):
    await store.create_room(room())
    await store.apply("r1", "poll", "v1", "k1", {"choice": "a", "name": NAME}, {"a": 1})
    question = {"viewer_id": "v1", "name": NAME, "text": "a question"}
    await store.apply("r1", "qa/questions", "q1", "v1|ask", question, {"open": 1})
    await store.remember_token("r1", "a" * 64, {"role": "viewer", "user_id": "v1"}, 1)
    await store.remember_token("r1", "b" * 64, {"role": "viewer", "user_id": "v2"}, 3600)
    old, fresh = int((now - 100) * 1000), int(now * 1000)
    events = [
        {"type": "danmaku", "id": "old", "ts": old},
        {"type": "danmaku", "id": "new", "ts": fresh},
    ]
    await store.append_replay("r1", events, keep=10)
    await store.add_participants("r1", ["v1", "v2"])
    await store.add_viewers("r1", ["v1", "v2", "v3"])


async def test_prune_drops_what_is_past_each_retention(pair):  # noqa: F811
    store, _, _ = pair
    now = time.time()
    await seed(store, now)
    before = await store.room_version("r1")
    # an hour on: danmaku older than 50 s go, the 1-second token record goes; posts and
    # personal records are younger than a day
    later = now + 3600
    danmaku_only = Cutoffs.at(
        later, Retention(danmaku_s=3600 + 50, content_s=86400, personal_s=86400)
    )
    dropped, version = await store.prune("r1", danmaku_only, later)
    assert dropped == 2 and version == before  # no held record went: same version
    assert [e["id"] for e in await store.replay("r1", 10)] == ["new"]
    assert await store.token_info("r1", "a" * 64) is None
    assert await store.token_info("r1", "b" * 64) is not None
    assert await store.records("r1", "poll") == {"v1": {"choice": "a", "name": NAME}}

    # two days on, personal data kept a day: the vote's record goes, the count stays;
    # the question (content, kept 30 days) stays
    later = now + 2 * 86400
    personal = Cutoffs.at(later, Retention(danmaku_s=0, content_s=30 * 86400, personal_s=86400))
    dropped, version = await store.prune("r1", personal, later)
    assert dropped >= 1 and version == before + 1 == await store.room_version("r1")
    assert await store.records("r1", "poll") == {}
    assert await store.counters("r1", "poll") == {"a": 1}
    assert list(await store.records("r1", "qa/questions")) == ["q1"]
    # who took part is forgotten, how many is not (Redis keeps no ids: None)
    assert await store.participants("r1") == 2
    assert await store.unique_viewers("r1") == 3
    if getattr(store, "conn", None) is None:  # ids are kept only on memory and embedded
        assert not store._rooms["r1"].viewers
    assert (await store.viewer_data("r1", "v2")).participant in (False, None)
    conn = getattr(store, "conn", None)
    if conn is None:  # the keys of a box idle past the personal retention are gone
        assert (await store.viewer_data("r1", "v1")).keys == 0
    else:  # on Redis they expire in the store, within the personal retention
        ttl = await conn.client.ttl(conn.key("r1", "i:poll:done"))
        assert 0 < ttl <= 86400

    # forty days on, the question goes too; its count stays; nothing names Carol
    later = now + 40 * 86400
    dropped, _ = await store.prune("r1", Cutoffs.at(later, Retention()), later)
    assert dropped >= 1
    assert await store.records("r1", "qa/questions") == {}
    assert await store.counters("r1", "qa/questions") == {"open": 1}
    assert NAME.encode() not in await everything(store)
    # a pass with nothing left to drop changes nothing
    assert (await store.prune("r1", Cutoffs.at(later, Retention()), later))[0] == 0
    with pytest.raises(RoomNotFound):
        await store.prune("nope", Cutoffs.at(later, Retention()), later)


async def test_zero_keeps_everything(pair):  # noqa: F811
    store, _, _ = pair
    now = time.time()
    await seed(store, now)
    later = now + 400 * 86400
    keep = Cutoffs.at(later, Retention(danmaku_s=0, content_s=0, personal_s=0))
    dropped, _ = await store.prune("r1", keep, later)
    assert dropped == 2  # only the two expired token records
    assert len(await store.replay("r1", 10)) == 2
    assert await store.records("r1", "poll") == {"v1": {"choice": "a", "name": NAME}}


def test_the_kept_boxes_are_the_ones_their_modules_write():
    from server.bridges.lease import BRIDGES_BOX, CURSORS_BOX
    from server.rooms.alerts import WATCH_BOX
    from server.rooms.screening import WORDS_BOX
    from server.rooms.timeline import TIMELINE_BOX
    from server.rooms.trust import REVOKED_BOX

    kept = {BRIDGES_BOX, CURSORS_BOX, WORDS_BOX, WATCH_BOX, REVOKED_BOX, TIMELINE_BOX}
    assert KEPT_BOXES == kept


async def test_the_rooms_set_up_outlives_every_retention(pair):  # noqa: F811
    """A bridge, its cursor, the word list, a watch list, a revocation and the timeline's
    counts are the room's, not about a viewer: a year on, with every retention at a day,
    they are all there (the report of an old event keeps its timeline)."""
    store, _, _ = pair
    now = time.time()
    await seed(store, now)
    set_up = {
        "~bridges": ("webhook:shop", {"platform": "webhook", "channel": "shop", "by": "host"}),
        "~bridge-cursors": ("webhook:shop", {"cursor": "41", "seen": ["m40"]}),
        "~words": ("words", {"words": [{"word": "spam", "action": "reject"}]}),
        "~watchlists": ("w1", {"words": ["refund"], "threshold": 5}),
        "~revoked": ("role:viewer", {"role": "viewer", "before": now, "until": now + 4e7}),
        "~timeline": ("~29000000~n1", {"m": 29000000, "online": 12, "danmaku": 40}),
    }
    assert set(set_up) == KEPT_BOXES
    for box, (holder, record) in set_up.items():
        await store.apply("r1", box, holder, f"k-{box}", record, {}, versioned=False)
    later = now + 365 * 86400
    day = Cutoffs.at(later, Retention(danmaku_s=86400, content_s=86400, personal_s=86400))
    dropped, _ = await store.prune("r1", day, later)
    assert dropped >= 2  # the vote's and the question's records went
    assert await store.records("r1", "poll") == {}
    for box, (holder, record) in set_up.items():
        assert await store.records("r1", box) == {holder: record}, box
