"""Answers kept a little while per room, so that many readers of the same answer cost one
read of the store: the cockpit's top words and timeline, which every open cockpit asks
for every few seconds (twenty cockpits: one read, not twenty)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class KeptAnswers(Generic[T]):
    """Each key's last answer, given again for ``keep_s`` after it was read."""

    def __init__(self, keep_s: float, clock: Callable[[], float]) -> None:
        self.keep_s = keep_s
        self._clock = clock
        self._kept: dict[str, tuple[float, T]] = {}

    async def get(self, key: str, read: Callable[[], Awaitable[T]]) -> T:
        """The answer kept for ``key``, or ``read()``'s, kept from now (a clock that went
        back reads again)."""
        now = self._clock()
        kept = self._kept.get(key)
        if kept is not None and 0 <= now - kept[0] < self.keep_s:
            return kept[1]
        answer = await read()
        self._kept[key] = (now, answer)
        return answer

    def prune(self) -> None:
        """Drop the answers that would be read again anyway (memory stays bounded)."""
        now = self._clock()
        self._kept = {k: v for k, v in self._kept.items() if 0 <= now - v[0] < self.keep_s}
