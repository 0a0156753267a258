"""A kind that lives only here, in tests/, as a deployment's own kind would: "estimate".

Viewers guess a number (how many beans in the jar?); the host opens, closes and
reveals; the view shows how many guessed and their mean, and once revealed the answer
and the closest guesses. It is registered with the setting ``server.kinds``
(``tests.plugin_kind:KIND``) and nothing outside this file and its page module
(``plugin_kind.js``) knows it exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from server.interactions.base import (
    Id,
    InteractionError,
    Record,
    Status,
    as_map,
    clean_label,
    dump,
    transition,
)
from server.interactions.kind import (
    Audience,
    Change,
    Context,
    Definition,
    Kind,
    Needs,
    Op,
    ViewerCommand,
    Write,
)

NAME = "estimate"
SCALE = 1000  # guesses are kept in thousandths, so counters stay integers


class EstimateSpec(Record, frozen=True):
    """What the host asks, and the answer, which viewers see only once revealed."""

    id: Id
    question: str
    answer: float

    def __post_init__(self) -> None:
        clean_label(self, "question", 200)


def guess_of(raw: Any) -> float:
    value = as_map(raw, "a guess", "invalid_vote").get("value")
    if type(value) not in (int, float) or not -1e9 <= value <= 1e9:
        raise InteractionError("invalid_vote", f"a guess is a number, got {value!r:.20}")
    return float(value)


class Estimate(Kind[EstimateSpec, Status]):
    """Guess the number: one guess per viewer, changeable while open."""

    name = NAME
    spec_type = EstimateSpec
    state_type = Status
    ops = (Op("guess"),)
    actions = ("open", "close", "reveal")
    page = Path(__file__).with_name("plugin_kind.js")

    def view_needs(self, d: Definition, ctx: Context) -> Needs:
        revealed = d.state.at(ctx.now).phase == "revealed"
        return Needs.of(counters=[d.id], records=[d.id] if revealed else [])

    def view(self, d: Definition, ctx: Context, audience: Audience) -> dict[str, Any]:
        counters = ctx.data.counters(d.id)
        n = counters.get("n", 0)
        status = d.state.at(ctx.now)
        shown = audience is Audience.STAFF or status.phase == "revealed"
        spec = dump(d.spec)
        if not shown:
            del spec["answer"]
        out = {
            "spec": spec,
            "status": dump(status),
            "guesses": n,
            "mean": round(counters.get("sum", 0) / SCALE / n, 3) if n else None,
        }
        if status.phase == "revealed":
            guesses = ctx.data.records(d.id)
            ranked = sorted(guesses.items(), key=lambda g: abs(g[1]["value"] - d.spec.answer))
            out["closest"] = [{"viewer": v, "name": r.get("name")} for v, r in ranked[:3]]
        return out

    def command(self, c: ViewerCommand, ctx: Context) -> Write:
        if not c.d.state.is_open(ctx.now):
            raise InteractionError("not_open", f"{c.d.id} takes no guesses now")
        value = guess_of(c.fields)
        record = {"value": value, "name": c.who.name}
        return Write(c.d.id, c.who.id, c.key, record, {"n": 1, "sum": round(value * SCALE)})

    def act(self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context) -> Change:
        return Change(state=transition(d.state, action, ctx.now))


KIND = Estimate()
