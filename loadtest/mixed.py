"""Mixed overload: a danmaku storm (viewer senders, 4/s each) plus a vote burst (voters,
one vote in flight each) at ``--overload-factor`` times ``--rate`` / ``--vote-rate``
for ``--duration`` s; then waits (up to ``--recover-timeout``) for the node to be back
at degrade level 0.

    python -m loadtest mixed --spawn --viewers 5000 --rate 500 --vote-rate 200 \\
        --overload-factor 4

With ``--url`` and ``--also-url``, the viewers (watchers, senders and voters alike)
are spread over every node given, in turn.

Reports how long an acknowledged vote takes to show in a ``state`` message (its
``version``), what the storm and the votes got, the levels the node went through, and
the generator's own counts (``counts``: viewers connected, distinct participants,
danmaku sent and accepted, votes acknowledged, each voter's last option),
for comparing with what the node shows. Checks that the tallies over REST are exactly
what was acknowledged, and that every acknowledged vote that changed the voter's option
reached a ``state``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import secrets
import time
from collections import Counter
from typing import Any

from loadtest import harness
from loadtest.harness import Run
from loadtest.rest import POLL_OPTIONS, metrics_delta, metrics_named
from loadtest.results import Fatal, Rows
from loadtest.stats import latencies_ms, latency_text, pct, quantiles, rnd
from loadtest.viewers import Member, Publisher, paced

NAME = "mixed"
HELP = "danmaku storm + vote burst, --overload-factor: state latency, exact votes, levels"
CONFIG = ("viewers", "rate", "vote_rate", "overload_factor", "duration", "gen_cpu")
check_args = harness.check_publishing
LOAD = {"viewers": 5000, "deadline": 300}
SLOS = {
    "--slo-state-p99-ms": "p99 vote ack → its state message",
    "--slo-recover-s": "load end → level 0",
    "--slo-max-level": "highest degrade level allowed",
}

SENDS_PER_CONNECTION = 4  # under a viewer's 5 commands/s (PROTOCOL.md, "Limits")


def add_arguments(load: argparse._ArgumentGroup) -> None:
    harness.add_publish_arguments(load, rate=500, duration=20, warmup=None, probes=50)
    load.add_argument("--vote-rate", type=float, default=200, help="votes/s at factor 1")
    load.add_argument(
        "--overload-factor", type=float, default=1.0, help="offer this many times both rates"
    )
    load.add_argument(
        "--senders",
        type=int,
        help="viewer connections that send the danmaku (default: enough for 4/s each)",
    )
    load.add_argument("--voters", type=int, help="viewer connections that vote (default: 4/s each)")
    load.add_argument("--ack-timeout", type=float, default=10)
    load.add_argument("--recover-timeout", type=float, default=90, help="wait for level 0 (s)")


class Ballots:
    """Votes at a rate over the voters in turn, at most one in flight per voter."""

    def __init__(self, run: Run, voters: list[Member], poll: str, deadline: float) -> None:
        self.run = run
        self.voters = voters
        self.poll = poll
        self.deadline = deadline
        self.last_acked: dict[int, str] = {}  # voter index -> option of its last acked vote
        self.acked = 0
        self.refused: Counter[str] = Counter()
        self.busy: set[int] = set()
        self.skipped = 0
        self.ack_ms: list[float] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def cast(self, seq: int) -> None:
        i = seq % len(self.voters)
        if i in self.busy:
            self.skipped += 1  # its previous vote is not answered yet
            return
        self.busy.add(i)
        task = asyncio.get_running_loop().create_task(self.vote(i, self.voters[i]))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def vote(self, i: int, m: Member) -> None:
        option = random.choice(POLL_OPTIONS)
        cmd = {
            "op": "vote",
            "interaction": self.poll,
            "key": secrets.token_hex(8),
            "option": option,
        }
        started = time.monotonic()
        try:
            reply = await m.command(cmd, self.run.args.ack_timeout, self.deadline)
        finally:
            self.busy.discard(i)
        if reply.get("type") == "ack":
            self.acked += 1
            again = self.last_acked.get(i) == option
            self.last_acked[i] = option
            self.ack_ms.append(1000 * (time.monotonic() - started))
            if not again:  # the same option again changes no view: no state to wait for
                m.ack_seen(reply)
        else:
            self.refused[str(reply.get("code"))] += 1

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.acked + sum(self.refused.values()),
            "acked": self.acked,
            "refused": dict(self.refused),
            "skipped_busy": self.skipped,
            "ack_ms": quantiles(self.ack_ms),
            "voters_with_ack": len(self.last_acked),
        }


def state_p99_by_5s(voters: list[Member], t0_ns: int) -> dict[str, Any]:
    """ack → state p99 of the votes acknowledged in each 5 s of the load."""
    buckets: dict[int, list[float]] = {}
    for m in voters:
        for at, x in zip(m.state_ack_ns, m.state_lat_ms, strict=True):
            buckets.setdefault(int((at - t0_ns) // 5e9), []).append(x)
    return {
        f"{5 * k}-{5 * k + 5}s": {"p99": rnd(pct(sorted(v), 0.99)), "samples": len(v)}
        for k, v in sorted(buckets.items())
    }


async def body(run: Run) -> None:
    a, res = run.args, run.res
    f = a.overload_factor
    rate, vote_rate = a.rate * f, a.vote_rate * f
    n_send = a.senders or max(1, math.ceil(rate / SENDS_PER_CONNECTION))
    n_vote = a.voters or max(1, math.ceil(vote_rate / SENDS_PER_CONNECTION))
    n_watch = a.viewers - n_send - n_vote
    if n_watch < a.probes:
        raise Fatal(f"--viewers {a.viewers} < senders + voters + probes")
    res["config"] |= {"senders": n_send, "voters": n_vote, "probes": a.probes}
    await asyncio.to_thread(run.api.prepare_room, run.room)
    poll = f"poll-{secrets.token_hex(3)}"
    await asyncio.to_thread(run.api.open_poll, run.room, poll, "mixed load")
    res["poll"] = poll

    run.phase = "connect"
    run.status = lambda: f"viewers {len(run.clients)} + drains"
    nodes = run.deployment.nodes
    auds, watching = [], {"connected": 0, "probes": 0, "failed": 0}
    for k, node in enumerate(nodes):  # an even share of each part on each node
        aud = run.audience(node)
        got = await aud.connect(share(n_watch, k, nodes), share(a.probes, k, nodes), a.workers)
        auds.append(aud)
        watching = {key: watching[key] + got[key] for key in watching}
    senders: list[Member] = []
    voters: list[Member] = []
    serr: list[str] = []
    verr: list[str] = []
    for k, node in enumerate(nodes):
        ok, err = await run.connect(Member, share(n_send, k, nodes), server=node)
        senders, serr = senders + ok, serr + err
        ok, err = await run.connect(Member, share(n_vote, k, nodes), server=node)
        voters, verr = voters + ok, verr + err
    res["connect"] = {
        "drains": watching["connected"] - watching["probes"],
        "probes": watching["probes"],
        "senders": len(senders),
        "voters": len(voters),
        "failed": watching["failed"] + len(serr) + len(verr),
        "nodes": len(nodes),
    }
    if not senders or not voters:
        raise Fatal(f"senders or voters could not connect: {serr[:2]} {verr[:2]}")
    await asyncio.sleep(1)

    run.phase = "load"
    m0 = await asyncio.to_thread(run.api.metrics)
    cpu0, t0, t0_ns = run.cpu(), time.monotonic(), time.time_ns()
    since = t0 - run.t0
    pub = Publisher(senders)
    ballots = Ballots(run, voters, poll, t0 + a.duration + a.ack_timeout * 3)
    run.status = lambda: (
        f"danmaku {pub.sent} votes acked {ballots.acked} in flight {len(ballots.busy)} "
        f"skipped {ballots.skipped}"
    )
    await asyncio.gather(pub.run(rate, a.duration), paced(vote_rate, a.duration, ballots.cast))
    load = run.cpu_since(cpu0, t0)
    t_end, t1_ns = time.monotonic(), time.time_ns()
    run.phase = "drain"
    if ballots.tasks:
        await asyncio.wait(set(ballots.tasks), timeout=a.ack_timeout * 3 + 5)
    m1 = await asyncio.to_thread(run.api.metrics)
    run.phase = "recover"
    assert run.poller is not None
    level_at_end = run.poller.level
    back = await run.poller.wait_level(0, a.recover_timeout)
    recover = None if back is None else run.poller.first_at(0, t_end - run.t0)
    await asyncio.sleep(1.5)  # last state messages
    expected = Counter(ballots.last_acked.values())
    tallies, voters_seen, exact = await asyncio.to_thread(
        run.api.poll_outcome, run.room, poll, expected, len(ballots.last_acked)
    )
    never = sum(len(m.waiting) for m in voters)
    metrics = metrics_delta(m0, m1)
    res.update(
        {
            "offered": {"danmaku_per_s": rate, "votes_per_s": vote_rate, "factor": f},
            "published": pub.sent,
            "danmaku_refused": pub.errors,
            "danmaku_latency_ms": quantiles(
                latencies_ms([p for aud in auds for p in aud.probes], t0_ns, t1_ns)
            ),
            "votes": ballots.summary(),
            "state_update_ms": quantiles(x for m in voters for x in m.state_lat_ms),
            "state_never_seen": never,
            "state_update_p99_by_5s": state_p99_by_5s(voters, t0_ns),
            "tallies": tallies,
            "expected_tallies": dict(expected),
            "server_cpu_load": load,
            "server_drops": metrics_named(metrics, "hudong_drops"),
            "degrade": run.degrade(since),
            "level_at_load_end": level_at_end,
            "level0_after_load_s": recover,
            "counts": own_counts(res["connect"], pub, ballots),
        }
    )
    run.check(
        "votes_exact",
        exact,
        f"tallies {tallies} voters {voters_seen}, expected "
        f"{dict(expected)} voters {len(ballots.last_acked)}",
    )
    run.check("state_seen", never == 0, f"{never} acked votes never seen in a state message")
    run.slo("state_p99_ms", a.slo_state_p99_ms, res["state_update_ms"]["p99"])
    run.slo("recover_s", a.slo_recover_s, recover)
    run.slo("max_level", a.slo_max_level, res["degrade"]["max"])


def share(n: int, k: int, nodes: list[Any]) -> int:
    """Node ``k``'s part of ``n`` things spread evenly over ``nodes``."""
    return n * (k + 1) // len(nodes) - n * k // len(nodes)


