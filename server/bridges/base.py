"""The contract between a platform's chat and hudong: what an adapter yields, and how.

An adapter knows one platform's wire protocol and nothing of rooms. It connects to one channel,
and yields what the chat says as :class:`ChatMessage` and what the platform's moderators do as
:class:`PlatformModeration`, in the platform's order. The runner (not the adapter) reconnects with
backoff, resumes from the last :attr:`ChatMessage.cursor` where the platform offers one, drops
repeats by :attr:`ChatMessage.id`, and turns each message into a danmaku of the room under the
identity ``<platform>:<sender>``, through the same content filter and rate limits as any viewer's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal


class BridgeError(Exception):
    """A bridge cannot go on as it is: the connection failed or the platform sent something
    malformed. ``retry`` says whether reconnecting may help (a refused credential will not)."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One chat message from a platform, as the adapter read it."""

    sender: str  # the platform's stable id of the sender ("12345", "some_login")
    text: str
    name: str | None = None  # the display name, where the platform gives one
    id: str | None = None  # the platform's message id, for repeats and deletions
    at: float | None = None  # when the platform says it was sent (Unix seconds)
    cursor: str | None = None  # where to resume after this message, where the platform can


@dataclass(frozen=True, slots=True)
class PlatformModeration:
    """A moderation signal of the platform: a deleted message, or a sender banned or timed out."""

    action: Literal["delete", "ban", "timeout"]
    message_id: str | None = None
    sender: str | None = None
    seconds: float | None = None  # a timeout's length


Event = ChatMessage | PlatformModeration


class Adapter(ABC):
    """One platform's chat protocol, reading one channel; a module per platform subclasses it.

    ``channel`` is what a host types in the console (a Twitch login, a Bilibili room id).
    ``options`` come from the node's configuration (``[bridges.<platform>]``: endpoints,
    credentials), never from the room record."""

    platform: ClassVar[str]  # "twitch", "bili": the prefix of its senders' identities

    def __init__(self, channel: str, options: Mapping[str, Any]) -> None:
        self.channel = channel
        self.options = options

    @abstractmethod
    def events(self, cursor: str | None) -> AsyncIterator[Event]:
        """Connect and yield the chat's events until cancelled. Raise :class:`BridgeError` when
        the connection fails or a frame is malformed beyond skipping; return when the platform
        ends the stream. ``cursor`` is the last message's cursor, to resume after it."""


__all__ = ["Adapter", "BridgeError", "ChatMessage", "Event", "PlatformModeration"]
