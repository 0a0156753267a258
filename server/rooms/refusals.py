"""What the room layer answers for a refusal: a kind's, a missing room's, or an
unreachable store's, as the :class:`~protocol.messages.CommandError` the edge sends (the
hub as an ``error``, REST as an HTTP error). Nothing changed in each case."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from protocol.messages import CommandError, store_unavailable
from server.backends.base import BackendUnavailable, RoomNotFound
from server.interactions.base import InteractionError

REFUSALS = (InteractionError, RoomNotFound, BackendUnavailable)


def refused(exc: Exception) -> CommandError:
    """A kind's refusal, a missing room or an unreachable store (one of ``REFUSALS``), as
    the CommandError the edge sends (nothing changed in each case)."""
    if isinstance(exc, InteractionError):
        return CommandError(exc.code, exc.message, **exc.extra)
    if isinstance(exc, RoomNotFound):
        return CommandError("room_not_found", f"no room {exc.args[0]!r}")
    return store_unavailable()


@contextlib.asynccontextmanager
async def refusals() -> AsyncIterator[None]:
    """:func:`refused` around a block."""
    try:
        yield
    except REFUSALS as exc:
        raise refused(exc) from exc
