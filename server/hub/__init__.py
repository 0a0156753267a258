"""The hub: connections, rooms, the tick loop, fan-out and backpressure."""

from server.hub.connection import Connection
from server.hub.hub import Hub

__all__ = ["Connection", "Hub"]
