"""Verifiable lucky draws: commit to a secret seed, freeze the entrants, reveal the seed.

Fairness (ARCHITECTURE.md, "Lucky draws must be verifiable"):

1. :func:`open_draw` takes 32 secret random bytes (``draw_algorithm.new_seed``) and
   publishes ``commitment = sha256(seed).hexdigest()``; the seed stays in the store.
2. :func:`run_draw` freezes the entrant list, picks the winners with the algorithm
   (below) and returns a :class:`DrawAudit` that reveals the seed.
3. Anyone recomputes the result from the audit record
   (``hudong verify-draw FILE``, :mod:`server.draw_verification`).

Algorithm ``hudong-draw-v1`` (:mod:`server.draw_algorithm`, where it is written out
precisely, so it can be reimplemented elsewhere) picks the winners from the seed and the
frozen entrant list.

Each viewer identity is one entrant however many times it appears in the sources.

What this does not defend against: the server knows the seed from the start, so a
dishonest operator could add sock-puppet entrants until the outcome suits them. The
published commitment and entrant list hash make every such change visible after the
fact, not impossible. Mixing in randomness that nobody knows when the list freezes
(e.g. a later public beacon value) would close that gap; it is not done here.

Claim codes: each winner gets a code, ``HMAC-SHA256(key=claim key, msg="hudong-claim-v1"
|| 0x00 || draw id || 0x00 || winner id)``, its first 40 bits in Crockford's base 32
(``K7QM-2XPD``, :func:`claim_code`). The claim key is drawn with the seed but never
revealed, so nobody can work a code out from the audit record; only the winner
(``GET …/mine``) and the hosts (the staff view) see it. A host ``claim`` marks a prize
handed over, once; ``lookup`` says whose a code is.

Eligibility: ``presence`` (viewers in the room when the draw runs), ``keyword``
(口令抽奖: danmaku containing the keyword within the window, :func:`keyword_entrants`),
``poll`` (the voters of a poll: that poll's record keys) or ``entry`` (viewers who
entered with :func:`enter`). With ``exclude_previous_winners`` the caller passes the
room's earlier winners (:func:`previous_winners`) as ``excluded``.
"""

from __future__ import annotations

import hmac
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta
from msgspec.structs import force_setattr

from server.draw_algorithm import (
    ALGORITHM,
    SEED_BYTES,
    commitment_of,
    entrant_list,
    entrant_list_hash,
    select_winners,
    viewers_audit,
)
from server.interactions.base import (
    MAX_LABEL_CHARS,
    PRESENCE_BOX,
    Contribution,
    Id,
    InteractionError,
    Record,
    Time,
    check_id,
    clean_label,
    dump,
)
from server.interactions.kind import (
    Announcement,
    Audience,
    Change,
    Context,
    Definition,
    Kind,
    Needs,
    Op,
    Viewer,
    ViewerCommand,
    Write,
)

MAX_WINNERS = 1000
MAX_KEYWORD_CHARS = 32
MAX_WINDOW_S = 24 * 3600.0

Source = Literal["presence", "keyword", "poll", "entry"]
SOURCES: tuple[Source, ...] = ("presence", "keyword", "poll", "entry")
DrawPhase = Literal["open", "drawn"]


