"""The CPU that keyword alerts add to each accepted danmaku (``AlertDesk.said``: the
normalising, one Aho–Corasick pass, and counting the lists it hits), in one process:
no sockets, no load tool. Also the matcher against a plain ``word in text`` per word.

    python3 -m tests.alert_cost   # every case, 10,000 danmaku each, 5 rounds (no alert)

Prints CPU microseconds per danmaku (process time, so that others on the machine count
less) for: a room with no watch list; one list of 5 words; 20 lists of 100 words each
(the most a room may keep); each with danmaku of which none, or all, hit a list
(threshold out of reach, so no alert is raised and stored).
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

import ahocorasick

from server.auth import Identity
from server.moderation.alerts import WatchList, stand_in_normalise
from server.rooms.alerts import AlertDesk

HARMLESS = [
    "666",
    "主播好棒",
    "来了来了",
    "这个颜色好看",
    "哈哈哈哈哈哈",
    "nice stream lol",
    "多少钱",
    "已下单",
]
HITTING = ["我要退款", "客服在吗 投诉", "brandx 太差了"]


def lists(n: int, words: int) -> list[WatchList]:
    found = [
        WatchList.parse(
            {
                "id": "refund",
                "terms": ["退款", "投诉", *[f"词{i}号" for i in range(words - 3)]][:words],
                "pairs": [["brandx", "差"]],
                "threshold": 100_000,
                "window_s": 60,
            }
        )
    ]
    for k in range(1, n):
        terms = [f"w{k}x{i}" for i in range(words)]
        found.append(WatchList.parse({"id": f"w{k}", "terms": terms, "threshold": 100_000}))
    return found


class NoOutbox:
    """Takes notices and drops them (none are raised here)."""

    def tell_staff(self, room_id: str, notice: dict[str, Any]) -> None:
        pass


def desk_with(watchlists: list[WatchList]) -> AlertDesk:
    desk = AlertDesk(None, NoOutbox, lambda r, b, v: None, node_id="bench")  # type: ignore[arg-type]
    from server.moderation.alerts import KeywordMatcher, SpikeDetector
    from server.rooms.alerts import RoomWatch

    watch = RoomWatch(
        watchlists, KeywordMatcher(watchlists, stand_in_normalise), SpikeDetector(time.time)
    )
    watch.detector.watch(watchlists)
    desk.rooms["r"] = watch
    return desk


def per_danmaku(desk: AlertDesk, texts: list[str], n: int) -> float:
    who = Identity("u1", "Fan", "viewer", "r")
    picked = [random.choice(texts) for _ in range(n)]
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for text in picked:
            desk.said("r", who, text, 0.0)
        best = min(best, time.process_time() - start)
    return best / n * 1e6


def matcher_against_in(words: int, n: int) -> tuple[float, float]:
    terms = ["退款", "投诉", *[f"词{i}号" for i in range(words)]][:words]
    automaton = ahocorasick.Automaton()
    for i, term in enumerate(terms):
        automaton.add_word(term, i)
    automaton.make_automaton()
    texts = [random.choice(HARMLESS + HITTING) for _ in range(n)]
    start = time.process_time()
    for text in texts:
        {i for _, i in automaton.iter(text)}
    ac = time.process_time() - start
    start = time.process_time()
    for text in texts:
        {i for i, term in enumerate(terms) if term in text}
    plain = time.process_time() - start
    return ac / n * 1e6, plain / n * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    random.seed(1)
    print(f"AlertDesk.said, µs per danmaku ({n} danmaku, CPU time, best of 5)")
    print(f"  no watch list:             {per_danmaku(desk_with([]), HARMLESS, n):.2f}")
    for count, words in ((1, 5), (20, 100)):
        for label, texts in (("none hit", HARMLESS), ("all hit", HITTING)):
            cost = per_danmaku(desk_with(lists(count, words)), texts, n)
            print(f"  {count:2} list(s) x {words:3} words, {label}: {cost:.2f}")
    print("one pass of Aho-Corasick against 'word in text' per word, µs per danmaku")
    for words in (5, 20, 100, 2000):
        ac, plain = matcher_against_in(words, n)
        print(f"  {words:4} words: automaton {ac:.2f}, in {plain:.2f}")


if __name__ == "__main__":
    main()
