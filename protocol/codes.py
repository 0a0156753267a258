"""Every error code and close code of protocol v1, in one table.

This module is the single source of truth: PROTOCOL.md describes these tables,
``clients/js/codes.js`` is generated from them (``python -m protocol.codes``) and a
test fails when the two drift apart.

Error codes travel in ``error`` messages (PROTOCOL.md, "Errors"): the connection
stays open and the command had no effect. Close codes end a connection
(PROTOCOL.md, "Close codes"); ``reconnect`` tells a client whether trying again
with the same credentials can succeed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorCode:
    name: str
    retry: bool
    description: str


@dataclass(frozen=True, slots=True)
class CloseCode:
    code: int
    name: str
    reconnect: bool
    description: str


ERRORS: tuple[ErrorCode, ...] = (
    ErrorCode("malformed", False, "the frame could not be decoded as a message object"),
    ErrorCode("frame_too_large", False, "the frame is larger than limits.max_command_bytes"),
    ErrorCode("unknown_op", False, "the op is not one the server knows"),
    ErrorCode("invalid_field", False, "a field is missing, of the wrong type or out of range"),
    ErrorCode("text_too_long", False, "the text is longer than limits.max_text_chars"),
    ErrorCode("empty_text", False, "the text is empty after trimming"),
    ErrorCode("rate_limited", True, "this connection sends commands faster than allowed"),
    ErrorCode("room_rate_limited", True, "the room receives more danmaku than it allows"),
    ErrorCode(
        "slow_mode", True, "slow mode (room mode or degrade level 2): one danmaku per few seconds"
    ),
    ErrorCode(
        "danmaku_paused", True, "viewers' danmaku are paused (room mode staff or degrade level 3)"
    ),
    ErrorCode("muted", False, "a moderator muted this viewer; retry_after_ms says for how long"),
    ErrorCode("banned", False, "a moderator banned this viewer from the room"),
    ErrorCode(
        "unauthorized",
        False,
        "the token is missing, malformed, expired, revoked, or for another room or an"
        " earlier room of the same id",
    ),
    ErrorCode("forbidden", False, "the role of this connection may not do that"),
    ErrorCode("not_joined", False, "the command needs a joined room; send join first"),
    ErrorCode("already_joined", False, "this connection has already joined a room"),
    ErrorCode("room_not_found", False, "no room has that id"),
    ErrorCode("anonymous_not_allowed", False, "the room does not allow joining without a token"),
    # Interactions (server/interactions): the command had no effect.
    ErrorCode("invalid_vote", False, "the ballot does not fit the interaction's kind"),
    ErrorCode("unknown_option", False, "the ballot names an option that does not exist"),
    ErrorCode(
        "unknown_target", False, "no interaction, question or slot has that id (or claim code)"
    ),
    ErrorCode("not_open", False, "the interaction does not accept this now (closed or locked)"),
    ErrorCode("illegal_transition", False, "the host operation does not apply in this state"),
    ErrorCode("too_few_picks", False, "fewer picks than the poll's minimum"),
    ErrorCode("too_many_picks", False, "more picks than the poll's maximum"),
    ErrorCode("out_of_stock", False, "the option's stock is taken"),
    ErrorCode("already_done", False, "this one-time action was already done by this viewer"),
    ErrorCode("not_eligible", False, "the viewer may not enter this draw this way"),
    ErrorCode("no_entrants", False, "nobody is eligible for the draw"),
    # Caps on what a viewer, a room or the deployment may hold (issue 15).
    ErrorCode(
        "limit_reached",
        False,
        "a cap on what a viewer or room may hold is reached (connections, open items, "
        "interactions, snapshot size, rooms); `cap` names the setting, `limit` its value",
    ),
    ErrorCode("store_unavailable", True, "the store cannot be reached; nothing was changed"),
    ErrorCode("internal_error", True, "the server failed; nothing was changed"),
)

CLOSES: tuple[CloseCode, ...] = (
    CloseCode(1000, "normal", False, "the connection was closed on purpose"),
    CloseCode(1002, "protocol_error", False, "WebSocket framing was violated (RFC 6455)"),
    CloseCode(1003, "unsupported_data", False, "a frame type the subprotocol does not use"),
    CloseCode(
        1007, "invalid_payload", False, "a text frame that is not valid UTF-8 (RFC 6455 8.1)"
    ),
    CloseCode(1009, "message_too_big", False, "a frame over limits.max_frame_bytes"),
    CloseCode(1011, "internal_error", True, "the server failed on this connection"),
    CloseCode(1012, "server_restart", True, "the server is shutting down; reconnect"),
    CloseCode(4001, "join_timeout", True, "no join arrived within limits.join_timeout_s"),
    CloseCode(4003, "banned", False, "a moderator banned this viewer from the room"),
    CloseCode(4004, "room_deleted", False, "the room was deleted"),
    CloseCode(4005, "token_expired", False, "the session's token expired; join with a new one"),
    CloseCode(4006, "token_revoked", False, "the session's token was revoked"),
    CloseCode(4008, "too_slow", True, "the connection stayed behind its write buffer bound"),
    CloseCode(4009, "heartbeat_timeout", True, "nothing was received within heartbeat_timeout_s"),
)

ERROR_BY_NAME: dict[str, ErrorCode] = {e.name: e for e in ERRORS}
CLOSE_BY_NAME: dict[str, CloseCode] = {c.name: c for c in CLOSES}


def close_code(name: str) -> int:
    """The numeric close code for ``name``; raises KeyError for a name not in the table."""
    return CLOSE_BY_NAME[name].code


def render_js() -> str:
    """The source of ``clients/js/codes.js``, generated from the tables above."""
    errors = {e.name: {"retry": e.retry, "description": e.description} for e in ERRORS}
    closes = {
        c.name: {"code": c.code, "reconnect": c.reconnect, "description": c.description}
        for c in CLOSES
    }
    return (
        "// Generated by `python -m protocol.codes` from protocol/codes.py. Do not edit.\n"
        f"export const ERRORS = Object.freeze({json.dumps(errors, indent=2)});\n\n"
        f"export const CLOSES = Object.freeze({json.dumps(closes, indent=2)});\n\n"
        "/** Close code number -> entry of CLOSES (with its name). */\n"
        "export const CLOSE_BY_CODE = Object.freeze(Object.fromEntries(\n"
        "  Object.entries(CLOSES).map(([name, c]) => [c.code, { name, ...c }]),\n"
        "));\n"
    )


if __name__ == "__main__":  # pragma: no cover - code generator
    sys.stdout.write(render_js())
