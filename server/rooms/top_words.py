"""A room's top words over the whole event, for the cockpit
(GET /api/v1/rooms/{id}/top-words).

The danmaku a node accepts wait, as plain texts, in a bounded list per room: the hot
path only appends. Every report interval (2 s, server/rooms/counts.py) the node
segments them with jieba (:mod:`server.text_words`, the word cloud's segmentation: the
same words, stopwords dropped), in slices of 5 ms that give the event loop back between
them (a chunk of 250 texts had held it 57 ms for 100-character ASCII texts),
and adds each danmaku's distinct words of two or more characters to the room's counts.
It then writes its counts, the :data:`STORED` most frequent, into the room's
``~topwords`` box of the store (one record per node), so every node, and a node that
restarted, answers the same sum. A read is kept :data:`ANSWER_S` per room: twenty open
cockpits cost one store read a room every two seconds.

Measured (BENCHMARKS.md, "Cockpit"): a flush takes 31-33 µs of CPU per danmaku when
every text differs (1.6 % of a core at 500 danmaku/s before the sample, 0.8 % now),
5.5-5.8 µs for a realistic storm whose repeats the segmentation cache serves; the hot
path's append 0.11 µs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from server import text_words
from server.backends.base import RoomNotFound, Store, Submission
from server.rooms.kept import KeptAnswers

TOP_WORDS_BOX = "~topwords"
# Texts per room between two flushes (250/s); past it, a sample. Segmenting a danmaku
# costs 5-33 µs; at 500 distinct 78-character danmaku a second (the peer harness) that
# was 3.7 % of a core with the sample at 2,000/s. A sample of 250/s still ranks the
# words a crowd repeats.
MAX_PENDING = 500
SLICE_S = 0.005  # segmenting yields to the event loop after this much time
KEEP = 20_000  # distinct words counted per room on a node; past it, the rarest go
STORED = 500  # words per node in the store
ANSWER_S = 2.0  # how long a read of the store is served again
MAX_TOP = 100  # the most words one answer gives


class TopWords:
    """Counts the words of the danmaku this node accepted, per room, writes them to the
    store and answers a room's top words over every node."""

    def __init__(self, store: Store, node_id: str, clock: Callable[[], float]) -> None:
        self.store = store
        self.node_id = node_id
        self._clock = clock
        self._pending: dict[str, list[str]] = {}
        self._seen: dict[str, int] = {}  # room -> texts offered since the last flush
        self._counts: dict[str, Counter[str]] = {}
        self._danmaku: dict[str, int] = {}  # room -> danmaku counted here
        self._answers: KeptAnswers[dict[str, Any]] = KeptAnswers(ANSWER_S, clock)
        self._unwritten: set[str] = set()  # rooms whose counts the store lacks
        self._holder = f"~{node_id}"  # never a viewer id (``~`` is not allowed in one)

    def said(self, room_id: str, text: str) -> None:
        """A danmaku accepted here (its text after the filter): counted at the next flush.
        Past :data:`MAX_PENDING` in one interval, some of the rest take the place of
        earlier ones (a sample: ``danmaku`` counts those whose words were counted)."""
        pending = self._pending.setdefault(room_id, [])
        if len(pending) < MAX_PENDING:
            pending.append(text)
            return
        seen = self._seen[room_id] = self._seen.get(room_id, MAX_PENDING) + 1
        if seen % (seen // MAX_PENDING + 1) == 0:  # a spread of the rest, not the first
            pending[seen % MAX_PENDING] = text

    async def flush(self) -> None:
        """Segment what waits and write each changed room's counts to the store. Raises
        what the store raises (the counts stay, and go with the next flush)."""
        pending, self._pending, self._seen = self._pending, {}, {}
        for room_id, texts in pending.items():
            counts = self._counts.get(room_id)
            if counts is None:  # this node's counts so far (served before, or restarted)
                try:
                    counts = self._counts[room_id] = await self._stored(room_id)
                except RoomNotFound:
                    continue
            turn = time.perf_counter() + SLICE_S
            for text in texts:
                counts.update(w for w in text_words.terms(text) if len(w) >= 2)
                if time.perf_counter() > turn:  # ticks wait for no more than a slice
                    await asyncio.sleep(0)
                    turn = time.perf_counter() + SLICE_S
            self._danmaku[room_id] = self._danmaku.get(room_id, 0) + len(texts)
            if len(counts) > KEEP:  # a bound on memory: the rarest words go
                self._counts[room_id] = Counter(dict(counts.most_common(KEEP // 2)))
            self._unwritten.add(room_id)
        for room_id in list(self._unwritten):
            if room_id not in self._counts:
                self._unwritten.discard(room_id)
                continue
            record = {
                "node": self.node_id,
                "danmaku": self._danmaku[room_id],
                "words": dict(self._counts[room_id].most_common(STORED)),
            }
            submission = Submission(self._holder, "topwords", record, {}, {}, False, False)
            with contextlib.suppress(RoomNotFound):  # deleted meanwhile: nothing to write
                await self.store.submit_many(room_id, [(TOP_WORDS_BOX, submission)])
            self._unwritten.discard(room_id)

    async def _stored(self, room_id: str) -> Counter[str]:
        record = (await self.store.records(room_id, TOP_WORDS_BOX)).get(self._holder, {})
        self._danmaku[room_id] = int(record.get("danmaku", 0))
        return Counter({str(w): int(c) for w, c in dict(record.get("words", {})).items()})

    def forget(self, room_ids: set[str]) -> None:
        """Stop counting rooms this node no longer serves (their records stay)."""
        for kept in (self._counts, self._danmaku):
            for room_id in set(kept) - room_ids:
                del kept[room_id]
        self._answers.prune()

    async def top(self, room_id: str, n: int) -> dict[str, Any]:
        """The room's ``n`` most frequent words over every node, most first (ties by the
        word), each with the danmaku that held it, and the danmaku counted."""
        answer = await self._answers.get(room_id, lambda: self._summed(room_id))
        return {"room": room_id, "danmaku": answer["danmaku"], "words": answer["words"][:n]}

    async def _summed(self, room_id: str) -> dict[str, Any]:
        """Every node's record of the room, summed: its :data:`MAX_TOP` words."""
        records = await self.store.records(room_id, TOP_WORDS_BOX)
        total: Counter[str] = Counter()
        for record in records.values():
            total.update({str(w): int(c) for w, c in dict(record.get("words", {})).items()})
        ranked = sorted(total.items(), key=lambda item: (-item[1], item[0]))[:MAX_TOP]
        return {
            "danmaku": sum(int(r.get("danmaku", 0)) for r in records.values()),
            "words": [{"word": w, "count": c} for w, c in ranked],
        }
