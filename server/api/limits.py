"""Requests held to a rate per client address, and wrong tokens slowed per address.

Requests that cost CPU (issue 14, "Bursts spread over ticks"): QR codes, reports,
exports and draw audits. Anyone may ask for a QR code, and a report reads every
interaction of a room; a few dozen at once from one address must not hold the node at
a degrade level that refuses viewers. Every request that needs no token (issue 15:
pages, their files, health, metrics) is held to a second, looser rate.

Each client address gets a token bucket per limit (``limits.heavy_requests_per_s``,
burst ``limits.heavy_request_burst``; ``limits.public_requests_per_s``, burst
``limits.public_request_burst``); a request over it is answered at once with 429
``rate_limited`` and ``Retry-After``, doing no work. The addresses remembered are
bounded (the least recently seen are forgotten first). Behind a proxy every request
comes from the proxy's address: raise the limits there, or limit at the proxy.

Wrong tokens (:class:`FailedLogins`, issue 15 "Tokens can't be taken back"): after
``limits.failed_logins_allowed`` wrong admin or room tokens from one address, every
request from it that a token must open is refused with 429 for a time that doubles
with each further failure (1 s, 2 s, 4 s … up to 5 minutes), whether its token is
right or not, so guessing the admin token gains nothing by going faster. A valid room
token still works meanwhile (it cannot be guessed), and other addresses are not
affected. An address is forgiven after a success, or after 15 quiet minutes.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.moderation.ratelimit import TokenBucket

Handler = Callable[[Request], Awaitable[Response]]
CLIENTS_KEPT = 10_000


class HeavyRequests:
    """Holds each client address to a rate of CPU-heavy requests; wraps their handlers."""

    def __init__(
        self,
        per_s: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        kept: int = CLIENTS_KEPT,
    ) -> None:
        self.per_s = per_s
        self.burst = burst
        self._clock = clock
        self._kept = kept
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def wait(self, client: str) -> float:
        """0 when ``client`` may go ahead now (and it is counted), else seconds to wait."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = TokenBucket(self.per_s, self.burst, now)
            if len(self._buckets) > self._kept:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
        return bucket.take(now)

    def limited(self, handler: Handler) -> Handler:
        """``handler``, answering 429 to a client over its rate without calling it
        (``handler`` itself when the rate is 0: no limit)."""
        if self.per_s <= 0:
            return handler

        async def guarded(request: Request) -> Response:
            client = request.client.host if request.client is not None else ""
            wait = self.wait(client)
            if wait:
                seconds = math.ceil(min(wait, 3600.0))
                message = (
                    f"too many requests of this kind from {client or 'this client'} "
                    f"(at most {self.per_s:g}/s, bursts of {self.burst}); retry in {seconds} s"
                )
                return rate_limited(message, seconds)
            return await handler(request)

        guarded.__name__ = getattr(handler, "__name__", "guarded")
        guarded.__doc__ = handler.__doc__
        return guarded


def rate_limited(message: str, seconds: int) -> Response:
    """429 ``rate_limited`` with ``Retry-After``."""
    return JSONResponse(
        {"error": {"code": "rate_limited", "message": message}},
        429,
        headers={"Retry-After": str(seconds)},
    )


LOCKOUT_MAX_S = 300.0
FORGIVE_AFTER_S = 900.0


class FailedLogins:
    """Counts wrong tokens per client address and says how long an address that sent
    too many must wait (a time that doubles with each further failure)."""

    def __init__(
        self,
        allowed: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        kept: int = CLIENTS_KEPT,
    ) -> None:
        self.allowed = allowed
        self._clock = clock
        self._kept = kept
        # address -> (failures, last failure, refused until)
        self._failures: OrderedDict[str, tuple[int, float, float]] = OrderedDict()

    def wait(self, client: str) -> float:
        """Seconds ``client`` must wait before a token of its is looked at; 0: now."""
        entry = self._failures.get(client)
        if entry is None:
            return 0.0
        now = self._clock()
        if now - entry[1] > FORGIVE_AFTER_S:
            del self._failures[client]
            return 0.0
        return max(0.0, entry[2] - now)

    def failed(self, client: str) -> None:
        """``client`` sent a wrong token."""
        now = self._clock()
        count, last, _ = self._failures.pop(client, (0, now, now))
        if now - last > FORGIVE_AFTER_S:
            count = 0
        count += 1
        over = count - self.allowed
        until = now + min(LOCKOUT_MAX_S, 2.0 ** (over - 1)) if over > 0 else now
        self._failures[client] = (count, now, until)
        if len(self._failures) > self._kept:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """``client`` sent a right token: its failures are forgotten."""
        if self._failures:
            self._failures.pop(client, None)
