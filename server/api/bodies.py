"""Request bodies held to ``limits.max_body_bytes`` while they stream in (issue 15,
"Limits"): a large body is refused with 413 before it is read whole, whoever sends it.

An ASGI middleware, outside every route and before any token is looked at:

1. A ``Content-Length`` over the limit is answered 413 at once; the application never
   runs and nothing of the body is read.
2. Otherwise (a smaller ``Content-Length``, or chunked transfer encoding with none) the
   bytes are counted as the application receives them; the chunk that passes the limit
   raises :class:`BodyTooLarge` inside the handler's read, and the middleware answers
   413 instead.

The node's HTTP protocol (server/serving.py) then ends the connection instead of
reading the rest: a 200 MB body costs the node at most one read buffer. A client that
goes away while its body is read (or is cut off by the body timeout) ends the request
quietly: there is nobody to answer.
"""

from __future__ import annotations

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """A request body passed the limit as it streamed in."""


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, before it is read whole."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)
        except ClientDisconnect:
            pass  # the client went away (or was cut off) mid-body: nobody to answer

    async def _refuse(self, send: Send) -> None:
        message = f"the body is over {self.limit} bytes (limits.max_body_bytes)"
        body = orjson.dumps({"error": {"code": "body_too_large", "message": message}})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses it before it gets here
    return None
