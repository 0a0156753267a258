"""What a node last wrote to the store for each room, so that a periodic write that would
change nothing is left out.

Every served room is reported every 2 s (its presence, its live counts, its minute of the
timeline). A quiet room reports the same values again and again: at 500 rooms on Redis
that was 750 scripts a second for nothing, and as many transactions on the embedded store.
A value kept with a TTL (presence, live counts) is written again once ``refresh_s`` has
passed, well inside its TTL; one without (the timeline's minute) only when it changes.

The store may lose what was written (Redis restarted without persistence): the hub
forgets everything here at each resync (after the store was away, after a pub/sub break
or a relay gap, and for a room whose version moved, at the check every 15 s), so a lost
value is back at the next report after that; a count is back within a third of its TTL
anyway, and an unchanged minute at the next minute.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable


class LastWritten:
    """Which value was last written under each key, and when: says whether writing a value
    again is due."""

    def __init__(self, refresh_s: float | None = None) -> None:
        self.refresh_s = refresh_s  # None: never written again while it is the same
        self._last: dict[Hashable, tuple[object, float]] = {}

    def due(self, key: Hashable, value: object, now: float) -> bool:
        """True when ``value`` differs from what was last written under ``key``, or
        ``refresh_s`` has passed since."""
        last = self._last.get(key)
        if last is None or last[0] != value:
            return True
        return self.refresh_s is not None and now - last[1] >= self.refresh_s

    def wrote(self, key: Hashable, value: object, now: float) -> None:
        self._last[key] = (value, now)

    def forget(self, keys: Collection[Hashable] | None = None) -> None:
        """Forget every key (the store may have lost them), or only ``keys``."""
        if keys is None:
            self._last.clear()
            return
        for key in keys:
            self._last.pop(key, None)

    def keep(self, keys: Collection[Hashable]) -> None:
        """Forget the keys not in ``keys`` (rooms no longer served here)."""
        for key in [key for key in self._last if key not in keys]:
            del self._last[key]

    def __len__(self) -> int:
        return len(self._last)


__all__ = ["LastWritten"]
