"""Twitch chat: IRC over WebSocket (https://dev.twitch.tv/docs/chat/irc/).

The adapter logs in (anonymously as ``justinfan12345``, or with ``PASS oauth:<token>``
and the account's ``login`` from ``[bridges]``), asks for the IRCv3 tags and commands
capabilities, joins ``#<channel>`` and reads:

- ``PRIVMSG``: a chat message; its tags give the sender's ``user-id`` (the stable id of
  the identity ``twitch:<user-id>``), ``display-name``, the message's ``id`` and
  ``tmi-sent-ts`` (ms);
- ``CLEARMSG``: a moderator deleted one message (``target-msg-id``);
- ``CLEARCHAT``: a user was banned (no ``ban-duration``) or timed out (``ban-duration``
  seconds); without a user, the whole chat was cleared, which hudong does not follow;
- ``PING``: answered with ``PONG`` at once; ``RECONNECT``: the server is going away, so
  the stream ends and the runner connects again.

IRC has no replay: what is said while the bridge is disconnected is lost, and there is no
cursor. Lines that do not parse are skipped (a frame may carry several lines). The parser
(:func:`parse_line`) does no I/O, so it is tested with byte-for-byte sample lines.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from server.bridges.base import Adapter, BridgeError, ChatMessage, Event, PlatformModeration

log = logging.getLogger("hudong.bridges.twitch")

DEFAULT_URL = "wss://irc-ws.chat.twitch.tv:443"
ANONYMOUS_LOGIN = "justinfan12345"
MAX_LINE_CHARS = 8192  # IRCv3 message-tags: tags up to 8191 bytes, plus the 512 of RFC 1459
MAX_CHANNEL_CHARS = 25  # a Twitch login is 4-25 characters of [a-z0-9_]
# IRCv3 message-tags, "Escaping values": \: is ';', \s a space, \\ a backslash.
_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


@dataclass(frozen=True, slots=True)
class IrcLine:
    """One parsed IRC line: its IRCv3 tags, prefix, command and parameters."""

    command: str
    params: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    prefix: str = ""

    @property
    def nick(self) -> str:
        """The sender's nick of a ``nick!user@host`` prefix ("" for a server's)."""
        return self.prefix.split("!", 1)[0] if "!" in self.prefix else ""


class MalformedLine(ValueError):
    """A line of the chat that is not IRC as Twitch sends it."""


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(_UNESCAPE.get(value[i + 1], value[i + 1]))
            i += 2
            continue
        if ch != "\\":  # a lone trailing backslash is dropped (IRCv3)
            out.append(ch)
        i += 1
    return "".join(out)


def parse_line(line: str) -> IrcLine:
    """One IRC line (RFC 1459 section 2.3.1, with IRCv3 tags), or :class:`MalformedLine`."""
    if not line or len(line) > MAX_LINE_CHARS or "\0" in line:
        raise MalformedLine("empty, too long or with a NUL")
    rest = line
    tags: dict[str, str] = {}
    if rest.startswith("@"):
        raw, sep, rest = rest[1:].partition(" ")
        if not sep:
            raise MalformedLine("tags without a command")
        for item in raw.split(";"):
            key, _, value = item.partition("=")
            if key:
                tags[key] = _unescape(value)
    prefix = ""
    rest = rest.lstrip(" ")
    if rest.startswith(":"):
        prefix, sep, rest = rest[1:].partition(" ")
        if not sep:
            raise MalformedLine("a prefix without a command")
    rest = rest.lstrip(" ")
    head, sep, trailing = rest.partition(" :")
    words = head.split()
    if not words:
        raise MalformedLine("no command")
    command, params = words[0].upper(), words[1:]
    if sep:
        params.append(trailing)
    if not (command.isalpha() or (command.isdigit() and len(command) == 3)):
        raise MalformedLine(f"not a command: {command[:16]!r}")
    return IrcLine(command, params, tags, prefix)


def _ms(value: str | None) -> float | None:
    if value is None or not value.isdigit():
        return None
    return int(value) / 1000


def event_of(line: IrcLine, channel: str) -> Event | None:
    """What a parsed line means for the bridge (None: nothing to follow); raises
    :class:`MalformedLine` for a chat command that lacks what it must carry."""
    target = f"#{channel}"
    if line.command == "PRIVMSG":
        if len(line.params) != 2 or line.params[0].lower() != target:
            raise MalformedLine("PRIVMSG needs the channel and a text")
        text = line.params[1]
        if text.startswith("\x01ACTION ") and text.endswith("\x01"):  # /me (CTCP ACTION)
            text = text[8:-1]
        sender = line.tags.get("user-id") or line.nick
        if not sender or not text.strip():
            raise MalformedLine("PRIVMSG without a sender or a text")
        name = line.tags.get("display-name") or line.nick or None
        return ChatMessage(
            sender=sender,
            text=text,
            name=name,
            id=line.tags.get("id") or None,
            at=_ms(line.tags.get("tmi-sent-ts")),
        )
    if line.command == "CLEARMSG":
        message_id = line.tags.get("target-msg-id")
        if not message_id:
            raise MalformedLine("CLEARMSG without a target-msg-id")
        return PlatformModeration("delete", message_id=message_id)
    if line.command == "CLEARCHAT":
        user = line.tags.get("target-user-id")
        if not user:
            return None  # the whole chat cleared: hudong's danmaku stay
        duration = line.tags.get("ban-duration")
        if duration is None:
            return PlatformModeration("ban", sender=user)
        if not duration.isdigit():
            raise MalformedLine("CLEARCHAT with a ban-duration that is not a number")
        return PlatformModeration("timeout", sender=user, seconds=float(duration))
    return None


class TwitchAdapter(Adapter):
    """Reads one Twitch channel's chat over IRC on WebSocket (module docstring)."""

    platform = "twitch"

    def __init__(self, channel: str, options: Mapping[str, Any]) -> None:
        channel = channel.strip().lstrip("#").lower()
        if not 1 <= len(channel) <= MAX_CHANNEL_CHARS or not all(
            c.isascii() and (c.isalnum() or c == "_") for c in channel
        ):
            raise ValueError(
                f"a Twitch channel is its login: 1-{MAX_CHANNEL_CHARS} letters, digits or _"
            )
        super().__init__(channel, options)
        self.url = str(options.get("url") or DEFAULT_URL)
        self.token = str(options.get("token") or "")
        self.login = str(options.get("login") or "") if self.token else ANONYMOUS_LOGIN
        self.skipped = 0  # lines that did not parse (not counted as errors: skipped)
        self.connected = False  # Twitch welcomed the login (001): the runner shows it

    async def events(self, cursor: str | None) -> AsyncIterator[Event]:
        try:
            ws = await websockets.connect(
                self.url, open_timeout=10, max_size=1 << 20, compression=None
            )
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            raise BridgeError(f"cannot connect to {self.url}: {exc}") from None
        try:
            await self._login(ws)
            async for frame in _frames(ws):
                for raw in frame.split("\r\n"):
                    if not raw:
                        continue
                    try:
                        line = parse_line(raw)
                        event = event_of(line, self.channel)
                    except MalformedLine as exc:
                        self.skipped += 1
                        log.debug("skipped a line from %s: %s", self.url, exc)
                        continue
                    if line.command == "001":
                        self.connected = True
                    elif line.command == "PING":
                        await ws.send(f"PONG :{line.params[-1] if line.params else ''}")
                    elif line.command == "RECONNECT":
                        return  # Twitch restarts the server: connect again at once
                    elif line.command == "NOTICE" and _login_refused(line):
                        why = line.params[-1]
                        raise BridgeError(f"Twitch refused the login: {why}", retry=False)
                    elif event is not None:
                        yield event
        finally:
            self.connected = False
            await ws.close()

    async def _login(self, ws: ClientConnection) -> None:
        try:
            await ws.send("CAP REQ :twitch.tv/tags twitch.tv/commands")
            if self.token:
                token = self.token.removeprefix("oauth:")
                await ws.send(f"PASS oauth:{token}")
            await ws.send(f"NICK {self.login}")
            await ws.send(f"JOIN #{self.channel}")
        except websockets.WebSocketException as exc:
            raise BridgeError(f"the connection closed while logging in: {exc}") from None


def _login_refused(line: IrcLine) -> bool:
    text = line.params[-1].lower() if line.params else ""
    return "authentication failed" in text or "improperly formatted auth" in text


async def _frames(ws: ClientConnection) -> AsyncIterator[str]:
    """The text frames of the connection; a close or a failure is a retryable error."""
    while True:
        try:
            frame = await ws.recv()
        except websockets.ConnectionClosed as exc:
            raise BridgeError(f"the chat connection closed: {exc}") from None
        except (OSError, websockets.WebSocketException) as exc:
            raise BridgeError(f"the chat connection failed: {exc}") from None
        yield frame if isinstance(frame, str) else frame.decode("utf-8", "replace")


__all__ = ["DEFAULT_URL", "IrcLine", "MalformedLine", "TwitchAdapter", "event_of", "parse_line"]
