"""The CPU of the cockpit's top words per danmaku (issue 16), in one process: no
sockets, no load tool. Each round offers 1,000 danmaku to :class:`TopWords` as the hot
path does (``said``) and flushes them (jieba, the counts, the store write) as the
report loop does every 2 s: 500 danmaku/s. Two mixes: the load tool's Chinese storm
(loadtest/chinese.py: many repeats, which the segmentation cache serves) and the benign
corpus (tests/data/benign_danmaku.txt) with a number added to each line, so that no
text repeats and the cache never serves one.

    python3 -m tests.top_words_cost            # 3 runs of 10 rounds
    python3 -m tests.top_words_cost 5 20       # runs, rounds

Prints µs of CPU (process time) per danmaku, for the hot path's ``said`` and for the
flush, and what 500 danmaku/s would take of one core.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time

from loadtest import chinese
from server import text_words
from server.backends.base import RoomRecord
from server.backends.memory import MemoryStore
from server.rooms.top_words import TopWords
from tests.test_text_filter import lines

PER_FLUSH = 1000  # 2 s of 500 danmaku/s


async def run(texts: list[str], rounds: int) -> tuple[float, float]:
    """(µs of CPU per danmaku in ``said``, in ``flush``)."""
    store = MemoryStore()
    await store.create_room(RoomRecord("r", "Room", 0.0, 1, {}))
    words = TopWords(store, "n", clock=time.monotonic)
    said = flushed = 0.0
    for k in range(rounds):
        batch = texts[k * PER_FLUSH : (k + 1) * PER_FLUSH]
        t0 = time.process_time()
        for text in batch:
            words.said("r", text)
        t1 = time.process_time()
        await words.flush()
        flushed += time.process_time() - t1
        said += t1 - t0
    n = rounds * PER_FLUSH
    return 1e6 * said / n, 1e6 * flushed / n


def main(runs: int = 3, rounds: int = 10) -> None:
    text_words.warm_up()
    storm = list(itertools.islice(chinese.texts(seed=16), rounds * PER_FLUSH))
    benign = lines()
    unique = [f"{benign[i % len(benign)]} {i}" for i in range(rounds * PER_FLUSH)]
    for name, texts in (("Chinese storm", storm), ("unique texts", unique)):
        for r in range(runs):
            text_words._terms.cache_clear()
            said, flush = asyncio.run(run(texts, rounds))
            core = 100 * (said + flush) * 500 / 1e6
            print(
                f"{name:14} run {r + 1}: said {said:.2f} µs, flush {flush:.1f} µs per danmaku"
                f" -> {core:.2f} % of a core at 500/s"
            )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
