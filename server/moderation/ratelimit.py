"""Token buckets for per-connection command rates and per-room danmaku rates."""

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
