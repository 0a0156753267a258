"""Interactions in rooms: the I/O side of :mod:`server.interactions`.

The domain rules are pure (``server/interactions``); this module loads definitions
and counters from the Store, runs the rules, applies contributions through
``Store.apply`` (acknowledged only after the store committed them) and computes the
views that viewers, screens and hosts see.

A definition is stored per interaction id as ``{"kind", "spec", "state",
"created_at"}`` (a draw's state holds its secret seed until it is drawn, so
definitions never leave the server as they are: views do). Boxes (see
:mod:`server.interactions`) are stored as ``<id>`` or ``<id>/<box>``.

Views are computed from the store, not cached counters: when any node changes an
interaction it marks it stale in every node's copy of the room (locally, and through
the relay), and each node re-reads it at its next state flush (about 4 per second),
so views stay right across nodes without cache coherence.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from server.auth import Identity
from server.backends.base import Store
from server.interactions import checkin, codesign, draws, polls, qa, quiz, wall
from server.interactions.base import (
    Contribution,
    InteractionError,
    Status,
    box_key,
    merge_counters,
    refusal,
)
from server.interactions.base import transition as lifecycle

if TYPE_CHECKING:
    from server.backends.base import ApplyResult

KINDS = ("poll", "quiz", "codesign", "draw", "qa", "checkin", "wall")
# Every room has one check-in and one wall; hosts cannot create more of them.
BUILT_IN_KINDS = ("checkin", "wall")
CHECKIN_ID = "checkin"
WALL_ID = wall.WALL_ID
POSTS_BOX = "posts"  # the wall: one record per post
QUESTIONS_BOX = "questions"  # Q&A: the asked questions, one record per question
PRESENCE_BOX = "presence"  # draws from presence: viewers who joined and did not leave
# Viewer commands: op -> the kinds that take it.
VIEWER_OPS = {
    "vote": "poll",
    "answer": "quiz",
    "pick": "codesign",
    "unpick": "codesign",
    "enter": "draw",
    "ask": "qa",
    "upvote": "qa",
    "unvote": "qa",
    "checkin": "checkin",
    "post": "wall",
}
# Viewer commands whose record keeps the viewer's display name beside the contribution.
NAMED_OPS = frozenset({"vote", "answer", "enter"})
HOST_ACTIONS = {
    "poll": ("open", "close", "reveal"),
    "quiz": ("ask", "close", "reveal", "finish"),
    "codesign": ("open", "lock", "lock_all", "reveal"),
    "draw": ("run",),
    "qa": ("open", "close", "answer", "pin", "unpin", "hide", "unhide"),
    "checkin": ("open", "close"),
    "wall": ("open", "close", *wall.HOST_ACTIONS),
}


@dataclass(frozen=True, slots=True)
class Definition:
    kind: str
    spec: Any
    state: Any
    created_at: float
    audit: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "spec": self.spec.to_dict(),
            "state": self.state.to_dict(),
            "created_at": self.created_at,
            "audit": self.audit,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Definition:
        kind = data["kind"]
        spec_type, state_type = _TYPES[kind]
        return cls(
            kind,
            spec_type.from_dict(data["spec"]),
            state_type.from_dict(data["state"]),
            data["created_at"],
            data.get("audit"),
        )


_TYPES: dict[str, tuple[Any, Any]] = {
    "poll": (polls.PollSpec, Status),
    "quiz": (quiz.QuizSpec, quiz.QuizState),
    "codesign": (codesign.DesignSpec, codesign.DesignState),
    "draw": (draws.DrawSpec, draws.DrawState),
    "qa": (qa.QASpec, Status),
    "checkin": (checkin.CheckinSpec, Status),
    "wall": (wall.WallSpec, Status),
}

DEFAULT_CHECKIN = Definition(
    "checkin", checkin.CheckinSpec(CHECKIN_ID, "Check-in"), Status("open", opened_at=0.0), 0.0
)
DEFAULT_WALL = Definition("wall", wall.DEFAULT_SPEC, Status("open", opened_at=0.0), 0.0)
BUILT_IN = {CHECKIN_ID: DEFAULT_CHECKIN, WALL_ID: DEFAULT_WALL}


def new_definition(kind: Any, raw_spec: Any, now: float) -> Definition:
    """Validate a host's new interaction; raises InteractionError(invalid_field)."""
    if kind not in KINDS or kind in BUILT_IN_KINDS:
        kinds = ", ".join(k for k in KINDS if k not in BUILT_IN_KINDS)
        raise InteractionError("invalid_field", f"kind must be one of {kinds}, got {kind!r:.40}")
    spec = _TYPES[kind][0].from_dict(raw_spec)
    if kind == "draw":
        state: Any = draws.open_draw(spec, draws.new_seed(), now)
    elif kind in ("poll", "qa"):
        state = Status()
    elif kind == "quiz":
        state = quiz.QuizState()
    else:
        state = codesign.DesignState()
    return Definition(kind, spec, state, now)


