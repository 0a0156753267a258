"""The connection to Redis (one server or a cluster) that the Store, the Broker and the
relay share: one redis-py client, a bound on commands in flight, and Redis errors turned
into BackendUnavailable."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError, ResponseError

from server.backends.base import BackendUnavailable

T = TypeVar("T")


@contextlib.asynccontextmanager
async def _unavailable_on_error() -> AsyncIterator[None]:
    try:
        yield
    except (TimeoutError, RedisError, OSError) as exc:
        if isinstance(exc, ResponseError) and "NOSCRIPT" not in str(exc):
            raise
        raise BackendUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc


# Commands in flight per node: bounds the connections a burst of thousands of votes
# opens (redis-py's cluster client refuses past its pool size instead of waiting).
MAX_IN_FLIGHT = 48
_limits: dict[int, asyncio.Semaphore] = {}


class RedisConnection:
    """One redis-py client (single server or cluster) shared by the Store and the Broker."""

    def __init__(self, url: str, *, prefix: str = "hudong:") -> None:
        self.url = url
        self.prefix = prefix
        self.cluster = url.startswith("redis+cluster://")
        options: dict[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 1.0}
        if self.cluster:
            self.client: Any = RedisCluster.from_url(
                "redis://" + url.removeprefix("redis+cluster://"),
                max_connections=MAX_IN_FLIGHT + 16,
                **options,
            )
        else:
            self.client = aioredis.Redis.from_url(url, health_check_interval=5, **options)
        self._initialized = not self.cluster
        self._initializing = asyncio.Lock()

    def key(self, room_id: str, name: str) -> str:
        return f"{self.prefix}{{{room_id}}}:{name}"

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one command, pipeline or script; Redis errors become BackendUnavailable."""
        loop_id = id(asyncio.get_running_loop())
        limit = _limits.get(loop_id)
        if limit is None:
            limit = _limits[loop_id] = asyncio.Semaphore(MAX_IN_FLIGHT)
        async with limit, _unavailable_on_error():
            if not self._initialized:
                await self._initialize()
            return await fn()

    async def _initialize(self) -> None:
        # A cluster client learns the topology once, before any concurrent use: when a
        # burst of commands is what initialises it, redis-py (8.1) sometimes fails a few
        # of them with "'NoneType' object has no attribute 'writelines'".
        async with self._initializing:
            if not self._initialized:
                await self.client.initialize()
                self._initialized = True

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.aclose()
