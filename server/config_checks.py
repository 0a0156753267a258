"""Range checks on settings at start (issue 17): a value of the right type that still
makes no sense (a negative tick, a zero frame limit, a short secret) stops the node with
a :class:`ConfigError` that names the setting, its environment variable and why, instead
of a node that misbehaves later.

Every number must be finite and not negative; :data:`POSITIVE` and :data:`AT_MOST` add
the bounds where zero (or more) makes no sense. A setting another issue adds is held to
the general rule until it gets a line here.
"""

from __future__ import annotations

import math

from server.auth import MIN_SECRET_BYTES
from server.config import SECTIONS, ConfigError, Settings, env_name, section_of, setting_fields

# Settings that must be more than 0 ("0: off" settings are not here: zero is a meaning
# for them).
POSITIVE = {
    ("limits", "max_frame_bytes"),
    ("limits", "max_command_bytes"),
    ("limits", "max_text_chars"),
    ("limits", "viewer_commands_per_s"),
    ("limits", "viewer_command_burst"),
    ("limits", "staff_commands_per_s"),
    ("limits", "staff_command_burst"),
    ("limits", "room_danmaku_per_s"),
    ("limits", "room_danmaku_burst"),
    ("limits", "join_timeout_s"),
    ("limits", "heavy_requests_per_s"),
    ("limits", "heavy_request_burst"),
    ("limits", "max_body_bytes"),
    ("limits", "http_header_timeout_s"),
    ("limits", "http_body_timeout_s"),
    ("limits", "http_idle_timeout_s"),
    ("limits", "max_http_connections"),
    ("limits", "tokens_kept_per_room"),
    ("hub", "tick_ms"),
    ("hub", "write_buffer_high_bytes"),
    ("hub", "slow_timeout_s"),
    ("hub", "heartbeat_s"),
    ("hub", "heartbeat_timeout_s"),
    ("bridges.bili", "heartbeat_s"),
    ("bridges.bili", "connect_timeout_s"),
    ("bridges.bili", "max_message_bytes"),
    ("bridges.bili", "max_inflated_bytes"),
    ("bridges", "backoff_min_s"),
    ("bridges", "backoff_max_s"),
    ("bridges", "lease_s"),
    ("bridges", "renew_s"),
    ("bridges.webhook", "max_skew_s"),
}
# The greatest value each setting may have, where there is one.
AT_MOST: dict[tuple[str, str], float] = {
    ("server", "port"): 65535,
    ("hub", "degrade_floor"): 3,
    ("hub", "read_batch_ms"): 1000,
}
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def bounds(section: str, key: str) -> str:
    """The allowed range of a numeric setting in words, for the reference."""
    high = AT_MOST.get((section, key))
    floor = "more than 0" if (section, key) in POSITIVE else "0 or more"
    return f"{floor}, at most {high:g}" if high is not None else floor


def check(settings: Settings) -> None:
    """Raise ConfigError for the first setting out of its range, naming it and why."""
    for section in SECTIONS:
        values = section_of(settings, section)
        for f in setting_fields(values):
            value = getattr(values, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            high = AT_MOST.get((section, f.name), math.inf)
            low_ok = value > 0 if (section, f.name) in POSITIVE else value >= 0
            if not math.isfinite(value) or not low_ok or value > high:
                why = "must be a number" if not math.isfinite(value) else "must be"
                _fail(section, f.name, f"is {value!r}; it {why} {bounds(section, f.name)}")
    _check_relations(settings)


def _check_relations(settings: Settings) -> None:
    server, hub = settings.server, settings.hub
    if server.secret and len(server.secret.encode()) < MIN_SECRET_BYTES:
        _fail(
            "server",
            "secret",
            f"is {len(server.secret.encode())} bytes; it signs room tokens (HS256), so it "
            f"must be at least {MIN_SECRET_BYTES} (RFC 7518 3.2): generate one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))', or leave it empty "
            "to have one generated",
        )
    if server.log_level not in LOG_LEVELS:
        _fail("server", "log_level", f"is {server.log_level!r}; use one of {', '.join(LOG_LEVELS)}")
    if hub.write_buffer_low_bytes > hub.write_buffer_high_bytes:
        _fail(
            "hub",
            "write_buffer_low_bytes",
            f"is {hub.write_buffer_low_bytes}, over hub.write_buffer_high_bytes "
            f"({hub.write_buffer_high_bytes}): a slow connection could never drain under it",
        )
    if hub.heartbeat_timeout_s <= hub.heartbeat_s:
        _fail(
            "hub",
            "heartbeat_timeout_s",
            f"is {hub.heartbeat_timeout_s:g}, not over hub.heartbeat_s ({hub.heartbeat_s:g}): "
            "every idle connection would be closed before its pong could arrive",
        )
    bridges = settings.bridges
    if bridges.lease_s < 2 * bridges.renew_s:
        _fail(
            "bridges",
            "lease_s",
            f"is {bridges.lease_s:g}, under twice bridges.renew_s ({bridges.renew_s:g}): "
            "one late renewal would let another node take a running bridge over",
        )


def _fail(section: str, key: str, why: str) -> None:
    raise ConfigError(f"{section}.{key} ({env_name(section, key)}) {why}")
