"""Check-in: each viewer checks in once; a live count; an exportable list.

One box; :func:`check_in` makes a ``once`` contribution (counter ``n``), so a second
check-in is ``already_done`` and keeps the first time. Needs the check-in's
:class:`~server.interactions.base.Status` open.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from protocol.messages import MAX_NAME_CHARS, clean_text
from server.interactions.base import (
    MAX_LABEL_CHARS,
    Contribution,
    InteractionError,
    Status,
    as_map,
    check_id,
    check_label,
)


@dataclass(frozen=True, slots=True)
class CheckinSpec:
    id: str
    title: str

    def __post_init__(self) -> None:
        check_id(self.id, "check-in id")
        check_label(self.title, "title", MAX_LABEL_CHARS)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title}

    @classmethod
    def from_dict(cls, obj: Any) -> CheckinSpec:
        obj = as_map(obj, "a check-in")
        return cls(
            check_id(obj.get("id"), "check-in id"),
            check_label(obj.get("title"), "title", MAX_LABEL_CHARS),
        )


def check_in(spec: CheckinSpec, status: Status, *, name: str | None, now: float) -> Contribution:
    """The viewer's check-in (``name``: the display name to export). Raises ``not_open``."""
    phase = status.at(now).phase
    if phase != "open":
        raise InteractionError("not_open", f"check-in {spec.id} is {phase}")
    shown = (clean_text(name)[:MAX_NAME_CHARS] or None) if name is not None else None
    return Contribution({"at": now, "name": shown}, {"n": 1}, once=True)


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


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell starting with one of these is a formula to spreadsheets (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """The rows of :func:`export` as CSV text with a header (viewer,name,at)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["viewer", "name", "at"])
    for row in rows:
        writer.writerow([_cell(row.get("viewer")), _cell(row.get("name")), row.get("at")])
    return out.getvalue()