def normalise_keyword(text: str) -> str:
    """NFKC, case-folded, without whitespace: how keywords and danmaku are compared."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


class DrawSpec(Record, frozen=True):
    """A draw as the host defines it.

    ``keyword`` is needed for the ``keyword`` source and ``window_s`` limits it to the
    first seconds after opening (None: until the draw runs); ``poll_id`` is needed for
    the ``poll`` source.
    """

    id: Id
    title: str
    winners: Annotated[int, Meta(ge=1, le=MAX_WINNERS)] = 1
    source: Source = "entry"
    keyword: str | None = None
    window_s: Annotated[float, Meta(ge=1.0, le=MAX_WINDOW_S)] | None = None
    poll_id: Id | None = None
    exclude_previous_winners: bool = False

    def __post_init__(self) -> None:
        clean_label(self, "title", MAX_LABEL_CHARS)
        if self.source == "keyword" and (
            self.keyword is None
            or not 1 <= len(normalise_keyword(self.keyword)) <= MAX_KEYWORD_CHARS
        ):
            raise InteractionError(
                "invalid_field", f"a keyword draw needs a keyword of 1..{MAX_KEYWORD_CHARS}"
            )
        if self.source == "poll":
            check_id(self.poll_id, "poll_id")


class DrawState(Record, frozen=True):
    """An open or drawn draw. ``seed`` (hex) is secret until drawn, ``claim_key`` always
    (empty in draws made before claim codes): publish :meth:`public`. ``commitment`` is
    always recomputed from the seed; ``claimed``: (winner, when the prize was handed
    over) pairs, in the order of the claims."""

    seed: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
    opened_at: Time = 0.0
    phase: DrawPhase = "open"
    drawn_at: Time | None = None
    winners: tuple[str, ...] = ()
    commitment: str = ""
    claim_key: Annotated[str, Meta(pattern=r"^([0-9a-f]{64})?$")] = ""
    claimed: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        force_setattr(self, "commitment", commitment_of(self.seed_bytes))

    def __repr__(self) -> str:  # never the seed
        return f"DrawState(phase={self.phase!r}, commitment={self.commitment!r})"

    @property
    def seed_bytes(self) -> bytes:
        return bytes.fromhex(self.seed)

    def public(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "commitment": self.commitment,
            "seed": self.seed if self.phase == "drawn" else None,
            "opened_at": self.opened_at,
            "drawn_at": self.drawn_at,
            "winners": list(self.winners),
            "claimed": [w for w in self.winners if self.claimed_at(w) is not None],
        }

    def code_of(self, draw_id: str, winner: str) -> str | None:
        """The winner's claim code (None without a claim key)."""
        return claim_code(self.claim_key, draw_id, winner) if self.claim_key else None

    def claim(self, draw_id: str, winner: str) -> dict[str, Any]:
        """What the winner and the hosts see of one winner's claim."""
        at = self.claimed_at(winner)
        return {"winner": winner, "code": self.code_of(draw_id, winner), "claimed_at": at}

    def claimed_at(self, winner: str) -> float | None:
        return next((at for who, at in self.claimed if who == winner), None)


def open_draw(spec: DrawSpec, seed: bytes, now: float, claim_key: bytes = b"") -> DrawState:
    """Open a draw: commit to ``seed`` (32 secret bytes, see ``draw_algorithm.new_seed``);
    ``claim_key`` (32 secret bytes) makes the winners' claim codes."""
    if len(seed) != SEED_BYTES:
        raise ValueError(f"a seed is {SEED_BYTES} bytes, got {len(seed)}")
    return DrawState(seed.hex(), opened_at=now, claim_key=claim_key.hex())


CLAIM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32: no I, L, O, U


def claim_code(key: str, draw_id: str, winner: str) -> str:
    """A winner's claim code, ``XXXX-XXXX`` (40 bits; see the module's docstring)."""
    message = b"hudong-claim-v1\x00" + draw_id.encode() + b"\x00" + winner.encode()
    n = int.from_bytes(hmac.digest(bytes.fromhex(key), message, "sha256")[:5], "big")
    chars = "".join(CLAIM_ALPHABET[(n >> shift) & 31] for shift in range(35, -1, -5))
    return f"{chars[:4]}-{chars[4:]}"


