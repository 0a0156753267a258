"""Vote burst: N viewers vote in one poll at once; every vote must be acknowledged
and the final tallies must be exact.

    python -m loadtest votes --spawn --viewers 5000
    python -m loadtest votes --spawn --redis-spawn --viewers 5000

Viewers connect from ``--workers`` processes (hudong.v1.json), join anonymously
and wait; at a common start time each sends one ``vote`` with its own idempotency
key and retries it with the same key on ``store_unavailable`` or after
``--ack-timeout`` without an answer, until acknowledged; with ``--rounds N`` each
viewer then votes again (the next option, a changed vote) N - 1 times, each once the
one before is acknowledged: a sustained rate rather than one burst. Reports votes/s
(acked votes over the time from the start to the last ack) and the acknowledgement
latency (first send to ack, retries included), then reads the poll's results over
REST and compares them with each viewer's last vote. Exit 0 when every vote was acknowledged
and the tallies are exact, 1 when not (or an SLO was missed), 2 when the run failed.

The burst needs several processes to be a burst, so the viewers here are clients of
their own (one process per ``--workers``; raw connections that parse only their own
reply, loadtest/voters.py ``Voter``); servers, REST, percentiles, the progress line
and the result are the harness's.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from loadtest import procstat, voters
from loadtest.harness import Run, run_loop
from loadtest.rest import POLL_OPTIONS
from loadtest.results import Rows
from loadtest.stats import latency_text, quantiles
from loadtest.viewers import RETRYABLE

NAME = "votes"
HELP = "N viewers vote at once: votes/s, ack latency, exact tallies"
CONFIG = ("viewers", "workers", "rounds", "ack_timeout", "server_env")
DEGRADE = False
GRACE_S = 30  # the tallies are read after --deadline's loops give up
START_TIMEOUT = 30
LOAD = {
    "viewers": 5000,
    "workers": 4,
    "workers_help": "client processes",
    "deadline": 120,
    "drains": False,
}
SLOS = {"--slo-p99-ms": "fail when p99 ack latency is above"}

POLL = "burger"
# (viewer index, option, seconds from its send to the ack, sends, acknowledged, the ack's
# wall-clock time)
Vote = tuple[int, str, float, int, bool, float]


# --- one client process -------------------------------------------------------------------


@dataclass
class Share(voters.Share):
    """A client process's part, and how many votes each viewer sends, one after another."""

    rounds: int = 1


async def _viewers(share: Share) -> None:
    ack_timeout, out = share.ack_timeout, share.out
    conns = await voters.join_all(share)
    await voters.started(share)

    results: list[Vote] = []

    async def vote(index: int, voter: voters.Voter) -> None:
        for turn in range(share.rounds):  # a viewer changes its vote: the next option
            option = POLL_OPTIONS[(index + turn) % len(POLL_OPTIONS)]
            if not await vote_once(index, voter, option):
                return

    async def vote_once(index: int, voter: voters.Voter, option: str) -> bool:
        key = f"v-{index}-{secrets.token_hex(4)}"
        command = voters.command_frame(
            {"op": "vote", "id": 2, "interaction": POLL, "key": key, "option": option}
        )
        started = time.perf_counter()
        tries = 0
        while True:
            tries += 1
            try:
                reply = await voter.command(command, ack_timeout)
            except TimeoutError:
                continue
            if reply["type"] == "ack":
                took = time.perf_counter() - started
                results.append((index, option, took, tries, True, time.time()))
                return True
            if reply.get("code") in RETRYABLE:
                await asyncio.sleep(reply.get("retry_after_ms", 200) / 1000)
                continue
            took = time.perf_counter() - started
            results.append((index, option, took, tries, False, time.time()))
            return False

    await asyncio.gather(*(vote(i, voter) for i, voter in conns))
    out.put(("done", results))
    await voters.close_all(conns)


def _worker(share: Share) -> None:
    """One client process; its errors are reported, not hidden."""
    try:
        run_loop(_viewers(share))
    except Exception as exc:
        share.out.put(("error", repr(exc)))


# --- the run -------------------------------------------------------------------------------


# (wall clock, the node's user seconds, its system seconds, the clients' CPU seconds)
_Sample = tuple[float, float, float, float]


class CpuTrace:
    """The node's CPU (user and kernel) and the client processes', read every 50 ms while
    the burst runs: whether the node's core, or the clients', is what the
    acknowledgements wait for."""

    def __init__(self, run: Run, clients: list[int]) -> None:
        self.run = run
        self.clients = clients
        self.samples: list[_Sample] = []

    def read(self) -> None:
        user, system = self.run.server.cpu() if self.run.server.pid else (0.0, 0.0)
        self.samples.append((time.time(), user, system, sum(procstat.cpu_user_sys(self.clients))))

    async def follow(self) -> None:
        while True:
            self.read()
            await asyncio.sleep(0.05)

    def _around(
        self, start: float, end: float
    ) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        before = [s for s in self.samples if s[0] <= start]
        after = [s for s in self.samples if s[0] >= end]
        return (before[-1], after[0]) if before and after else None

    def between(self, start: float, end: float, votes: int) -> dict[str, float] | None:
        """The node's CPU from the samples around ``start`` and ``end`` (wall clock):
        share of a core, the kernel's part of it, and µs per vote; None without samples
        (its pid unknown)."""
        around = self._around(start, end)
        if around is None or votes <= 0:
            return None
        (t0, u0, s0, _), (t1, u1, s1, _) = around
        used, seconds = (u1 + s1) - (u0 + s0), max(t1 - t0, 1e-9)
        if u1 + s1 <= 0:
            return None
        return {
            "seconds": round(t1 - t0, 3),
            "cpu_s": round(used, 3),
            "cpu_pct": round(100 * used / seconds, 1),
            "system_pct": round(100 * (s1 - s0) / seconds, 1),
            "us_per_vote": round(used / votes * 1e6, 1),
        }

    def clients_between(self, start: float, end: float) -> dict[str, float] | None:
        """The client processes' CPU over the same window, as a share of one core: near
        100 % with ``--gen-cpu`` means they read their acknowledgements late, and the
        latency includes their own wait."""
        around = self._around(start, end)
        if around is None or not self.clients:
            return None
        (t0, *_, c0), (t1, *_, c1) = around
        return {"cpu_pct": round(100 * (c1 - c0) / max(t1 - t0, 1e-9), 1)}


