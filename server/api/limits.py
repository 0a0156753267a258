"""Requests that cost CPU, held to a rate per client (issue 14, "Bursts spread over
ticks"): QR codes, reports, exports and draw audits. Anyone may ask for a QR code, and
a report reads every interaction of a room; a few dozen at once from one address must
not hold the node at a degrade level that refuses viewers.

Each client address gets a token bucket (``limits.heavy_requests_per_s``, burst
``limits.heavy_request_burst``); a request over it is answered at once with 429
``rate_limited`` and ``Retry-After``, doing no work. The addresses remembered are
bounded (the least recently seen are forgotten first). Behind a proxy every request
comes from the proxy's address: raise the limits there, or limit at the proxy.
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
        """``handler``, answering 429 to a client over its rate without calling it."""

        async def guarded(request: Request) -> Response:
            client = request.client.host if request.client is not None else ""
            wait = self.wait(client)
            if wait:
                seconds = math.ceil(min(wait, 3600.0))
                message = (
                    f"too many requests of this kind from {client or 'this client'} "
                    f"(at most {self.per_s:g}/s, bursts of {self.burst}); retry in {seconds} s"
                )
                return JSONResponse(
                    {"error": {"code": "rate_limited", "message": message}},
                    429,
                    headers={"Retry-After": str(seconds)},
                )
            return await handler(request)

        guarded.__name__ = getattr(handler, "__name__", "guarded")
        guarded.__doc__ = handler.__doc__
        return guarded
