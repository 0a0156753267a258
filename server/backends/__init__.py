"""Storage behind an interface: the memory implementation is the embedded default."""

from server.backends.base import RoomExists, RoomNotFound, RoomRecord, Store
from server.backends.memory import MemoryStore

__all__ = ["MemoryStore", "RoomExists", "RoomNotFound", "RoomRecord", "Store"]


def open_store(url: str) -> Store:
    """The Store for a URL; ``memory://`` is the embedded default."""
    if url.startswith("memory://"):
        return MemoryStore()
    raise ValueError(f"unsupported store URL {url!r}; this build supports memory://")