def own_counts(connect: dict[str, Any], pub: Publisher, ballots: Ballots) -> dict[str, Any]:
    """What the generator itself counted, as a node's live counts and timeline count it:
    the viewers that joined (each anonymous, so each a unique viewer), the distinct
    participants (senders with a danmaku taken, voters with a vote acknowledged), the
    danmaku sent and taken (sent without an id: only a refusal answers), the votes
    acknowledged (each one counts, also a vote again for the same option) and each
    voter's last acknowledged option (the poll's results)."""
    refused = [sum(s.errors.values()) for s in pub.senders]
    sending = [n > r for n, r in zip(pub.sent_by, refused, strict=True)]
    return {
        "viewers": connect["drains"] + connect["probes"] + connect["senders"] + connect["voters"],
        "participants": sum(sending) + len(ballots.last_acked),
        "danmaku_sent": pub.sent,
        "danmaku_accepted": pub.sent - sum(refused),
        "votes_acked": ballots.acked,
        "votes_by_option": dict(Counter(ballots.last_acked.values())),
    }


def rows(res: dict[str, Any]) -> Rows:
    o, v, c = res["offered"], res["votes"], res["connect"]
    s, d = res["state_update_ms"], res["danmaku_latency_ms"]
    return [
        (
            "viewers",
            f"{c['drains'] + c['probes']} watching ({c['probes']} probes), {c['senders']} "
            f"senders, {c['voters']} voters, {c['failed']} failed",
        ),
        (
            "offered",
            f"{o['danmaku_per_s']:g} danmaku/s + {o['votes_per_s']:g} votes/s "
            f"(×{o['factor']:g}) for {res['config']['duration']:g} s",
        ),
        (
            "danmaku",
            f"{res['published']} sent, refused {res['danmaku_refused'] or 'none'}; "
            f"latency p50 {d['p50']}  p99 {d['p99']} ms ({d['samples']} samples)",
        ),
        (
            "votes",
            f"{v['acked']} acked of {v['sent']} sent, refused {v['refused'] or 'none'}, "
            f"{v['skipped_busy']} skipped (voter busy); ack p50 {v['ack_ms']['p50']}  "
            f"p99 {v['ack_ms']['p99']} ms",
        ),
        (
            "state updates",
            f"ack → state {latency_text(s)} ms "
            f"({s['samples']} samples, {res['state_never_seen']} never seen)",
        ),
        (
            "state p99 / 5 s",
            ", ".join(f"{k} {v['p99']}" for k, v in res["state_update_p99_by_5s"].items()),
        ),
        ("tallies", f"{res['tallies']} (expected {res['expected_tallies']})"),
        ("server CPU", f"{res['server_cpu_load']['cpu_pct']}% during the load"),
        ("server drops", str(res["server_drops"] or "none")),
        harness.levels_row(res),
        (
            "back at level 0",
            f"{res['level0_after_load_s']} s after the load ended "
            f"(level at end {res['level_at_load_end']})",
        ),
    ]