def boxes(definition: Definition) -> list[str]:
    """The contribution boxes whose counters make up the interaction's results."""
    spec = definition.spec
    if definition.kind == "codesign":
        return [slot.id for slot in spec.slots]
    if definition.kind == "quiz":
        return [q.id for q in spec.questions]
    return [""]


class RoomActivities:
    """Runs interactions for the hub and the REST API; every method talks to the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- reading ---------------------------------------------------------------------

    async def definitions(self, room_id: str) -> dict[str, Definition]:
        raw = await self.store.interactions(room_id)
        found = {iid: Definition.from_dict(data) for iid, data in raw.items()}
        for iid, default in BUILT_IN.items():
            found.setdefault(iid, default)
        return found

    async def definition(self, room_id: str, interaction_id: str) -> Definition:
        found = (await self.definitions(room_id)).get(interaction_id)
        if found is None:
            raise InteractionError("unknown_target", f"no interaction {interaction_id!r:.64}")
        return found

    async def counters(self, room_id: str, iid: str, definition: Definition) -> dict[str, int]:
        parts = [await self.store.counters(room_id, box_key(iid, b)) for b in boxes(definition)]
        return merge_counters(*parts)

    async def questions(self, room_id: str, iid: str) -> dict[str, qa.Question]:
        records = await self.store.records(room_id, box_key(iid, QUESTIONS_BOX))
        return {qid: qa.Question.from_dict(r) for qid, r in records.items()}

    async def posts(self, room_id: str) -> dict[str, wall.Post]:
        records = await self.store.records(room_id, box_key(WALL_ID, POSTS_BOX))
        return {pid: wall.Post.from_dict(r) for pid, r in records.items()}

    async def view(
        self, room_id: str, iid: str, definition: Definition, *, private: bool = False
    ) -> dict[str, Any]:
        """What viewers see of an interaction (``private``: what hosts see)."""
        now = time.time()
        kind, spec, state = definition.kind, definition.spec, definition.state
        out: dict[str, Any] = {"id": iid, "kind": kind}
        counters = await self.counters(room_id, iid, definition)
        if kind == "poll":
            records = None
            if spec.kind == "ranked" and state.at(now).phase in ("closed", "revealed"):
                records = list((await self.store.records(room_id, iid)).values())
            out["spec"] = spec.to_dict()
            out["status"] = state.at(now).to_dict()
            out["results"] = (
                {**polls.results(spec, counters, records), "hidden": False}
                if private
                else polls.visible_results(spec, state, counters, records, now=now)
            )
        elif kind == "quiz":
            out["spec"] = spec.to_dict() if private else spec.public(state)
            out["state"] = state.to_dict()
            out["accepting"] = state.accepting(now)
            out["results"] = [
                quiz.question_results(spec, state, qid, counters)
                for qid in state.asked
                if private or state.is_revealed(qid)
            ]
            revealed = [qid for qid in state.asked if state.is_revealed(qid)]
            by_question = {
                qid: await self.store.records(room_id, box_key(iid, qid)) for qid in revealed
            }
            out["leaderboard"] = quiz.leaderboard(spec, state, by_question)
        elif kind == "codesign":
            out["spec"] = spec.to_dict()
            out["state"] = state.to_dict()
            out["results"] = codesign.results(spec, state, counters)
            if state.phase == "revealed":
                out["final"] = codesign.final_design(spec, counters)
        elif kind == "draw":
            out["spec"] = spec.to_dict()
            out["state"] = state.public()
            out["entrants"] = counters.get("n", 0)
            if state.phase == "drawn":
                out["names"] = await self.winner_names(room_id, spec, state.winners)
        elif kind == "qa":
            questions = await self.questions(room_id, iid)
            out["spec"] = spec.to_dict()
            out["status"] = state.at(now).to_dict()
            out["questions"] = qa.board(
                questions.values(), counters, include_hidden=private, private=private
            )
        elif kind == "wall":
            out["spec"] = spec.to_dict()
            out["status"] = state.at(now).to_dict()
            out.update(wall.board((await self.posts(room_id)).values(), private=private))
        else:
            out["spec"] = spec.to_dict()
            out["status"] = state.at(now).to_dict()
            out["count"] = checkin.count(counters)
        return out

    # --- host operations ---------------------------------------------------------------

    async def create(self, room_id: str, kind: Any, raw_spec: Any) -> tuple[str, int]:
        definition = new_definition(kind, raw_spec, time.time())
        iid = definition.spec.id
        existing = await self.store.interactions(room_id)
        if iid in existing or iid in BUILT_IN:
            raise InteractionError("invalid_field", f"an interaction {iid!r} exists already")
        version = await self.store.put_interaction(room_id, iid, definition.to_dict())
        return iid, version

    async def act(
        self,
        room_id: str,
        iid: str,
        action: Any,
        params: dict[str, Any],
    ) -> tuple[int, dict[str, Any]]:
        """A host action; returns the room version and extra facts (draw winners)."""
        definition = await self.definition(room_id, iid)
        kind, spec, state = definition.kind, definition.spec, definition.state
        allowed = HOST_ACTIONS[kind]
        if action not in allowed:
            raise InteractionError(
                "invalid_field",
                f"a {kind} takes the actions {', '.join(allowed)}; got {action!r:.40}",
            )
        now = time.time()
        extra: dict[str, Any] = {}
        audit = definition.audit
        if kind == "poll":
            state = polls.transition(spec, state, action, now)
        elif kind == "wall" and action not in ("open", "close"):
            return await self._wall_host(room_id, action, params, now), extra
        elif kind in BUILT_IN_KINDS:
            # A check-in or wall can be closed and opened again any number of times.
            if action == "open" and state.phase != "open":
                state = Status("open", opened_at=now)
            elif action == "close" and state.phase == "open":
                state = lifecycle(state, "close", now)
        elif kind == "quiz":
            state = quiz.transition(spec, state, action, now, params.get("question"))
        elif kind == "codesign":
            state = codesign.transition(spec, state, action, now, params.get("slot"))
            if state.phase == "revealed" and definition.state.phase != "revealed":
                final = codesign.final_design(spec, await self.counters(room_id, iid, definition))
                extra["announce"] = {"type": "design_revealed", "interaction": iid, "final": final}
        elif kind == "qa" and action in ("open", "close"):
            state = lifecycle(state, action, now)
        elif kind == "qa":
            return await self._qa_host(room_id, iid, action, params, now), extra
        else:  # draw: run
            if state.phase == "drawn":
                return await self.store.room_version(room_id), {"winners": list(state.winners)}
            entrants = await self._entrants(room_id, iid, spec)
            excluded = (
                await self._previous_winners(room_id, iid)
                if (spec.exclude_previous_winners)
                else set()
            )
            state, record = draws.run_draw(spec, state, sorted(entrants), now, excluded=excluded)
            audit = record.to_dict()
            names = await self.winner_names(room_id, spec, state.winners)
            extra = {
                "winners": list(state.winners),
                "announce": {
                    "type": "draw_result",
                    "interaction": iid,
                    "title": spec.title,
                    "winners": list(state.winners),
                    "names": names,
                },
            }
        updated = Definition(kind, spec, state, definition.created_at, audit)
        return await self.store.put_interaction(room_id, iid, updated.to_dict()), extra

    async def _qa_host(
        self, room_id: str, iid: str, action: str, params: dict[str, Any], now: float
    ) -> int:
        questions = await self.questions(room_id, iid)
        qid = params.get("question")
        question = questions.get(qid) if isinstance(qid, str) else None
        if question is None:
            raise InteractionError("unknown_target", f"no question {qid!r:.40}")
        text = params.get("text")
        updated = qa.host_action(
            question, action, now, text=text if isinstance(text, str) else None
        )
        result = await self.store.apply(
            room_id,
            box_key(iid, QUESTIONS_BOX),
            question.id,
            f"host-{secrets.token_hex(8)}",
            updated.to_dict(private=True),
            {"asked": 1},
        )
        return result.version

    async def _wall_host(
        self, room_id: str, action: str, params: dict[str, Any], now: float
    ) -> int:
        pid = params.get("post")
        post = (await self.posts(room_id)).get(pid) if isinstance(pid, str) else None
        if post is None:
            raise InteractionError("unknown_target", f"no post {pid!r:.40}")
        updated = wall.host_action(post, action, now)
        if updated == post:
            return await self.store.room_version(room_id)
        result = await self.store.apply(
            room_id,
            box_key(WALL_ID, POSTS_BOX),
            post.id,
            f"host-{secrets.token_hex(8)}",
            updated.stored(),
            {"posted": 1},
        )
        return result.version

    async def winner_names(
        self, room_id: str, spec: draws.DrawSpec, winners: Any
    ) -> dict[str, str | None]:
        """Display names of a draw's winners, as their entries (or votes, or presence)
        recorded them; None where the record keeps no name (a vote or answer made
        before records carried names)."""
        if not winners:
            return {}
        box = {"presence": PRESENCE_BOX, "poll": spec.poll_id or ""}.get(spec.source, spec.id)
        records = await self.store.records(room_id, box)
        names: dict[str, str | None] = {}
        for winner in winners:
            name = (records.get(winner) or {}).get("name")
            names[winner] = name if isinstance(name, str) else None
        return names

    async def _entrants(self, room_id: str, iid: str, spec: draws.DrawSpec) -> set[str]:
        if spec.source == "poll":
            assert spec.poll_id is not None
            return set(await self.store.records(room_id, spec.poll_id))
        if spec.source == "presence":
            return set(await self.store.records(room_id, PRESENCE_BOX))
        # entry and keyword: the draw's own box (keyword danmaku are entered as they arrive)
        return set(await self.store.records(room_id, iid))

    async def _previous_winners(self, room_id: str, iid: str) -> set[str]:
        winners: set[str] = set()
        for other_id, other in (await self.definitions(room_id)).items():
            if other_id != iid and other.kind == "draw" and other.state.phase == "drawn":
                winners.update(other.state.winners)
        return winners

    async def audit(self, room_id: str, iid: str) -> dict[str, Any]:
        definition = await self.definition(room_id, iid)
        if definition.kind != "draw":
            raise InteractionError("invalid_field", f"{iid} is a {definition.kind}, not a draw")
        if definition.audit is None:
            raise InteractionError("not_open", f"draw {iid} has not been drawn yet")
        return definition.audit

    async def export(self, room_id: str, iid: str) -> list[dict[str, Any]]:
        definition = await self.definition(room_id, iid)
        if definition.kind != "checkin":
            raise InteractionError("invalid_field", f"{iid} is a {definition.kind}, not a check-in")
        return checkin.export(await self.store.records(room_id, iid))

    # --- viewer commands ---------------------------------------------------------------

    async def participate(
        self,
        room_id: str,
        identity: Identity,
        op: str,
        raw: dict[str, Any],
        key: str,
        known: dict[str, Definition] | None = None,
        *,
        wall_moderation: str = "pre",
    ) -> ApplyResult:
        """Validate and apply a viewer command; raises InteractionError when refused.

        ``known``: the node's current copy of the room's definitions (kept fresh by the
        state flush); an interaction not in it is read from the store. The counters
        and records are always the store's: only the open/closed check may use a copy
        that is one state flush old.
        """
        kind = VIEWER_OPS[op]
        iid = {"checkin": CHECKIN_ID, "post": WALL_ID}.get(op) or raw.get("interaction")
        if not isinstance(iid, str):
            raise InteractionError("invalid_field", f"{op} needs an 'interaction' id")
        definition = (known or {}).get(iid) or await self.definition(room_id, iid)
        if definition.kind != kind:
            raise InteractionError(
                "unknown_target", f"{iid} is a {definition.kind}; {op} is for a {kind}"
            )
        now = time.time()
        spec, state = definition.spec, definition.state
        caps = None
        withdraw_box: str | None = None
        contribution: Contribution | None = None
        if op == "vote":
            contribution = polls.vote(spec, state, raw, now)
        elif op == "answer":
            contribution = quiz.answer(spec, state, raw, now)
        elif op == "pick":
            contribution = codesign.pick(spec, state, raw, now)
            caps = codesign.caps(spec)
        elif op == "unpick":
            withdraw_box = codesign.unpick(spec, state, raw, now)
        elif op == "enter":
            excluded = (
                await self._previous_winners(room_id, iid)
                if (spec.exclude_previous_winners)
                else set()
            )
            contribution = draws.enter(spec, state, identity.user_id, now, excluded=excluded)
        elif op == "checkin":
            contribution = checkin.check_in(spec, state, name=identity.name, now=now)
        elif op == "post":
            made = wall.new_post(
                spec,
                state,
                raw,
                post_id=wall.post_id(identity.user_id, key),
                viewer_id=identity.user_id,
                name=identity.name,
                now=now,
                moderation=wall_moderation,
            )
            # One record per post, its id made from viewer and key: a retry is one post.
            return await self.store.apply(
                room_id,
                box_key(WALL_ID, POSTS_BOX),
                made.id,
                f"{identity.user_id}|{key}",
                made.stored(),
                {"posted": 1},
                once=True,
            )
        elif op == "ask":
            question = qa.ask(
                spec,
                state,
                raw,
                question_id=qa.question_id(identity.user_id, key),
                viewer_id=identity.user_id,
                name=identity.name,
                now=now,
            )
            # One record per question, keyed by viewer and key: a retried ask is one question.
            return await self.store.apply(
                room_id,
                box_key(iid, QUESTIONS_BOX),
                question.id,
                f"{identity.user_id}|{key}",
                question.to_dict(private=True),
                {"asked": 1},
                once=True,
            )
        elif op == "upvote":
            contribution = qa.upvote(spec, state, await self.questions(room_id, iid), raw, now)
        else:  # unvote
            withdraw_box = qa.unvote(spec, state, await self.questions(room_id, iid), raw, now)
        if withdraw_box is not None:
            return await self.store.apply(
                room_id, box_key(iid, withdraw_box), identity.user_id, key, None, {}
            )
        assert contribution is not None
        if op in NAMED_OPS:
            # The name goes with the record, so pages can show a draw's winners (from an
            # entry or a poll's voters) and a quiz's leaderboard by name.
            contribution = replace(
                contribution, record={**contribution.record, "name": identity.name}
            )
        result = await self.store.apply(
            room_id,
            box_key(iid, contribution.box),
            identity.user_id,
            key,
            contribution.record,
            contribution.deltas,
            caps,
            contribution.once,
        )
        error = refusal(result.status, result.capped_field)
        if error is not None and result.status != "already_done":
            raise error
        return result

    async def note_presence(self, room_id: str, identity: Identity, joined: bool) -> None:
        """Keep the presence box (entrants of presence draws) current; best effort."""
        record = {"name": identity.name, "at": time.time()} if joined else None
        await self.store.apply(
            room_id,
            PRESENCE_BOX,
            identity.user_id,
            f"p-{secrets.token_hex(6)}",
            record,
            {"n": 1} if joined else {},
            versioned=False,
        )

    def keyword_draws(self, definitions: dict[str, Definition], text: str, now: float) -> list[str]:
        """Open keyword draws whose keyword this danmaku contains, inside their window."""
        found = []
        for iid, d in definitions.items():
            if d.kind != "draw" or d.spec.source != "keyword" or d.state.phase != "open":
                continue
            start, end = draws.keyword_window(d.spec, d.state, now)
            if start <= now <= end and draws.keyword_entrants(
                [("v", text, now)], d.spec.keyword, start, end
            ):
                found.append(iid)
        return found
