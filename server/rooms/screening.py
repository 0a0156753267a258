"""Where user text enters a room, the text filter (server/moderation/screen.py) decides
on it: danmaku, the fields of viewer commands and host actions that kinds declare as
words (``Op.words``, ``Kind.action_words``), and guests' display names.

A room's own blocked words are private to its staff (they would tell a spammer what to
dodge), so they are not a room setting, which every viewer receives: they live in the
store in a box no interaction id can take (``~words``), set and read over REST
(PUT/GET /api/v1/rooms/{id}/blocklist). Each node reads them when it first serves the
room and again when its copy is older than ``WORDS_TTL_S``, so a change reaches every
node within seconds (at once on the node that took it).

Reserved names: a guest may not take a name that, normalised, holds a staff word
(host, 主持人, 管理员, admin, moderator, official, 官方, ...) or the name of a host or
moderator who joined the room on this node. Staff are told apart by their role, which
travels with every event (``user.role``), never by their name.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from protocol.messages import CommandError
from server.auth import STAFF_ROLES, Identity
from server.backends.base import BackendUnavailable, RoomNotFound, RoomRecord, Store
from server.interactions.kind import Kind, Op
from server.moderation.blocklist import ACTIONS, Blocklist, BlocklistError, Entry, check_entry
from server.moderation.screen import TextFilter, Verdict, load_blocklist
from server.moderation.text import clean_for_display, normalise, normalise_with_origin
from server.rooms.served import ServedRoom

WORDS_BOX = "~words"
WORDS_RECORD = "words"
WORDS_TTL_S = 5.0
MAX_ROOM_WORDS = 500
RESERVED_NAMES = (
    "host", "hosts", "主持人", "管理员", "房管", "admin*", "administrator*",
    "moderator*", "mod", "mods", "official*", "官方", "staff", "客服", "system", "系统",
)  # fmt: skip

REFUSAL = {
    "blocklist": ("text_refused", "the text holds a word this room does not allow"),
    "room_words": ("text_refused", "the text holds a word this room does not allow"),
    "link": ("links_not_allowed", "links are not allowed in this room"),
    "phone": ("links_not_allowed", "phone numbers are not allowed in this room"),
    "contact": ("links_not_allowed", "WeChat and QQ ids are not allowed in this room"),
}


def refusal(verdict: Verdict, cid: int | None, window_s: float) -> CommandError:
    if verdict.reason == "duplicate":
        return CommandError(
            "duplicate_text",
            "you sent the same text a moment ago",
            cid,
            retry_after_ms=max(1, round(window_s * 1000)),
        )
    code, message = REFUSAL.get(verdict.reason, REFUSAL["blocklist"])
    return CommandError(code, message, cid)


def _get(fields: Mapping[str, Any], path: str) -> Any:
    value: Any = fields
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _put(fields: Mapping[str, Any], path: str, text: str) -> dict[str, Any]:
    head, _, rest = path.partition(".")
    inner = fields.get(head)
    value = _put(inner, rest, text) if rest and isinstance(inner, Mapping) else text
    return {**fields, head: value}


class TextGuard:
    """Runs a room's incoming text through the text filter and the name rules, and keeps
    each room's own blocked words (read from and written to the store)."""

    def __init__(
        self,
        store: Store,
        text_filter: TextFilter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.filter = text_filter or TextFilter(load_blocklist())
        self._clock = clock
        self._words: dict[str, tuple[Blocklist, list[dict[str, str]], float]] = {}
        self._loading: set[str] = set()
        self._written: dict[str, int] = {}  # room id -> words written here (a count)
        self._staff: dict[str, set[str]] = {}  # room id -> normalised staff names seen here
        self._reserved = Blocklist(check_entry(w, "reject") for w in RESERVED_NAMES)

    # --- checking text ---------------------------------------------------------------------

    def check(
        self,
        room_id: str,
        settings: Mapping[str, Any],
        identity: Identity,
        text: str,
        *,
        key: str = "",
        cid: int | None = None,
        channel: str = "",
    ) -> Verdict:
        """The filter's verdict on one piece of ``identity``'s text in the room; raises the
        refusal for ``reject``. Repeats are checked per ``channel`` (danmaku, an op; ""
        for none): the same words as a danmaku and then as a question are not spam.
        Staff may send links and are not checked for repeats; what the filter would hold
        from them is delivered."""
        staff = identity.role in STAFF_ROLES
        verdict = self.filter.check(
            text,
            room_words=self.room_words(room_id),
            allow_links=staff or bool(settings.get("allow_links", False)),
            sender=None if staff or not channel else (room_id, identity.user_id, channel),
            key=key,
            now=self._clock(),
        )
        if verdict.refused:
            raise refusal(verdict, cid, self.filter.duplicate_window_s)
        if verdict.held and staff:
            return Verdict("pass", verdict.reason, verdict.text)
        return verdict

    def danmaku(
        self, served: ServedRoom | None, identity: Identity, text: str, cid: int | None
    ) -> Verdict:
        if served is None:
            return self.check("", {}, identity, text, cid=cid)
        settings = served.record.settings
        return self.check(served.id, settings, identity, text, cid=cid, channel="danmaku")

    def command(
        self,
        served: ServedRoom,
        identity: Identity,
        op: Op,
        key: str | None,
        fields: Mapping[str, Any],
    ) -> tuple[Mapping[str, Any], bool]:
        """A viewer command's fields with its words filtered, and whether one was held
        (an op that cannot hold text has it refused instead)."""
        held = False
        for path in op.words:
            text = _get(fields, path)
            if not isinstance(text, str):
                continue  # the kind refuses a missing or wrong field itself
            verdict = self.check(served.id, served.record.settings, identity, text, key=key or "")
            if verdict.held and not op.holds:
                raise CommandError("text_refused", "the text needs a moderator's review")
            held = held or verdict.held
            fields = _put(fields, path, verdict.text)
        return fields, held

    def action(
        self,
        room_id: str,
        kind: Kind[Any, Any],
        action: str,
        settings: Mapping[str, Any],
        fields: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        """A host action's fields with the words it carries filtered (a Q&A answer)."""
        identity = Identity("", "", "host", room_id)
        for path in kind.action_words.get(action, ()):
            text = _get(fields, path)
            if isinstance(text, str):
                fields = _put(fields, path, self.check(room_id, settings, identity, text).text)
        return fields

    # --- names -------------------------------------------------------------------------------

    def note_staff(self, room_id: str, identity: Identity) -> None:
        """A host or moderator joined: guests may not take their name here."""
        if identity.role in STAFF_ROLES and identity.name:
            folded = normalise(identity.name)
            if folded:
                self._staff.setdefault(room_id, set()).add(folded)

    def forget(self, room_id: str) -> None:
        self._staff.pop(room_id, None)
        self._words.pop(room_id, None)
        self._written.pop(room_id, None)

    def name(self, record: RoomRecord, name: str) -> str:
        """A guest's display name as shown (cleaned), or ``name_reserved`` when it poses
        as staff, or the filter's refusal when it holds a blocked word or a link."""
        n = normalise_with_origin(name)
        folded, padded = n.text, f" {n.text} "
        staff = self._staff.get(record.id, ())
        if self._reserved.find(n) or any(
            (f" {s} " in padded) or (s in folded and not s.isascii()) for s in staff
        ):
            raise CommandError(
                "name_reserved", f"the name {name[:40]!r} is kept for the room's hosts"
            )
        guest = Identity("", name, "viewer", record.id, guest=True)
        verdict = self.check(record.id, record.settings, guest, name)
        if verdict.action != "pass":
            raise CommandError("text_refused", "the name holds a word this room does not allow")
        return clean_for_display(name)

    # --- the room's own words ----------------------------------------------------------------

    def room_words(self, room_id: str) -> Blocklist | None:
        """The room's own words as this node last read them; an old copy is read again
        in the background (the text in hand is checked against the copy in memory)."""
        held = self._words.get(room_id)
        if (held is None or self._clock() - held[2] > WORDS_TTL_S) and room_id:
            if room_id not in self._loading:
                self._loading.add(room_id)
                with contextlib.suppress(RuntimeError):  # no loop: a plain unit test
                    asyncio.get_running_loop().create_task(self._reload(room_id))
        return held[0] if held is not None else None

    async def _reload(self, room_id: str) -> None:
        try:
            await self.load(room_id)
        except (BackendUnavailable, RoomNotFound):
            pass
        finally:
            self._loading.discard(room_id)

    async def load(self, room_id: str) -> list[dict[str, str]]:
        """The room's words from the store (kept here, unless a write here came first)."""
        written = self._written.get(room_id, 0)
        records = await self.store.records(room_id, WORDS_BOX)
        words = list((records.get(WORDS_RECORD) or {}).get("words", []))
        if self._written.get(room_id, 0) == written:  # else the read may be older
            self._written[room_id] = self._written.get(room_id, 0) + 1
        self._keep(room_id, words)
        return words

    def _keep(self, room_id: str, words: list[dict[str, str]]) -> None:
        entries = [Entry(w["word"], w["action"]) for w in words]
        self._words[room_id] = (Blocklist(entries), words, self._clock())

    async def set_words(self, room_id: str, raw: Any) -> list[dict[str, str]]:
        """Replace the room's own words with ``raw`` (``[{"word", "action"}]``); refuses
        ``invalid_field`` with what is wrong, and then changes nothing."""
        if not isinstance(raw, list) or len(raw) > MAX_ROOM_WORDS:
            raise CommandError(
                "invalid_field", f"words must be a list of at most {MAX_ROOM_WORDS} entries"
            )
        words: list[dict[str, str]] = []
        for k, item in enumerate(raw):
            word = item.get("word") if isinstance(item, dict) else None
            action = item.get("action", "reject") if isinstance(item, dict) else None
            if not isinstance(word, str) or not isinstance(action, str):
                raise CommandError("invalid_field", f"words[{k}] must be {{word, action}}")
            try:
                entry = check_entry(word, action)
            except BlocklistError as exc:
                raise CommandError(
                    "invalid_field", f"words[{k}]: {exc} ({', '.join(ACTIONS)})"
                ) from None
            words.append({"word": entry.word, "action": entry.action, "as_typed": word})
        record = {"words": words}
        await self.store.apply(
            room_id, WORDS_BOX, WORDS_RECORD, f"w-{secrets.token_hex(8)}", record, {}
        )
        self._written[room_id] = self._written.get(room_id, 0) + 1
        self._keep(room_id, words)
        return words


__all__ = ["TextFilter", "TextGuard", "Verdict"]