async def body(run: Run) -> None:
    a, res = run.args, run.res
    await asyncio.to_thread(run.api.prepare_room, run.room)
    await asyncio.to_thread(run.api.open_poll, run.room, POLL, "Which part matters most?")
    res["backend"] = run.deployment.backend
    res["viewers"] = a.viewers
    res["rounds"] = a.rounds

    fleet = voters.Fleet(run, a.viewers, a.workers)
    progress = fleet.progress
    run.phase = "connect"
    run.status = lambda: f"viewers {progress.value}/{a.viewers}"
    fleet.spawn(_worker, a.ack_timeout, Share, rounds=a.rounds)
    deadline = time.monotonic() + a.deadline
    connected = await fleet.all_joined(deadline)
    run.phase = "voting"
    trace = CpuTrace(run, [p.pid for p in fleet.procs if p.pid is not None])
    following = asyncio.get_running_loop().create_task(trace.follow())
    begin, results, errors = await fleet.go(deadline)
    ended = time.time()
    following.cancel()
    trace.read()  # after the last ack: the clients reported
    await fleet.stop()

    acked = [r for r in results if r[4]]
    last_ack = max((r[5] for r in acked), default=begin)
    here = sum(1 for r in acked if fleet.of_first_node(r[0]))  # all of them on one node
    res["server_cpu_burst"] = trace.between(begin, last_ack, here)
    res["clients_cpu_burst"] = trace.clients_between(begin, last_ack)
    final = {r[0]: r[1] for r in acked}  # each viewer's last acknowledged vote counts
    expected = Counter(final.values())
    tallies, _, exact = await asyncio.to_thread(
        run.api.poll_outcome, run.room, POLL, expected, len(final)
    )
    res.update(
        {
            "connected": connected,
            "acked": len(acked),
            "refused": len(results) - len(acked),
            "retried": sum(1 for r in acked if r[3] > 1),
            "errors": errors,
            "votes_per_s": round(len(acked) / max(last_ack - begin, 1e-9), 1),
            "ack_ms": quantiles((r[2] * 1000 for r in acked), nd=1),
            "tallies": tallies,
            "expected": dict(expected),
            "exact": exact,
            "wall_s": round(ended - begin, 2),
        }
    )
    votes = a.viewers * a.rounds
    run.check("all_acked", len(acked) == votes, f"{len(acked)}/{votes} acknowledged")
    run.check("exact", exact, f"tallies {tallies}, expected {dict(expected)}")
    run.check("no_errors", not errors, f"client processes: {errors[:3]}")
    run.slo("p99_ms", a.slo_p99_ms, res["ack_ms"]["p99"])
    if not res["slo"].get("p99_ms", {"ok": True})["ok"]:
        res["slo_missed"] = f"p99 {res['ack_ms']['p99']} ms > {a.slo_p99_ms} ms"


def rows(res: dict[str, Any]) -> Rows:
    return [
        (
            "votes",
            f"{res['acked']}/{res['viewers'] * res.get('rounds', 1)} acknowledged "
            f"({res['backend']}), "
            f"{res['connected']} connected, {res['refused']} refused, {res['retried']} retried",
        ),
        ("votes/s", f"{res['votes_per_s']} (start to last ack); all answered in {res['wall_s']} s"),
        ("ack ms", latency_text(res["ack_ms"])),
        ("node CPU", _cpu_text(res.get("server_cpu_burst"))),
        ("clients' CPU", _clients_text(res.get("clients_cpu_burst"))),
        ("tallies", f"{'exact' if res['exact'] else 'WRONG'} {res['tallies']}"),
    ]


def _cpu_text(cpu: dict[str, float] | None) -> str:
    if not cpu:
        return "not read (the node's pid is unknown: --server-pid)"
    return (
        f"{cpu['cpu_pct']}% of a core from the start to the last ack ({cpu['seconds']} s; "
        f"{cpu.get('system_pct', '?')}% in the kernel), {cpu['us_per_vote']} µs per vote"
    )


def _clients_text(cpu: dict[str, float] | None) -> str:
    if not cpu:
        return "not read"
    busy = " (busy: their own wait is in the latency)" if cpu["cpu_pct"] >= 90 else ""
    return f"{cpu['cpu_pct']}% of a core over the same window{busy}"


def add_arguments(load: argparse._ArgumentGroup) -> None:
    load.add_argument("--ack-timeout", type=float, default=10.0)
    load.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="votes per viewer, each sent when the one before is acknowledged (the next "
        "option each time: a changed vote): over 1, a sustained rate, not one burst",
    )
