"""Check-in: each viewer checks in once; a live count; an exportable list.

Every room has one check-in (id ``checkin``), open from the start; a host may close
it and open it again. One box; :func:`check_in` makes a ``once`` contribution
(counter ``n``), so a second check-in is ``already_done`` and keeps the first time,
which the acknowledgement reports as ``already`` rather than as an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol.messages import MAX_NAME_CHARS
from server.interactions.base import (
    MAX_LABEL_CHARS,
    Contribution,
    Id,
    InteractionError,
    Record,
    Status,
    check_name,
    clean_label,
    dump,
    reopenable,
)
from server.interactions.kind import (
    Applied,
    Audience,
    Change,
    Context,
    Definition,
    Kind,
    Op,
    ViewerCommand,
    Write,
)

CHECKIN_ID = "checkin"


class CheckinSpec(Record, frozen=True):
    """The room's check-in: its id and title."""

    id: Id
    title: str

    def __post_init__(self) -> None:
        clean_label(self, "title", MAX_LABEL_CHARS)


def check_in(spec: CheckinSpec, status: Status, *, name: str | None, now: float) -> Contribution:
    """The viewer's check-in (``name``: the display name to export). Raises ``not_open``."""
    phase = status.at(now).phase
    if phase != "open":
        raise InteractionError("not_open", f"check-in {spec.id} is {phase}")
    return Contribution({"at": now, "name": check_name(name, MAX_NAME_CHARS)}, {"n": 1}, once=True)


def count(counters: Mapping[str, int]) -> int:
    return counters.get("n", 0)


def export(records: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows ``{viewer, name, at}`` from the records (viewer id -> record), earliest first."""
    rows = [
        {"viewer": viewer, "name": record.get("name"), "at": record.get("at")}
        for viewer, record in records.items()
    ]
    rows.sort(key=lambda row: (float(row["at"] or 0.0), row["viewer"]))
    return rows


class Checkin(Kind[CheckinSpec, Status]):
    """The room's check-in: one ``once`` contribution per viewer, a count, a list."""

    name = "checkin"
    spec_type = CheckinSpec
    state_type = Status
    ops = (Op("checkin", targets="room"),)
    actions = ("open", "close")
    view_ts = "spec: CheckinSpec; status: Status; count: number;"
    builtin = CHECKIN_ID

    def default_spec(self) -> CheckinSpec:
        return CheckinSpec(CHECKIN_ID, "Check-in")

    def first_state(self, spec: CheckinSpec, now: float, entropy: bytes) -> Status:
        return Status("open", opened_at=0.0)

    def view(self, d: Definition, ctx: Context, audience: Audience) -> dict[str, Any]:
        return {
            "spec": dump(d.spec),
            "status": dump(d.state.at(ctx.now)),
            "count": count(ctx.data.counters(d.id)),
        }

    def command(self, c: ViewerCommand, ctx: Context) -> Write:
        return c.write(c.d.id, check_in(c.d.spec, c.d.state, name=c.who.name, now=ctx.now))

    def acknowledge(self, op: str, write: Write, result: Applied) -> dict[str, Any]:
        # Checking in again is not an error: the viewer is checked in, as asked.
        return {"count": count(result.counters), "already": result.status == "already_done"}

    def act(self, action: str, d: Definition, fields: Mapping[str, Any], ctx: Context) -> Change:
        return Change(state=reopenable(d.state, action, ctx.now))

    def export(self, d: Definition, ctx: Context) -> list[dict[str, Any]]:
        return export(ctx.data.records(d.id))


KIND = Checkin()
