"""The hub: connections, rooms, the tick loop, fan-out, backpressure and degrade levels."""

from server.hub.connection import Connection
from server.hub.hub import Hub

__all__ = ["Connection", "Hub"]