def find_claim(spec: DrawSpec, state: DrawState, code: Any) -> str:
    """The winner whose claim code ``code`` is (case, spaces and dashes aside; O reads
    as 0, I and L as 1); ``not_open`` before the draw, ``unknown_target`` for no winner's."""
    if state.phase != "drawn":
        raise InteractionError("not_open", f"draw {spec.id} has no winners yet")
    if not isinstance(code, str) or not code.strip():
        raise InteractionError("invalid_field", "send the winner's claim 'code' (XXXX-XXXX)")
    typed = "".join(code.upper().split()).replace("-", "")
    typed = typed.translate(str.maketrans("OIL", "011"))[:8]
    for winner in state.winners:
        mine = (state.code_of(spec.id, winner) or "").replace("-", "")
        if mine and hmac.compare_digest(mine.encode(), typed.encode()):
            return winner
    raise InteractionError(
        "unknown_target", f"no winner of draw {spec.id} has the claim code {code[:16]!r}"
    )


def enter(
    spec: DrawSpec,
    state: DrawState,
    viewer_id: str,
    now: float,
    *,
    excluded: Collection[str] = (),
) -> Contribution:
    """An explicit entry (a ``once`` contribution to the draw's box; counter ``n``).

    Raises ``not_open`` once drawn, ``not_eligible`` when the draw takes entrants from
    another source or ``viewer_id`` is in ``excluded`` (earlier winners).
    """
    if state.phase != "open":
        raise InteractionError("not_open", f"draw {spec.id} has been drawn")
    if spec.source != "entry":
        raise InteractionError(
            "not_eligible", f"draw {spec.id} takes its entrants from {spec.source}, not entries"
        )
    if viewer_id in excluded:
        raise InteractionError("not_eligible", "earlier winners are excluded from this draw")
    return Contribution({"at": now}, {"n": 1}, once=True)


def keyword_window(spec: DrawSpec, state: DrawState, now: float) -> tuple[float, float]:
    """The time span (inclusive) in which danmaku count for a keyword draw run at ``now``."""
    end = now if spec.window_s is None else min(now, state.opened_at + spec.window_s)
    return (state.opened_at, end)


def keyword_entrants(
    messages: Iterable[tuple[str, str, float]], keyword: str, start: float, end: float
) -> set[str]:
    """Viewers with a danmaku ``(viewer_id, text, ts)`` containing ``keyword`` within
    ``start <= ts <= end``; text and keyword compared by :func:`normalise_keyword`."""
    wanted = normalise_keyword(keyword)
    if not wanted:
        return set()
    return {
        viewer
        for viewer, text, ts in messages
        if start <= ts <= end and wanted in normalise_keyword(text)
    }


