"""Token buckets for per-connection command rates, and a room's danmaku budget shared
fairly among the addresses that send into it."""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; the caller passes the clock.

    Taking the time as an argument keeps the bucket pure and testable, and lets
    the hub read the clock once per frame instead of once per bucket.
    """

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; return 0.0 on success, else seconds until it would succeed."""
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        if self.rate <= 0:
            return float("inf")
        return (cost - self.tokens) / self.rate


# An address counts as sending into a room while it sent there within this window.
SHARE_WINDOW_S = 2.0


class FairShare:
    """A room's danmaku budget, split evenly among the client addresses that sent into it
    within the last ``window_s`` (issue 15, "a few heavy senders can't starve the rest").

    With ``fair`` each address has a bucket of its own at ``rate / active`` per second,
    bursts of ``burst / active`` (at least one): the shares add up to the room's budget,
    400 connections from one address take no more of the room than one honest viewer's
    address may, and a lone sender still gets the whole budget. Without it, one bucket
    for the room: first come, first served (a venue where nearly everyone shares one
    address). The clock is the caller's, as with :class:`TokenBucket`.
    """

    __slots__ = ("_sources", "_swept", "fair", "room", "window_s")

    def __init__(
        self,
        rate: float,
        burst: int,
        now: float,
        *,
        fair: bool = True,
        window_s: float = SHARE_WINDOW_S,
    ) -> None:
        self.room = TokenBucket(rate, burst, now)
        self.fair = fair
        self.window_s = window_s
        self._sources: dict[str, TokenBucket] = {}
        self._swept = now

    @property
    def rate(self) -> float:
        return self.room.rate

    @property
    def active(self) -> int:
        """Addresses that sent within the window (as of the last take)."""
        return len(self._sources)

    def take(self, now: float, source: str = "") -> float:
        """Take one danmaku from ``source``'s share of the room (from the room's bucket
        when not ``fair``): 0.0 on success, else seconds until it would succeed."""
        if not self.fair:
            return self.room.take(now)
        return self._share(source, now).take(now)

    def _share(self, source: str, now: float) -> TokenBucket:
        sources = self._sources
        if now - self._swept >= self.window_s / 2:
            # A bucket's ``updated`` is when it last took: who sent within the window.
            horizon = now - self.window_s
            for gone in [s for s, b in sources.items() if b.updated < horizon]:
                del sources[gone]
            self._swept = now
        bucket = sources.get(source)
        count = len(sources) + (bucket is None)
        rate = self.room.rate / count
        burst = max(1.0, self.room.burst / count)
        if bucket is None:
            bucket = sources[source] = TokenBucket(rate, 1, now)
            bucket.burst = bucket.tokens = burst
        else:
            bucket.rate, bucket.burst = rate, burst
            bucket.tokens = min(bucket.tokens, burst)
        return bucket
