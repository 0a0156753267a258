"""Shared parts of the fuzz tests: reproducible Hypothesis settings and strategies for
commands that look valid but carry broken fields.

CI runs a fixed number of cases in a fixed order (``derandomize``, no example database),
so a failure shows up again on the next run. ``HUDONG_FUZZ_SCALE`` multiplies every
count for a longer local run, e.g. ``HUDONG_FUZZ_SCALE=20 python3 -m pytest
tests/test_fuzz_protocol.py``; ``HUDONG_FUZZ_RANDOM=1`` lets Hypothesis draw new cases on
every run (the frames of the live test keep their fixed seed).
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from server.interactions.registry import Registry

SCALE = float(os.environ.get("HUDONG_FUZZ_SCALE", "1"))
RANDOM = bool(os.environ.get("HUDONG_FUZZ_RANDOM"))


def cases(n: int) -> int:
    """``n`` cases, times ``HUDONG_FUZZ_SCALE``."""
    return max(1, round(n * SCALE))


def fuzz_settings(n: int) -> settings:
    """Hypothesis settings for ``n`` (scaled) reproducible cases."""
    return settings(
        max_examples=cases(n),
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- values ---------------------------------------------------------------------------

# Text a person could type, and text no one should: every plane, control and format
# characters (bidi overrides, zero-width), combining marks, CJK.
ANY_TEXT = st.text(max_size=40)
ODD_TEXT = st.text(
    st.characters(
        # Surrogates (Cs) are left out: they cannot travel in UTF-8 or MessagePack; the
        # codec tests send them raw.
        categories=("Cc", "Cf", "Mn", "Me", "Zs", "Zl", "Zp", "Lo", "So"),
    ),
    max_size=40,
)
HUGE_TEXT = st.builds(
    lambda ch, n: ch * n, st.sampled_from("x弹\u202e\u0301😀"), st.integers(1, 5000)
)
TEXT = ANY_TEXT | ODD_TEXT | HUGE_TEXT | st.sampled_from(["", " ", "\n", "#ffffff", "p1", "zh-CN"])

NUMBERS = (
    st.integers()
    | st.sampled_from([0, -1, 1, 2**31, 2**53, 2**53 - 1, 2**63 - 1, -(2**63), 2**64 - 1])
    | st.floats(allow_nan=False)
    | st.sampled_from([0.5, -0.0, 1e308, float("inf"), float("-inf")])
)
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT


def nested(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=10,
    )


# Anything a client could send (NaN is left out so that a value equals itself).
VALUES = nested(SCALARS)
# What both codecs can write: integers within 64 bits.
WIRE_VALUES = nested(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | TEXT
)

# The fields any command of the protocol reads (PROTOCOL.md, "Commands").
FIELDS = (
    "op", "id", "key", "room", "token", "name", "lang", "text", "color", "mode",
    "interaction", "option", "options", "ranking", "slot", "choice", "answer", "question",
    "action", "spec", "kind", "user", "reason", "emoji", "count", "ms", "settings",
)  # fmt: skip


# The interactions that tests/test_fuzz_live.py makes from the kinds' examples, the
# built-in ones every room has, one that exists nowhere; and their options' ids.
EXAMPLES = [k.example for k in Registry() if k.example is not None]
INTERACTIONS = [*(e["id"] for e in EXAMPLES), *(k.builtin for k in Registry() if k.builtin), "nope"]
OPTIONS = [
    o["id"]
    for e in EXAMPLES
    for options in [e.get("options", []), *(s.get("options", []) for s in e.get("slots", []))]
    for o in options
]


def good_value(field: str) -> st.SearchStrategy[Any]:
    """A value that fits ``field`` in most commands (so the broken one is what fails)."""
    return {
        "id": st.integers(0, 2**53 - 1),
        "key": st.from_regex(r"\A[A-Za-z0-9_.:-]{1,64}\Z"),
        "room": st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z"),
        "interaction": st.sampled_from(INTERACTIONS),
        "color": st.from_regex(r"\A#[0-9a-fA-F]{6}\Z"),
        "mode": st.sampled_from(["scroll", "top", "bottom"]),
        "lang": st.sampled_from(["zh-CN", "en", "ja-JP"]),
        "option": st.sampled_from(OPTIONS) | st.integers(0, 5),
        "text": st.text(min_size=1, max_size=30),
        "action": st.sampled_from(["open", "close", "mute", "pin", "x"]),
        "name": st.text(max_size=40),
    }.get(field, VALUES)


# What each core op reads; every other op is a viewer command of a kind, which reads an
# idempotency key, the interaction and its own fields.
NEEDS = {
    "join": ("room", "name", "lang"),
    "danmaku": ("text", "color", "mode"),
    "ping": (),
    "host": ("action", "interaction"),
}
VIEWER_NEEDS = ("key", "interaction", "option", "text")


@st.composite
def commands(draw: st.DrawFn, ops: tuple[str, ...]) -> dict[str, Any]:
    """A command of one of ``ops`` with the fields it reads, fitting, and some others;
    then up to three of them broken: a wrong type, an odd or huge string, a missing
    field or an unknown one. (Unbroken ones are the commands the broken ones pass as.)"""
    op = draw(st.sampled_from(ops))
    fields = [*NEEDS.get(op, VIEWER_NEEDS)]
    fields += draw(st.lists(st.sampled_from(FIELDS[1:]), max_size=3, unique=True))
    obj: dict[str, Any] = {"op": op, "id": draw(good_value("id"))}
    for field in fields:
        obj[field] = draw(good_value(field))
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(FIELDS))
        how = draw(st.sampled_from(["value", "drop", "extra"]))
        if how == "drop":
            obj.pop(target, None)
        elif how == "extra":
            obj[draw(st.text(min_size=1, max_size=12))] = draw(VALUES)
        else:
            obj[target] = draw(VALUES)
    return obj