def previous_winners(audits: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every winner of the given audit records (for ``exclude_previous_winners``)."""
    return {str(w) for audit in audits for w in audit.get("winners", [])}


# --- the record of a draw ----------------------------------------------------------------


class DrawAudit(Record, frozen=True, kw_only=True):
    """Everything needed to recompute a draw; :func:`dump` of it is the exported record."""

    version: str = ALGORITHM
    draw_id: str
    title: str
    source: str
    commitment: str
    seed: str
    entrants_hash: str
    n: int
    winners: tuple[str, ...]
    excluded: tuple[str, ...]
    entrants: tuple[str, ...]
    opened_at: float
    drawn_at: float


def run_draw(
    spec: DrawSpec,
    state: DrawState,
    entrants: Iterable[str],
    now: float,
    *,
    excluded: Iterable[str] = (),
) -> tuple[DrawState, DrawAudit]:
    """Freeze the entrants, pick the winners, reveal the seed.

    ``entrants``: the ids from the draw's source (duplicates are fine). Raises
    ``illegal_transition`` when already drawn, ``no_entrants`` when nobody is left.
    With fewer entrants than ``spec.winners``, every entrant wins.
    """
    if state.phase != "open":
        raise InteractionError("illegal_transition", f"draw {spec.id} has been drawn already")
    excluded_list = sorted(set(excluded))
    frozen = entrant_list(entrants, excluded_list)
    if not frozen:
        raise InteractionError("no_entrants", f"nobody is eligible for draw {spec.id}")
    winners = tuple(select_winners(state.seed_bytes, frozen, spec.winners))
    audit = DrawAudit(
        draw_id=spec.id,
        title=spec.title,
        source=spec.source,
        commitment=state.commitment,
        seed=state.seed,
        entrants=tuple(frozen),
        entrants_hash=entrant_list_hash(frozen),
        excluded=tuple(excluded_list),
        n=spec.winners,
        winners=winners,
        opened_at=state.opened_at,
        drawn_at=now,
    )
    drawn = msgspec.structs.replace(state, phase="drawn", drawn_at=now, winners=winners)
    return drawn, audit


# --- the kind -----------------------------------------------------------------------------


class Draw(Kind[DrawSpec, DrawState]):
    """Verifiable lucky draws: a commitment from the start, winners from a frozen list."""

    name = "draw"
    spec_type = DrawSpec
    state_type = DrawState
    ops = (Op("enter"),)
    actions = ("run", "claim", "lookup")
    view_ts = (  # names: once drawn; claims (the codes): once drawn, staff only
        "spec: DrawSpec; state: DrawPublicState; entrants: number;"
        " names?: Record<string, string | null>; claims?: DrawClaim[];"
    )
    types_ts = """export interface DrawPublicState { phase: DrawState["phase"]; commitment: string;
  seed: string | null; opened_at: number; drawn_at: number | null; winners: string[];
  claimed: string[] }
export interface DrawClaim { winner: string; code: string | null; claimed_at: number | null;
  name: string | null }"""
    audited = True
    example: ClassVar[Mapping[str, Any]] = {
        "id": "prize",
        "title": "幸运抽奖 Lucky draw: a year of burgers",
        "winners": 3,
    }

    def first_state(self, spec: DrawSpec, now: float, entropy: bytes) -> DrawState:
        # Two keys from one secret: revealing the seed tells nothing of the claim key.
        seed = hmac.digest(entropy, b"hudong-draw-seed", "sha256")
        return open_draw(spec, seed, now, hmac.digest(entropy, b"hudong-draw-claim", "sha256"))

    def source(self, d: Definition) -> str:
        """The box the entrants come from: those present, a poll's voters, or the
        draw's own box (entries, keyword danmaku)."""
        spec: DrawSpec = d.spec
        if spec.source == "presence":
            return PRESENCE_BOX
        if spec.source == "poll" and spec.poll_id is not None:
            return spec.poll_id
        return d.id

    def view_needs(self, d: Definition, ctx: Context) -> Needs:
        drawn = d.state.phase == "drawn"
        return Needs.of(counters=[self.source(d)], records=[self.source(d)] if drawn else [])

    def view(self, d: Definition, ctx: Context, audience: Audience) -> dict[str, Any]:
        source = self.source(d)
        out = {
            "spec": dump(d.spec),
            "state": d.state.public(),
            "entrants": ctx.data.counters(source).get("n", 0),
        }
        if d.state.phase == "drawn":
            out["names"] = names = self._names(ctx, source, d.state.winners)
            if audience == Audience.STAFF:  # the codes: hosts and each winner, no one else
                claims = [d.state.claim(d.id, w) for w in d.state.winners]
                out["claims"] = [{**c, "name": names.get(c["winner"])} for c in claims]
        return out

    def own_view(self, d: Definition, ctx: Context, viewer_id: str) -> dict[str, Any]:
        """A winner's own claim code (and whether the prize was handed over)."""
        if d.state.phase != "drawn" or viewer_id not in d.state.winners:
            return {}
        return {"claim": d.state.claim(d.id, viewer_id)}

    def _names(self, ctx: Context, box: str, winners: Iterable[str]) -> dict[str, str | None]:
        """Display names of the winners, from the records they were drawn from (None for
        a record without a name)."""
        records = ctx.data.records(box)
        names: dict[str, str | None] = {}
        for winner in winners:
            name = (records.get(winner) or {}).get("name")
            names[winner] = name if isinstance(name, str) else None
        return names

    def _previous_winners(self, d: Definition, ctx: Context) -> set[str]:
        if not d.spec.exclude_previous_winners:
            return set()
        return {
            winner
            for other in ctx.definitions.values()
            if other.kind == self.name and other.id != d.id and other.state.phase == "drawn"
            for winner in other.state.winners
        }

    def command(self, c: ViewerCommand, ctx: Context) -> Write:
        excluded = self._previous_winners(c.d, ctx)
        made = enter(c.d.spec, c.d.state, c.who.id, ctx.now, excluded=excluded)
        return c.write(c.d.id, made, named=True)

    def action_needs(
        self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context
    ) -> Needs:
        return Needs.of(records=[self.source(d)])

    def act(self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context) -> Change:
        state: DrawState = d.state
        if action in ("claim", "lookup"):
            winner = find_claim(d.spec, state, fields.get("code"))
            names = self._names(ctx, self.source(d), [winner])
            if action == "lookup":
                return Change(reply={"claim": {**state.claim(d.id, winner), "name": names[winner]}})
            done = (
                state.claimed_at(winner) is not None
            )  # a prize is handed over once: a repeat changes nothing
            if not done:
                claimed = (*state.claimed, (winner, ctx.now))
                state = msgspec.structs.replace(state, claimed=claimed)
            claim = {**state.claim(d.id, winner), "name": names[winner]}
            reply = {"claim": claim, "duplicate": done}
            return Change(reply=reply) if done else Change(state, reply=reply)
        if state.phase == "drawn":  # a retried run: the same winners
            return Change(reply={"winners": list(state.winners)})
        source = self.source(d)
        entrants = sorted(ctx.data.records(source))
        drawn, audit = run_draw(
            d.spec, state, entrants, ctx.now, excluded=self._previous_winners(d, ctx)
        )
        winners = list(drawn.winners)
        title = d.spec.title
        event = {
            "type": "draw_result",
            "interaction": d.id,
            "title": title,
            "winners": winners,
            "names": self._names(ctx, source, winners),
        }
        notice = {"type": "notice", "kind": "draw_won", "interaction": d.id, "title": title}
        return Change(
            state=drawn,
            audit=dump(audit),
            announce=(Announcement(event, frozenset(winners), notice),),
            reply={"winners": winners},
        )

    def audit_view(self, audit: dict[str, Any], audience: Audience) -> dict[str, Any]:
        return audit if audience == Audience.STAFF else viewers_audit(audit)

    def listens(self, d: Definition, now: float) -> bool:
        return bool(d.spec.source == "keyword" and d.state.phase == "open")

    def on_danmaku(self, d: Definition, who: Viewer, text: str, now: float) -> Write | None:
        """口令抽奖: a danmaku with the keyword, inside the window, enters its sender once."""
        spec: DrawSpec = d.spec
        start, end = keyword_window(spec, d.state, now)
        if not (start <= now <= end) or not spec.keyword:
            return None
        if not keyword_entrants([(who.id, text, now)], spec.keyword, start, end):
            return None
        record = {"at": now, "keyword": True, "name": who.name}
        return Write(d.id, who.id, "keyword", record, {"n": 1}, None, True)

    def export_needs(self, d: Definition, ctx: Context) -> Needs:
        return Needs.of(records=[self.source(d)])

    def export(self, d: Definition, ctx: Context) -> list[dict[str, Any]]:
        """The entrants by id and name, whether each won, and a winner's claim code and
        when the prize was handed over."""
        state: DrawState = d.state
        records = ctx.data.records(self.source(d))
        rows = []
        for viewer in sorted(records):
            row = {"viewer": viewer, "name": (records[viewer] or {}).get("name")}
            won = viewer in state.winners
            claim = state.claim(d.id, viewer) if won else {}
            row |= {"won": won, "code": claim.get("code"), "claimed_at": claim.get("claimed_at")}
            rows.append(row)
        return rows


KIND = Draw()
