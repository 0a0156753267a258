"""Storage and pub/sub behind interfaces, chosen by URL scheme.

``sqlite:///path/to/hudong.db`` (the durable embedded default, one process:
server/backends/embedded.py), ``memory://`` (one process, nothing kept: for tests and
throwaway demos), ``redis://host:port/db`` (one Redis server shared by any number of
nodes), ``redis+cluster://host:port`` (Redis Cluster; any node as the seed).
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

SCHEMES = ("sqlite://", "memory://", "redis://", "rediss://", "redis+cluster://")


@dataclass
class Backends:
    """The store and broker a node runs on, and the URL they came from."""

    store: Store
    broker: Broker
    url: str

    @property
    def shared(self) -> bool:
        """True when the store keeps what a node counts besides state (the replay
        buffer, participants, presence), as other nodes on Redis read it and as the
        embedded store keeps it across a restart; False for the memory backend only."""
        return not self.url.startswith("memory://")


def open_backends(url: str, *, prefix: str = "hudong:") -> Backends:
    """The Store and Broker for a URL; raises ValueError naming the accepted schemes."""
    if url.startswith("sqlite://"):
        from server.backends.embedded import EmbeddedStore

        path = url.removeprefix("sqlite://")
        if not path:
            raise ValueError(f"{url!r} names no file; use sqlite:///path/to/hudong.db")
        return Backends(EmbeddedStore(path), MemoryBroker().connect(), url)
    if url.startswith("memory://"):
        return Backends(MemoryStore(), MemoryBroker().connect(), url)
    if url.startswith(("redis://", "rediss://", "redis+cluster://")):
        from server.backends.redis import RedisStore
        from server.backends.redis_broker import RedisBroker
        from server.backends.redis_connection import RedisConnection

        connection = RedisConnection(url, prefix=prefix)
        return Backends(RedisStore(connection), RedisBroker(connection), url)
    raise ValueError(f"unsupported backend URL {url!r}; use one of {', '.join(SCHEMES)}")
