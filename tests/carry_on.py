"""Checks shared by the refusal tests: the documented error, and that everyone carries on.

PROTOCOL.md, "Errors": "An `error` answers one command; the connection stays open and
nothing changed". The helpers here check the three halves of that sentence over real
sockets: the reply (:func:`assert_error`), the sender's connection still answering
(:func:`sender_carries_on`), and the other viewers of the room still getting batches
with nothing from the refused input in them (:func:`events_until`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import UNIT, Client, LiveServer

SUBPROTOCOLS = ("hudong.v1.json", "hudong.v1.msgpack")
ROOM = "stage"
OTHER_ROOM = "backstage"
# The id every refused command carries, so that the test can check it is echoed.
CID = 41
ERROR_FIELDS = {"type", "id", "code", "message"}


def other(subprotocol: str) -> str:
    """The other codec: bystanders use it, so every case crosses both encoders."""
    return SUBPROTOCOLS[1 - SUBPROTOCOLS.index(subprotocol)]


async def stage(srv: LiveServer, subprotocol: str, *, join: bool = True) -> tuple[Client, Client]:
    """Rooms ``stage`` and ``backstage``; a viewer of ``stage`` on the other codec; and the
    connection under test on ``subprotocol`` (joined to ``stage`` when ``join``)."""
    await srv.create_room(ROOM)
    await srv.create_room(OTHER_ROOM)
    viewer = await srv.connect(other(subprotocol))
    await viewer.join(ROOM)
    sender = await srv.connect(subprotocol)
    if join:
        await sender.join(ROOM)
    return sender, viewer


async def next_reply(client: Client) -> dict[str, Any]:
    """The next message that is not a batch (batches of earlier danmaku may come first)."""
    while True:
        message = await client.recv()
        if message["type"] != "batch":
            return message


def assert_error(
    reply: dict[str, Any], code: str, *, cid: int | None, extra: frozenset[str] = frozenset()
) -> None:
    """``reply`` is the documented ``error``: its code, the echoed id (null when the frame
    could not be read) and exactly the documented fields (``extra``: ``limit`` or
    ``retry_after_ms``)."""
    assert reply.get("type") == "error", reply
    assert reply["code"] == code, reply
    if cid is None:
        assert reply["id"] is None, reply
    else:
        assert type(reply["id"]) is int and reply["id"] == cid, reply
    assert set(reply) == ERROR_FIELDS | extra, reply
    assert isinstance(reply["message"], str) and reply["message"], reply


async def events_until(
    client: Client, event_id: str, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Every danmaku ``client`` receives up to and including ``event_id``.

    Only batches may arrive meanwhile: an error or a close meant for another connection
    must never reach this one.
    """

    async def collect() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while True:
            message = await client.recv(timeout)
            assert message["type"] == "batch", message
            events.extend(message["events"])
            if any(event["id"] == event_id for event in message["events"]):
                return events

    return await asyncio.wait_for(collect(), timeout * UNIT)


async def sender_carries_on(
    sender: Client, viewers: list[Client], text: str = "still here"
) -> list[list[dict[str, Any]]]:
    """``sender`` still answers a ping and acks a danmaku, which every one of ``viewers``
    (and ``sender``) then receives in a batch. Returns each viewer's events up to it."""
    pong = await sender.command("ping")
    assert pong == {"type": "pong", "id": sender.next_id}, pong
    ack = await sender.command("danmaku", text=text)
    assert ack["type"] == "ack" and isinstance(ack["event"], str), ack
    seen = []
    for client in [*viewers, sender]:
        events = await events_until(client, ack["event"])
        assert events[-1]["text"] == text
        seen.append(events)
    return seen[: len(viewers)]


async def close_code_of(client: Client, timeout: float = 5.0) -> int:
    """Read ``client`` until the server closes it; the close code the server sent."""

    async def drain() -> None:
        while True:
            await client.ws.recv()

    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(drain(), timeout * UNIT)
    assert info.value.rcvd is not None, f"closed without a close frame: {info.value!r}"
    return int(info.value.rcvd.code)
