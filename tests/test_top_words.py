"""The cockpit's top words (issue 16): GET /api/v1/rooms/{id}/top-words counts the words
of the danmaku viewers sent over real sockets, cut by jieba as the word cloud cuts them
(番茄酱 is one word, not three characters), over every node of a cluster."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from server import text_words
from server.backends.base import RoomRecord
from server.backends.memory import MemoryStore
from server.rooms import top_words as top_words_module
from server.rooms.top_words import MAX_PENDING, TopWords
from tests.conftest import UNIT, running_server

TEXTS = ("番茄酱太好吃了", "我爱番茄酱!!", "番茄酱 666", "哈哈 666 a", "Hello hello")


async def top_words(live: Any, room: str, want: dict[str, int], **query: Any) -> dict[str, Any]:
    """The room's top words once they count ``want`` (flushed every 2 s, kept 2 s)."""
    answer: dict[str, Any] = {}
    async with live.http(await live.mint(room, "host")) as http:
        for _ in range(int(150 * UNIT)):
            reply = await http.get(f"/api/v1/rooms/{room}/top-words", params=query)
            assert reply.status_code == 200, reply.text
            answer = reply.json()
            counts = {w["word"]: w["count"] for w in answer["words"]}
            if all(counts.get(word) == n for word, n in want.items()):
                return answer
            await asyncio.sleep(0.1)
    raise AssertionError(f"the top words never counted {want}: {answer}")


async def send(live: Any, room: str, viewer: str, texts: tuple[str, ...]) -> None:
    conn = await live.connect()
    await conn.join(room, token=await live.mint(room, "viewer", user_id=viewer))
    for text in texts:
        assert (await conn.command("danmaku", text=text))["type"] == "ack"


async def test_chinese_danmaku_count_words_not_characters(live):
    await live.create_room("tw")
    await send(live, "tw", "fan", TEXTS)
    answer = await top_words(live, "tw", {"番茄酱": 3, "666": 2, "hello": 1})
    words = [(w["word"], w["count"]) for w in answer["words"]]
    assert answer["room"] == "tw" and answer["danmaku"] == len(TEXTS)
    # Most first, ties by the word; each danmaku's words once (Hello hello: one).
    assert words[:2] == [("番茄酱", 3), ("666", 2)], words
    found = {word for word, _n in words}
    assert {"好吃", "哈哈"} <= found, words
    # No characters of 番茄酱, no stopword (了, 我), no word of one character (a, 爱).
    assert not found & {"番", "茄", "酱", "了", "我", "a", "爱", "!"}, words
    assert all(len(word) >= 2 for word in found), words
    # The word cloud cuts them the same way.
    assert "番茄酱" in text_words.terms("我爱番茄酱!!")
    few = await top_words(live, "tw", {"番茄酱": 3}, n=1)
    assert few["words"] == [{"word": "番茄酱", "count": 3}]


async def test_bad_input_is_refused_and_viewers_may_not_read_them(live):
    await live.create_room("tw")
    host = await live.mint("tw", "host")
    async with live.http(host) as http:
        for n in ("0", "101", "x", "-1", "2.5"):
            reply = await http.get("/api/v1/rooms/tw/top-words", params={"n": n})
            assert reply.status_code == 400, (n, reply.text)
            assert reply.json()["error"]["code"] == "invalid_field", reply.text
        assert (await http.get("/api/v1/rooms/nope/top-words")).status_code in (401, 403, 404)
        empty = await http.get("/api/v1/rooms/tw/top-words")
        assert empty.json() == {"room": "tw", "danmaku": 0, "words": []}
    async with live.http(await live.mint("tw", "viewer", user_id="v")) as http:
        assert (await http.get("/api/v1/rooms/tw/top-words")).status_code == 403


async def test_every_node_of_a_cluster_answers_the_same(shared_redis):
    prefix = f"tw{uuid.uuid4().hex[:8]}:"
    server = {"redis_url": shared_redis.url, "redis_prefix": prefix}
    async with (
        running_server(server={**server, "node_id": "a"}) as a,
        running_server(server={**server, "node_id": "b"}) as b,
    ):
        await a.create_room("tw")
        await send(a, "tw", "on-a", ("番茄酱好吃", "上车"))
        await send(b, "tw", "on-b", ("番茄酱来了", "上车 上车"))
        want = {"番茄酱": 2, "上车": 2}
        on_a, on_b = await top_words(a, "tw", want), await top_words(b, "tw", want)
        assert on_a == on_b and on_a["danmaku"] == 4, (on_a, on_b)


async def test_a_flood_is_sampled_within_a_bound():
    """Past MAX_PENDING texts in one interval the list stops growing (memory bound)."""

    words = TopWords(MemoryStore(), "n", clock=lambda: 0.0)
    for i in range(3 * MAX_PENDING):
        words.said("r", f"弹幕 {i}")
    kept = [int(text.split()[1]) for text in words._pending["r"]]
    assert len(kept) == MAX_PENDING
    assert max(kept) >= 2 * MAX_PENDING, "only the first were kept"


async def test_a_flush_gives_the_event_loop_back_between_slices(monkeypatch):
    """Segmenting waits for no tick longer than a slice (SLICE_S): with a slice of no time
    the flush yields after every text, and the loop's other work runs in between."""
    store = MemoryStore()
    await store.create_room(RoomRecord("r", "Room", 0.0, 1, {}))
    words = TopWords(store, "n", clock=lambda: 0.0)
    for i in range(50):
        words.said("r", f"番茄酱 {i} 弹幕")
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    monkeypatch.setattr(top_words_module, "SLICE_S", 0.0)
    other = asyncio.create_task(other_work())
    await words.flush()
    other.cancel()
    assert turns >= 50
    counted = {w["word"]: w["count"] for w in (await words.top("r", 5))["words"]}
    assert counted["番茄酱"] == counted["弹幕"] == 50
