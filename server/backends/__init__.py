"""Storage and pub/sub behind interfaces, chosen by URL scheme.

``memory://`` (the embedded default, one process), ``redis://host:port/db`` (one
Redis server shared by any number of nodes), ``redis+cluster://host:port`` (Redis
Cluster; any node as the seed).
"""

from __future__ import annotations

from dataclasses import dataclass

from server.backends.base import (
    ApplyResult,
    BackendUnavailable,
    BoxData,
    Broker,
    RoomExists,
    RoomNotFound,
    RoomRecord,
    Store,
    Submission,
)
from server.backends.memory import MemoryBroker, MemoryStore

__all__ = [
    "ApplyResult",
    "BackendUnavailable",
    "Backends",
    "BoxData",
    "Broker",
    "MemoryBroker",
    "MemoryStore",
    "RoomExists",
    "RoomNotFound",
    "RoomRecord",
    "Store",
    "Submission",
    "open_backends",
]

SCHEMES = ("memory://", "redis://", "rediss://", "redis+cluster://")


@dataclass
class Backends:
    """The store and broker a node runs on, and the URL they came from."""

    store: Store
    broker: Broker
    url: str

    @property
    def shared(self) -> bool:
        """True when other nodes can share this store (not the in-process memory one)."""
        return not self.url.startswith("memory://")


def open_backends(url: str, *, prefix: str = "hudong:") -> Backends:
    """The Store and Broker for a URL; raises ValueError naming the accepted schemes."""
    if url.startswith("memory://"):
        return Backends(MemoryStore(), MemoryBroker().connect(), url)
    if url.startswith(("redis://", "rediss://", "redis+cluster://")):
        from server.backends.redis import RedisConnection, RedisStore
        from server.backends.redis_broker import RedisBroker

        connection = RedisConnection(url, prefix=prefix)
        return Backends(RedisStore(connection), RedisBroker(connection), url)
    raise ValueError(f"unsupported backend URL {url!r}; use one of {', '.join(SCHEMES)}")
