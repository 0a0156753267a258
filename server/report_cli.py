"""``hudong report ROOM``: fetch a room's event report from a node and write it to a
folder: report.html (self-contained, to open or print), report.json, and one CSV per
interaction, from the same routes a browser or script would use (PROTOCOL.md, "Event
report"). Standard library only, so it runs wherever hudong is installed."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

TIMEOUT_S = 60.0


class ReportError(Exception):
    """A request the report needs did not succeed: its message says which and why."""


def _get(base: str, token: str, path: str, query: dict[str, str] | None = None) -> bytes:
    url = base.rstrip("/") + path + ("?" + urllib.parse.urlencode(query) if query else "")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise ReportError(f"GET {path}: HTTP {exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ReportError(f"GET {path}: {exc}") from exc


def _safe(name: str) -> str:
    """An interaction id as a file name (ids are short words; anything else becomes _)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "_"


def write_report(base: str, token: str, room: str, out: Path, lang: str) -> list[Path]:
    """Fetch the report and the exports; write them under ``out``; the files written."""
    quoted = urllib.parse.quote(room, safe="")
    path = f"/api/v1/rooms/{quoted}"
    report: dict[str, Any] = json.loads(_get(base, token, f"{path}/report"))
    page = _get(base, token, f"{path}/report", {"format": "html", "lang": lang})
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.html", out / "report.json"]
    written[0].write_bytes(page)
    written[1].write_text(json.dumps(report, ensure_ascii=False, indent=2), "utf-8")
    for section in report.get("interactions", []):
        iid = str(section["id"])
        route = f"{path}/interactions/{urllib.parse.quote(iid, safe='')}/export"
        target = out / f"{_safe(iid)}.csv"
        target.write_bytes(_get(base, token, route, {"format": "csv"}))
        written.append(target)
    return written


def run(url: str, token: str, room: str, out: str, lang: str) -> int:
    try:
        written = write_report(url, token, room, Path(out), lang)
    except (ReportError, OSError, ValueError) as exc:
        print(f"hudong report: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} files to {out}: " + ", ".join(p.name for p in written))
    return 0
