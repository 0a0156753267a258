"""A lucky draw with many entrants: created over REST, every viewer sends ``enter``
(retried with the same key until acknowledged), then the host runs it; the audit
record is fetched and checked with ``python -m server verify-draw`` from the server's
source tree (a separate process: the load tool never imports ``server``).

    python -m loadtest draw --spawn --viewers 5000 --winners 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any

from loadtest import harness
from loadtest.harness import Run
from loadtest.results import Fatal, Rows
from loadtest.servers import server_tree, tree_env
from loadtest.stats import quantiles
from loadtest.viewers import Member

NAME = "draw"
HELP = "a lucky draw with many entrants, run and verified (verify-draw)"
CONFIG = ("viewers", "winners", "gen_cpu")
LOAD = {"viewers": 5000, "deadline": 300}
SLOS = {"--slo-p99-ms": "p99 enter → ack", "--slo-run-ms": "the run action's REST round trip"}


def add_arguments(load: argparse._ArgumentGroup) -> None:
    load.add_argument("--winners", type=int, default=10)
    load.add_argument("--ack-timeout", type=float, default=10)


def verify_draw(
    args: argparse.Namespace, audit: Any
) -> tuple[str, subprocess.CompletedProcess[str]]:
    """``python -m server verify-draw`` on the audit record, from the server's tree."""
    fd, path = tempfile.mkstemp(prefix="hudong-draw-audit-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(audit, f)
    src = server_tree(args)
    done = subprocess.run(
        [sys.executable, "-m", "server", "verify-draw", path],
        cwd=src,
        env=tree_env(src),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return path, done


async def body(run: Run) -> None:
    a, res, api, room = run.args, run.res, run.api, run.room
    await asyncio.to_thread(api.prepare_room, room)
    draw_id = f"draw-{secrets.token_hex(3)}"
    spec = {"id": draw_id, "title": "loadtest draw", "winners": a.winners}
    await asyncio.to_thread(api.create, room, "draw", spec)
    run.phase = "connect"
    run.status = lambda: f"viewers {len(run.clients)}/{a.viewers}"
    viewers, errors = await run.connect(Member, a.viewers)
    res["connect"] = {"connected": len(viewers), "failed": len(errors)}
    run.phase = "enter"
    acked: list[float] = []
    refused: Counter[str] = Counter()
    run.status = lambda: f"entries acked {len(acked)}/{len(viewers)}"
    cpu0, t0 = run.cpu(), time.monotonic()
    since = t0 - run.t0
    deadline = t0 + a.deadline / 2

    async def enter(m: Member) -> None:
        start = time.monotonic()
        cmd = {"op": "enter", "interaction": draw_id, "key": secrets.token_hex(8)}
        reply = await m.command(cmd, a.ack_timeout, deadline)
        if reply.get("type") == "ack":
            acked.append(1000 * (time.monotonic() - start))
        else:
            refused[str(reply.get("code"))] += 1

    await asyncio.gather(*(enter(m) for m in viewers))
    entering = run.cpu_since(cpu0, t0)
    run.phase = "run"
    t_run = time.monotonic()
    answer = await asyncio.to_thread(api.act, room, draw_id, "run")
    run_ms = 1000 * (time.monotonic() - t_run)
    winners = answer.get("winners") or answer["view"]["state"].get("winners", [])
    status, audit = await asyncio.to_thread(api.view, room, draw_id, "/audit")
    if status != 200:
        raise Fatal(f"fetching the audit record: {status} {audit}")
    audit_path, verify = await asyncio.to_thread(verify_draw, a, audit)
    await asyncio.sleep(1)  # winners' notices
    status, view = await asyncio.to_thread(api.view, room, draw_id)
    entrants = view.get("entrants") if status == 200 and isinstance(view, dict) else None
    notified = sum(m.notices.get("draw_won", 0) for m in viewers)
    lat = sorted(acked)
    res.update(
        {
            "draw": draw_id,
            "entered": len(acked),
            "refused": dict(refused),
            "enter_ack_ms": quantiles(lat),
            "entries_per_s": round(len(acked) / max(1e-6, lat[-1] / 1000)) if lat else None,
            "server_cpu_entering": entering,
            "run_ms": round(run_ms, 1),
            "winners": len(winners),
            "winners_notified": notified,
            "entrants_in_view": entrants,
            "audit_file": audit_path,
            "verify": {"rc": verify.returncode, "output": (verify.stdout + verify.stderr)[-600:]},
            "degrade": run.degrade(since),
        }
    )
    want = min(a.winners, len(acked))
    run.check("all_entered", len(acked) == len(viewers), f"{len(acked)}/{len(viewers)} acked")
    run.check("winners", len(winners) == want, f"{len(winners)} winners, expected {want}")
    run.check("verify_draw", verify.returncode == 0, f"verify-draw exit {verify.returncode}")
    if isinstance(entrants, int):
        run.check("entrants", entrants == len(acked), f"view {entrants}, acked {len(acked)}")
    run.slo("p99_ms", a.slo_p99_ms, res["enter_ack_ms"]["p99"])
    run.slo("run_ms", a.slo_run_ms, res["run_ms"])


def rows(res: dict[str, Any]) -> Rows:
    e = res["enter_ack_ms"]
    return [
        ("viewers", f"{res['connect']['connected']} connected, {res['connect']['failed']} failed"),
        (
            "entries",
            f"{res['entered']} acked ({res['entries_per_s']}/s), refused "
            f"{res['refused'] or 'none'}; ack p50 {e['p50']}  p99 {e['p99']}  max {e['max']} ms",
        ),
        ("server CPU", f"{res['server_cpu_entering']['cpu_pct']}% while entering"),
        (
            "run",
            f"{res['run_ms']} ms, {res['winners']} winners, {res['winners_notified']} notified, "
            f"entrants in view {res['entrants_in_view']}",
        ),
        (
            "verify-draw",
            f"exit {res['verify']['rc']}: {res['verify']['output'].strip().splitlines()[-1:]}",
        ),
        harness.levels_row(res),
    ]
