"""The text safety pipeline (issue 15): one decision per piece of viewer text.

:meth:`TextFilter.check` runs, in order: the blocklist and the room's own words
(:mod:`.blocklist`, on the normalised copy of :mod:`.text`), links and contacts
(:mod:`.links`, unless the room allows them), and duplicate spam (the sender's same
normalised text again within a window). The strongest outcome wins: ``reject`` (the
sender gets an error, nothing is delivered), ``review`` (held: a post waits in the
wall's queue, a question is hidden until a host unhides it, a danmaku reaches nobody
but its sender), ``mask`` (delivered with the words as ＊) or ``pass``. What viewers see
is always the sender's text cleaned for display, never the normalised copy.

Every decision is counted by action and reason (``count``), never by the word.
Pure code: the blocklist file is read once, at start, by :func:`load_blocklist`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from server.moderation.blocklist import ACTIONS, Blocklist, check_entry, read_file
from server.moderation.links import find_link
from server.moderation.text import clean_for_display, fast_copies, normalise_with_origin

log = logging.getLogger("hudong.moderation")

# config/blocklist.txt: in a checkout, or inside the wheel (pyproject.toml, package-dir)
_CHECKOUT = Path(__file__).resolve().parents[2] / "config" / "blocklist.txt"
_PACKAGED = Path(__file__).resolve().parents[1] / "defaults" / "blocklist.txt"
DEFAULT_BLOCKLIST = _PACKAGED if _PACKAGED.exists() else _CHECKOUT
MAX_SENDERS = 100_000  # duplicate memory: the oldest senders are forgotten past this

# reason of each decision: blocklist (the node's list), room_words (the host's),
# link / phone / contact, duplicate; "clean" for a pass.
REASONS = ("clean", "blocklist", "room_words", "link", "phone", "contact", "duplicate")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What happens to a piece of text: ``action`` (pass, mask, review, reject), why
    (one of ``REASONS``), and the text to deliver (the sender's, cleaned and masked)."""

    action: str
    reason: str
    text: str

    @property
    def refused(self) -> bool:
        return self.action == "reject"

    @property
    def held(self) -> bool:
        return self.action == "review"


def load_blocklist(path: str | Path = "") -> Blocklist:
    """The node's blocklist from ``path`` (empty: the config/blocklist.txt that comes with
    hudong; none when that is missing, with a warning)."""
    target = Path(path) if path else DEFAULT_BLOCKLIST
    if not target.exists():
        if path:
            raise FileNotFoundError(f"blocklist {target} does not exist")
        log.warning("no blocklist at %s: only links, contacts and duplicates are filtered", target)
        return Blocklist([])
    return Blocklist(read_file(target))


class TextFilter:
    """Decides on each piece of viewer text; keeps each sender's last text for the
    duplicate check, and counts every decision through ``count(action, reason)``."""

    def __init__(
        self,
        blocklist: Blocklist,
        *,
        duplicate_window_s: float = 10.0,
        count: Callable[[str, str], None] | None = None,
    ) -> None:
        self.blocklist = blocklist
        self.duplicate_window_s = duplicate_window_s
        self._count = count or (lambda action, reason: None)
        self._last: dict[tuple[str, ...], tuple[str, str, float]] = {}

    def check(
        self,
        text: str,
        *,
        room_words: Blocklist | None = None,
        allow_links: bool = False,
        sender: tuple[str, ...] | None = None,
        key: str = "",
        now: float = 0.0,
    ) -> Verdict:
        """The verdict on ``text``. ``sender`` (room id, user id, channel): checked for
        duplicates (None: not checked); ``key``: the command's idempotency key, so a retry
        of the same command is not a duplicate; ``allow_links``: the room's setting."""
        once, twice = fast_copies(text)
        action = self.blocklist.strongest(once, twice)
        reason = "blocklist"
        if room_words is not None and len(room_words):
            own = room_words.strongest(once, twice)
            if own is not None and (action is None or ACTIONS.index(own) < ACTIONS.index(action)):
                action, reason = own, "room_words"
        if action == "reject":
            return self._decide("reject", reason, text)
        if not allow_links:
            found = find_link(text)
            if found is not None:
                return self._decide("reject", found, text)
        if sender is not None and once and self._repeated(sender, once, key, now):
            return self._decide("reject", "duplicate", text)
        if action == "review":
            return self._decide("review", reason, clean_for_display(text))
        if action == "mask":
            # Only now, where the words were: the slower copy that keeps the origins.
            n = normalise_with_origin(text)
            hits = self.blocklist.find(n) + (room_words.find(n) if room_words else [])
            spans = [(h.first, h.last) for h in hits if h.action == "mask"]
            return self._decide("mask", reason, clean_for_display(text, spans))
        return self._decide("pass", "clean", clean_for_display(text))

    def _decide(self, action: str, reason: str, text: str) -> Verdict:
        self._count(action, reason)
        return Verdict(action, reason, text)

    def _repeated(self, sender: tuple[str, ...], folded: str, key: str, now: float) -> bool:
        """Whether the sender sent the same (normalised) text within the window; remembers
        this one. The same key again is a retry of one command, not a repeat."""
        last = self._last.pop(sender, None)
        self._last[sender] = (folded, key, now)
        if len(self._last) > MAX_SENDERS:
            del self._last[next(iter(self._last))]
        if last is None:
            return False
        was, was_key, at = last
        return was == folded and (not key or key != was_key) and now - at < self.duplicate_window_s


def room_blocklist(words: list[dict[str, str]]) -> Blocklist:
    """A room's own words (``[{"word": ..., "action": ...}]``, checked when set)."""
    return Blocklist(check_entry(w["word"], w["action"]) for w in words)
