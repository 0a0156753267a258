"""Room settings: their names, defaults and rules, in one table (PROTOCOL.md, "REST API").

A room's settings travel in every snapshot (``room.settings``), so they hold nothing
private. A host or the admin changes them with ``PATCH /api/v1/rooms/{id}``; each
value is checked here, and a wrong one is refused with a message that says what was
expected, before anything changes. Pure code: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
# A logo is served by hudong itself (the pages load nothing from other hosts): a path
# on this server ("/assets/logo.png"), never "//host/…" or "http://…".
LOGO_PATH_RE = re.compile(r"^/(?!/)[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,499}$")
ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # an interaction id (PROTOCOL.md, "Ids")
MAX_AGENDA = 200
ROOM_MODES = ("open", "slow", "staff")
# Retention (PROTOCOL.md, "Privacy"; server/backends/retention.py): seconds, 0: no limit.
DAY_S = 24 * 3600
MAX_RETENTION_S = 400 * DAY_S
DANMAKU_RETENTION_S = DAY_S
CONTENT_RETENTION_S = 30 * DAY_S
PERSONAL_RETENTION_S = 30 * DAY_S
WALL_MODERATION = ("pre", "post")


class SettingError(ValueError):
    """A room setting that is unknown or has a value that does not fit."""


@dataclass(frozen=True, slots=True)
class RoomSetting:
    """One room setting: its default, how a value is checked, what it does."""

    default: Any
    check: Callable[[str, Any], Any]
    doc: str


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingError(f"setting {name} must be true or false, got {value!r:.40}")
    return value


def _int_range(lo: int, hi: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if type(value) is not int or not lo <= value <= hi:
            raise SettingError(f"setting {name} must be an integer {lo}..{hi}, got {value!r:.40}")
        return value

    return check


def _choice(choices: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if value not in choices:
            raise SettingError(
                f"setting {name} must be one of {', '.join(choices)}, got {value!r:.40}"
            )
        return str(value)

    return check


def _color(name: str, value: Any) -> str:
    if not isinstance(value, str) or not COLOR_RE.match(value):
        raise SettingError(f"setting {name} must be a colour '#rrggbb', got {value!r:.40}")
    return value.lower()


def _logo(name: str, value: Any) -> str:
    if not isinstance(value, str) or (value and not LOGO_PATH_RE.match(value)):
        raise SettingError(
            f"setting {name} must be empty or a path on this server starting with / "
            f"(pages load nothing from other hosts), got {value!r:.60}"
        )
    return value


def _interaction(name: str, value: Any) -> str:
    if not isinstance(value, str) or (value and not ID_RE.match(value)):
        raise SettingError(f"setting {name} must be empty or an interaction id, got {value!r:.40}")
    return value


def _agenda(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_AGENDA:
        raise SettingError(f"setting {name} must be a list of at most {MAX_AGENDA} interaction ids")
    ids = [_interaction(name, item) for item in value]
    if "" in ids or len(set(ids)) != len(ids):
        raise SettingError(f"setting {name} must name each interaction once")
    return ids


ROOM_SETTINGS: dict[str, RoomSetting] = {
    "allow_anonymous": RoomSetting(True, _bool, "viewers may join without a token"),
    "degrade_floor": RoomSetting(
        0, _int_range(0, 3), "the lowest degrade level the room's stream is served at"
    ),
    "mode": RoomSetting(
        "open",
        _choice(ROOM_MODES),
        "who may send danmaku: open (everyone), slow (a viewer one per slow_mode_s), "
        "staff (hosts and moderators only)",
    ),
    "slow_mode_s": RoomSetting(5, _int_range(1, 600), "a viewer's interval in slow mode"),
    "wall_moderation": RoomSetting(
        "pre",
        _choice(WALL_MODERATION),
        "pre: wall posts wait for approval; post: they show at once and can be rejected",
    ),
    "danmaku_merge_s": RoomSetting(
        3,
        _int_range(0, 30),
        "identical danmaku within this many seconds show as one item on the overlay and the "
        'wall, its count growing in place ("666 ×37"); 0: never merge',
    ),
    "wall_danmaku": RoomSetting(False, _bool, "danmaku fly across the wall too"),
    "hide_vote_danmaku": RoomSetting(
        False,
        _bool,
        "a danmaku that counted as a vote or pick (a poll or co-design round taking "
        'danmaku) is not sent to anyone\'s scrolling layer, so "1 1 2 1" does not flood the '
        "stream; the bars still move",
    ),
    "brand_color": RoomSetting("#e4007f", _color, "main colour of the wall and overlay"),
    "accent_color": RoomSetting("#ffc400", _color, "second colour of the wall and overlay"),
    "logo_url": RoomSetting("", _logo, "logo on the wall: a path on this server, or empty"),
    "agenda": RoomSetting(
        [],
        _agenda,
        "the host's run-sheet: interaction ids in the order they run (others follow, oldest first)",
    ),
    "allow_links": RoomSetting(
        False, _bool, "viewers' text may carry links, phone numbers and WeChat/QQ ids"
    ),
    "on_screen": RoomSetting(
        "",
        _interaction,
        "the interaction the host pushed to the overlay and the wall (empty: they show "
        "what moved last)",
    ),
    "danmaku_retention_s": RoomSetting(
        DANMAKU_RETENTION_S,
        _int_range(0, MAX_RETENTION_S),
        "seconds the store keeps the room's danmaku (the replay buffer); 0: until the room "
        "is deleted",
    ),
    "content_retention_s": RoomSetting(
        CONTENT_RETENTION_S,
        _int_range(0, MAX_RETENTION_S),
        "seconds the store keeps questions and wall posts; 0: until the room is deleted",
    ),
    "personal_retention_s": RoomSetting(
        PERSONAL_RETENTION_S,
        _int_range(0, MAX_RETENTION_S),
        "seconds the store keeps personal data: who voted, picked, entered or was here "
        "and under which name, moderation records, and the keys of their commands; the "
        "counts stay; 0: until the room is deleted",
    ),
}

ROOM_SETTING_DEFAULTS: dict[str, Any] = {k: s.default for k, s in ROOM_SETTINGS.items()}


def check_settings(value: Any) -> dict[str, Any]:
    """Validate a partial settings object; return it normalised. Raises SettingError."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingError(f"settings must be an object, got {type(value).__name__}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        setting = ROOM_SETTINGS.get(key)
        if setting is None:
            known = ", ".join(ROOM_SETTINGS)
            raise SettingError(f"unknown room setting {key!r:.40}; known: {known}")
        out[key] = setting.check(key, item)
    return out
