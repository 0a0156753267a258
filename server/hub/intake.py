"""Intake: one data message from a connection becomes a command or a refusal
(PROTOCOL.md, "Commands", "Limits")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol.codec import Codec, DecodeError
from protocol.messages import CORE_OPS, Command, CommandError, OpRule, parse_command
from server.config import LimitsSettings
from server.moderation.ratelimit import TokenBucket


class Intake:
    """Checks a command's size, decodes it, takes it from the sender's rate and parses
    it; every refusal is the documented error, labelled with the op it was for."""

    def __init__(self, limits: LimitsSettings, ops: Mapping[str, OpRule]) -> None:
        self.limits = limits
        self.ops = dict(ops)
        self.known = frozenset([*CORE_OPS, *ops])

    def label(self, op: Any) -> str:
        """A bounded metrics label for an op (``invalid`` for anything unknown)."""
        return op if isinstance(op, str) and op in self.known else "invalid"

    def take(
        self,
        codec: Codec,
        bucket: TokenBucket,
        data: bytes,
        now: float,
        address: TokenBucket | None = None,
    ) -> tuple[str, Command | CommandError]:
        """(op label, the command or why it is refused). The rate (the connection's or
        viewer's ``bucket``, then the client ``address``'s when set) counts every frame,
        malformed ones included."""
        limits = self.limits
        wait = bucket.take(now)
        if not wait and address is not None:
            wait = address.take(now)
            if wait:
                bucket = address  # the one that refused, for the message
        if len(data) > limits.max_command_bytes:
            return "invalid", CommandError(
                "frame_too_large",
                f"the frame has {len(data)} bytes; the limit is {limits.max_command_bytes}",
                limit=limits.max_command_bytes,
            )
        try:
            obj = codec.decode(data)
        except DecodeError as exc:
            return "invalid", CommandError("malformed", str(exc))
        op_label = self.label(obj.get("op") if isinstance(obj, dict) else None)
        if wait:
            cid = obj.get("id") if isinstance(obj, dict) else None
            return op_label, CommandError(
                "rate_limited",
                f"too many commands; at most {bucket.rate:g} per second",
                cid if type(cid) is int else None,
                retry_after_ms=max(1, round(wait * 1000)),
            )
        try:
            return op_label, parse_command(obj, max_text_chars=limits.max_text_chars, ops=self.ops)
        except CommandError as err:
            return op_label, err
