"""What a run reports: the JSON result, the summary table, the exit status.

Every scenario's result starts with the same fields (``scenario``, ``started_at``,
``argv``, ``command``, ``machine``, ``config``) and has ``checks`` and ``slo``; the
harness adds what it knows of the servers (``server``, ``source``, ``node_logs``,
``redis_server``). Exit status (loadtest/README.md): 0; 1 when a check failed or an SLO
given with ``--slo-*`` was missed; 2 with a ``FATAL`` line on stderr when the run could
not be done.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest import procstat

RESULTS_DIR = Path(__file__).resolve().parent / "results"
Rows = list[tuple[str, str]]


class Fatal(Exception):
    """The run cannot be done: exit status 2 and a ``FATAL`` line, never a traceback."""


def new_result(scenario: str, args: argparse.Namespace, config: tuple[str, ...]) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "command": " ".join(["python -m loadtest", *sys.argv[1:]]),
        "machine": procstat.machine(),
        "config": {k: getattr(args, k) for k in config},
        "checks": {},
        "slo": {},
    }


def result_path(args: argparse.Namespace, scenario: str) -> Path:
    if args.json_out:
        return Path(args.json_out)
    return RESULTS_DIR / f"{scenario}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.json"


def slo(res: dict[str, Any], name: str, limit: float | None, value: Any) -> None:
    """Record an SLO given on the command line (``limit`` None: not given); a value
    that could not be measured misses it."""
    if limit is None:
        return
    res["slo"][name] = {"limit": limit, "value": value, "ok": value is not None and value <= limit}


def check(res: dict[str, Any], name: str, ok: bool, detail: str) -> None:
    """Record a check that the scenario always makes (exit 1 when it fails)."""
    res["checks"][name] = {"ok": ok, "detail": detail}


def table(rows: Rows) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def report(res: dict[str, Any], path: Path, rows: Callable[[dict[str, Any]], Rows]) -> int:
    """Write the result, print the summary (the scenario's ``rows`` of it, then the
    checks and SLOs); the exit status."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1) + "\n")
    if "fatal" in res:
        print(f"FATAL: {res['fatal']}", file=sys.stderr, flush=True)
        print(f"  result: {path}")
        return 2
    table_rows = rows(res)
    if res.get("server_log_problems"):
        table_rows.append(("server log", f"{res['server_log_problems']} warning/error lines"))
    for name, c in res["checks"].items():
        table_rows.append((f"check {name}", "ok" if c["ok"] else f"FAILED: {c['detail']}"))
    for name, s in res["slo"].items():
        verdict = "ok" if s["ok"] else "MISSED"
        table_rows.append((f"SLO {name}", f"{verdict}: {s['value']} (limit {s['limit']})"))
    table_rows.append(("result", str(path)))
    print(f"{res['scenario']}:")
    print(table(table_rows))
    good = all(c["ok"] for c in res["checks"].values())
    return 0 if good and all(s["ok"] for s in res["slo"].values()) else 1
