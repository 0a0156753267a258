"""Many interactions: a room with ``--interactions`` K interactions of several kinds,
``--open`` M of them open, and ``--viewers`` N viewers who contribute to the open ones
at ``--rate`` contributions/s in all, for ``--duration`` s.

    python -m loadtest many --spawn --viewers 2000 --interactions 50 --open 10 --rate 200
    python -m loadtest many --spawn --viewers 2000 --interactions 1 --open 1 --rate 200

The room is made over REST: the open ones in this order (the first M), then closed
ones (drafts, unasked quizzes, closed boards) up to K: a single-choice poll, a quiz
with a question asked, a co-design, a draw (entry), a Q&A board (5 questions asked by
a seeding viewer, then upvoted), the room's check-in (every room's own, counted in K
when it is among the open ones), then multiple-choice, rating and ranked polls, then
more single-choice polls. K=1, M=1 is one open poll. At the end each client process
casts one more vote in the first poll from a viewer of its own, so that contributions
no view shows (quiz answers before the reveal) are covered by a later state.

Viewers connect from ``--workers`` client processes (asyncio, raw frames). Each
contribution goes to the next viewer in turn (one in flight per viewer; a busy one is
skipped) and to the open interactions in turn. Reports the time from each contribution's
``ack`` to the first ``state`` message whose ``version`` includes it (state p99), the
acks and refusals, the ``state`` messages a viewer got (count, bytes), the node's CPU
over the load (``loadtest/procstat.py``) and the degrade levels it went through.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from loadtest.harness import Run, collect_workers, run_loop, worker_stopper
from loadtest.rest import POLL_OPTIONS, AdminApi, metrics_delta, metrics_named
from loadtest.results import Fatal, Rows
from loadtest.servers import Server
from loadtest.stats import latency_text, quantiles
from loadtest.viewers import ClientStats, Member, connect_many, paced

NAME = "many"
HELP = "K interactions, M open, N viewers contributing: state p99, server CPU, levels"
CONFIG = ("viewers", "workers", "interactions", "open", "rate", "duration", "server_env")
LOAD = {
    "viewers": 2000,
    "workers": 4,
    "workers_help": "client processes",
    "deadline": 300,
    "drains": False,
}
SLOS = {
    "--slo-state-p99-ms": "p99 contribution ack → its state message",
    "--slo-max-level": "highest degrade level allowed",
}

# The kinds of the open interactions, in order (the first --open of them; then more
# single-choice polls).
OPEN_ORDER = ("single", "quiz", "codesign", "draw", "qa", "checkin", "multiple", "rating", "ranked")
# The kinds of the closed ones, in turn.
CLOSED_ORDER = ("single", "quiz", "codesign", "qa", "multiple", "draw")
QA_QUESTIONS = 5
SLOTS = ("bun", "patty", "sauce")
STATE_PREFIX = b'{"type":"state"'
VERSION = re.compile(rb'"version":(\d+)')
BASE = re.compile(rb'"base":(\d+)')


def add_arguments(load: argparse._ArgumentGroup) -> None:
    load.add_argument("--interactions", type=int, default=50, help="K: interactions in the room")
    load.add_argument("--open", type=int, default=10, help="M: of them open, contributed to")
    load.add_argument("--rate", type=float, default=200, help="contributions/s, all viewers")
    load.add_argument("--duration", type=float, default=30, help="load (s)")
    load.add_argument("--settle", type=float, default=3, help="idle wait after joining (s)")
    load.add_argument("--ack-timeout", type=float, default=10)


def check_args(args: argparse.Namespace) -> None:
    if not 1 <= args.open <= args.interactions:
        raise Fatal("--open must be 1 … --interactions")
    if args.rate <= 0 or args.duration <= 0:
        raise Fatal("--rate and --duration must be positive")


# --- the room ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One open interaction and what a contribution to it is."""

    iid: str
    what: str  # an entry of OPEN_ORDER
    extra: tuple[str, ...] = ()  # Q&A: the question ids

    def command(self, viewer: int, n: int) -> dict[str, Any]:
        """Viewer ``viewer``'s ``n``-th contribution here (``key`` added by the caller)."""
        o = POLL_OPTIONS
        pick = (viewer + n) % len(o)
        cmd: dict[str, Any] = {"op": "vote", "interaction": self.iid}
        if self.what == "single":
            cmd["option"] = o[pick]
        elif self.what == "multiple":
            cmd["options"] = [o[pick], o[(pick + 1) % len(o)]]
        elif self.what == "rating":
            cmd["rating"] = 1 + (viewer + n) % 5
        elif self.what == "ranked":
            cmd["ranking"] = [o[(pick + j) % len(o)] for j in range(len(o))]
        elif self.what == "quiz":
            cmd |= {"op": "answer", "question": "q1", "option": o[pick]}
        elif self.what == "codesign":
            cmd |= {"op": "pick", "slot": SLOTS[viewer % len(SLOTS)], "option": o[pick]}
        elif self.what == "draw":
            cmd["op"] = "enter"
        elif self.what == "qa":
            cmd |= {"op": "upvote", "question": self.extra[(viewer + n) % len(self.extra)]}
        else:  # the room's check-in
            cmd = {"op": "checkin"}
        return cmd


def _options() -> list[dict[str, str]]:
    return [{"id": o, "label": o} for o in POLL_OPTIONS]


def _spec(what: str, iid: str) -> tuple[str, dict[str, Any]]:
    """(kind, spec) of an interaction of ``what`` (an entry of OPEN_ORDER)."""
    if what in ("single", "multiple", "rating", "ranked"):
        poll: dict[str, Any] = {"id": iid, "question": f"{iid}?", "kind": what}
        if what != "rating":
            poll["options"] = _options()
        if what == "multiple":
            poll |= {"min_picks": 1, "max_picks": 2}
        if what == "rating":
            poll["scale"] = 5
        return "poll", poll
    if what == "quiz":
        q = {"id": "q1", "text": "?", "options": _options(), "correct": "bun", "time_limit_s": 600}
        return "quiz", {"id": iid, "title": iid, "questions": [q]}
    if what == "codesign":
        slots = [{"id": s, "label": s, "options": _options()} for s in SLOTS]
        return "codesign", {"id": iid, "title": iid, "slots": slots}
    if what == "draw":
        return "draw", {"id": iid, "title": iid, "winners": 3}
    return "qa", {"id": iid, "title": iid}


def _open_it(api: AdminApi, room: str, what: str, iid: str) -> None:
    path = f"/api/v1/rooms/{room}/interactions/{iid}/actions"
    if what == "quiz":
        api.expect(200, f"ask {iid}", "POST", path, {"action": "ask", "question": "q1"})
    elif what not in ("draw", "checkin"):  # a draw takes entries from the start
        api.expect(200, f"open {iid}", "POST", path, {"action": "open"})


def build_room(api: AdminApi, room: str, k: int, m: int) -> list[Target]:
    """Create the room's K interactions (the check-in, every room's own, counts as one
    when it is among the open ones) and open M; the open ones as targets."""
    api.prepare_room(room)
    targets = []
    for i in range(m):
        what = OPEN_ORDER[i] if i < len(OPEN_ORDER) else "single"
        iid = "checkin" if what == "checkin" else f"open{i}-{what}"
        if what != "checkin":
            kind, spec = _spec(what, iid)
            api.create(room, kind, spec)
        _open_it(api, room, what, iid)
        targets.append(Target(iid, what))
    for j in range(k - m):
        what = CLOSED_ORDER[j % len(CLOSED_ORDER)]
        kind, spec = _spec(what, f"closed{j}-{what}")
        api.create(room, kind, spec)
    return targets


async def seed_questions(run: Run, targets: list[Target]) -> list[Target]:
    """Ask the Q&A board's questions (one seeding viewer) so that viewers can upvote."""
    out = []
    for t in targets:
        if t.what != "qa":
            out.append(t)
            continue
        join = {"op": "join", "room": run.room}
        joined, errors = await connect_many(Member, run.server, 1, join, run.stats, 10)
        if not joined:
            raise Fatal(f"the seeding viewer could not join: {errors}")
        asker = joined[0]
        run.clients.append(asker)
        for q in range(QA_QUESTIONS):
            cmd = {"op": "ask", "interaction": t.iid, "key": f"seed-{q}", "text": f"Q{q}?"}
            reply = await asker.command(cmd, 10, time.monotonic() + 30)
            if reply.get("type") != "ack":
                raise Fatal(f"asking a question: {reply}")
        status, view = await asyncio.to_thread(run.api.view, run.room, t.iid)
        ids = tuple(q["id"] for q in view.get("questions", [])) if status == 200 else ()
        if len(ids) != QA_QUESTIONS:
            raise Fatal(f"the Q&A board shows {status} {str(view)[:200]}")
        out.append(Target(t.iid, t.what, ids))
    return out


# --- one client process ---------------------------------------------------------------------


class Contributor(Member):
    """A viewer that reads only the ``version`` of each ``state`` message (no decoding
    of the views: the clients must stay cheaper than the node they measure)."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.states = 0
        self.state_bytes = 0

    def on_message(self, payload: bytes, now_ns: int) -> None:
        if payload.startswith(STATE_PREFIX):
            found = VERSION.search(payload, 0, 256)
            base = BASE.search(payload, 0, 256)
            if found is not None:
                self.states += 1
                self.state_bytes += len(payload)
                self._state(int(found.group(1)), now_ns, int(base.group(1)) if base else None)
                return
        super().on_message(payload, now_ns)


@dataclass
class Share:
    """One client process's part: ``count`` viewers numbered from ``first``, ``rate``
    contributions/s; the start time, the joined count and the result queue are shared."""

    host: str
    port: int
    room: str
    count: int
    first: int
    rate: float
    duration: float
    ack_timeout: float
    targets: list[Target]
    start_at: Any  # multiprocessing.Value("d"): the common start, 0 until set
    progress: Any  # multiprocessing.Value("i"): viewers joined, all processes
    out: Any  # multiprocessing.Queue: ("done", {...}) or ("error", text)


class Contributions:
    """Contributions at a rate over one process's viewers in turn and the open
    interactions in turn, at most one in flight per viewer."""

    def __init__(self, share: Share, viewers: list[Contributor], deadline: float) -> None:
        self.share = share
        self.viewers = viewers
        self.deadline = deadline
        self.made: Counter[int] = Counter()  # viewer index -> contributions sent
        self.busy: set[int] = set()
        self.skipped = 0
        self.acked: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.ack_ms: list[float] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def cast(self, seq: int) -> None:
        i = seq % len(self.viewers)
        if i in self.busy:
            self.skipped += 1
            return
        self.busy.add(i)
        task = asyncio.get_running_loop().create_task(self.contribute(i))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def contribute(self, i: int) -> None:
        viewer, n = self.share.first + i, self.made[i]
        self.made[i] += 1
        targets = self.share.targets
        target = targets[(viewer + n) % len(targets)]
        cmd = target.command(viewer, n) | {"key": secrets.token_hex(8)}
        m = self.viewers[i]
        started = time.monotonic()
        try:
            reply = await m.command(cmd, self.share.ack_timeout, self.deadline)
        finally:
            self.busy.discard(i)
        if reply.get("type") == "ack":
            self.acked[target.what] += 1
            self.ack_ms.append(1000 * (time.monotonic() - started))
            m.ack_seen(reply)
        else:
            self.refused[f"{target.what} {reply.get('code')}"] += 1


async def _clients(share: Share) -> None:
    server = Server(f"http://{share.host}:{share.port}", share.host, share.port, "", None)
    stats = ClientStats()
    join = {"op": "join", "room": share.room}
    viewers, errors = await connect_many(Contributor, server, share.count, join, stats, 30, 50)
    with share.progress.get_lock():
        share.progress.value += len(viewers)
    if not viewers:
        share.out.put(("error", f"no viewer joined: {errors[:2]}"))
        return
    while time.time() < share.start_at.value or share.start_at.value == 0:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    work = Contributions(share, viewers, time.monotonic() + share.duration + 3 * share.ack_timeout)
    await paced(share.rate, share.duration, work.cast)
    if work.tasks:
        await asyncio.wait(set(work.tasks), timeout=3 * share.ack_timeout + 5)
    # A last vote that every viewer sees, by a viewer of its own: some contributions show
    # in no view (a quiz answer before the reveal), so only a later state covers them.
    last, _ = await connect_many(Contributor, server, 1, join, ClientStats(), 30)
    if last and share.targets[0].what == "single":
        cmd = share.targets[0].command(0, 0) | {"key": secrets.token_hex(8)}
        await last[0].command(cmd, share.ack_timeout, time.monotonic() + 30)
    await asyncio.sleep(2.0)  # the last state messages
    share.out.put(
        (
            "done",
            {
                "joined": len(viewers),
                "join_errors": errors[:3],
                "failed": len(errors),
                "acked": dict(work.acked),
                "refused": dict(work.refused),
                "skipped_busy": work.skipped,
                "ack_ms": work.ack_ms,
                "state_ms": [x for m in viewers for x in m.state_lat_ms],
                "never": sum(len(m.waiting) for m in viewers),
                "states": sum(m.states for m in viewers),
                "state_bytes": sum(m.state_bytes for m in viewers),
                "gaps": sum(m.gaps for m in viewers),
                "disconnects": stats.disconnects,
            },
        )
    )
    for m in viewers:
        m.abort()


def _worker(share: Share) -> None:
    """One client process; its errors are reported, not hidden."""
    try:
        run_loop(_clients(share))
    except Exception as exc:
        share.out.put(("error", repr(exc)))


# --- the run ----------------------------------------------------------------------------------


async def body(run: Run) -> None:
    a, res = run.args, run.res
    targets = await asyncio.to_thread(build_room, run.api, run.room, a.interactions, a.open)
    targets = await seed_questions(run, targets)
    res["open"] = [t.iid for t in targets]

    ctx = multiprocessing.get_context("spawn")
    start_at, progress, out = ctx.Value("d", 0.0), ctx.Value("i", 0), ctx.Queue()
    workers = max(1, min(a.workers, a.viewers))
    procs: list[multiprocessing.process.BaseProcess] = []

    stop_workers = worker_stopper(procs)

    run.closers.append(stop_workers)
    run.phase = "connect"
    run.status = lambda: f"viewers {progress.value}/{a.viewers}"
    first = 0
    for i in range(workers):
        count = a.viewers // workers + (1 if i < a.viewers % workers else 0)
        share = Share(
            run.server.host,
            run.server.port,
            run.room,
            count,
            first,
            a.rate * count / a.viewers,
            a.duration,
            a.ack_timeout,
            targets,
            start_at,
            progress,
            out,
        )
        p = ctx.Process(target=_worker, args=(share,), daemon=True)
        p.start()
        procs.append(p)
        first += count
    deadline = time.monotonic() + a.deadline
    while progress.value < a.viewers and time.monotonic() < deadline:
        if not any(p.is_alive() for p in procs):
            break
        await asyncio.sleep(0.2)
    res["connected"] = progress.value
    await asyncio.sleep(a.settle)

    run.phase = "load"
    m0 = await asyncio.to_thread(run.api.metrics)
    begin = time.time() + 0.5
    start_at.value = begin
    await asyncio.sleep(0.5)
    cpu0, t0 = run.cpu(), time.monotonic()
    since = t0 - run.t0
    await asyncio.sleep(a.duration)
    load = run.cpu_since(cpu0, t0)
    level_at_end = run.poller.level if run.poller is not None else None
    run.phase = "drain"
    parts: list[dict[str, Any]]
    parts, errors = await collect_workers(out, procs, workers, deadline)
    m1 = await asyncio.to_thread(run.api.metrics)
    await stop_workers()

    def total(name: str) -> Counter[str]:
        c: Counter[str] = Counter()
        for p in parts:
            c.update(p[name])
        return c

    acked, refused = total("acked"), total("refused")
    never = sum(p["never"] for p in parts)
    states = sum(p["states"] for p in parts)
    res.update(
        {
            "offered_per_s": a.rate,
            "viewers_joined": sum(p["joined"] for p in parts),
            "join_failed": sum(p["failed"] for p in parts),
            "acked": dict(acked),
            "acked_total": sum(acked.values()),
            "refused": dict(refused),
            "skipped_busy": sum(p["skipped_busy"] for p in parts),
            "ack_ms": quantiles(x for p in parts for x in p["ack_ms"]),
            "state_update_ms": quantiles(x for p in parts for x in p["state_ms"]),
            "state_never_seen": never,
            "state_messages": states,
            "state_bytes_mean": round(sum(p["state_bytes"] for p in parts) / max(states, 1)),
            "state_gaps": sum(p["gaps"] for p in parts),
            "disconnects": sum(p["disconnects"] for p in parts),
            "worker_errors": errors,
            "server_cpu_load": load,
            "server_drops": metrics_named(metrics_delta(m0, m1), "hudong_drops"),
            "degrade": run.degrade(since) if run.poller is not None else {},
            "level_at_load_end": level_at_end,
        }
    )
    run.check("no_worker_errors", not errors, f"client processes: {errors[:3]}")
    run.check("state_seen", never == 0, f"{never} acked contributions never seen in a state")
    run.slo("state_p99_ms", a.slo_state_p99_ms, res["state_update_ms"]["p99"])
    run.slo("max_level", a.slo_max_level, res["degrade"].get("max"))


def rows(res: dict[str, Any]) -> Rows:
    c = res["config"]
    s = res["state_update_ms"]
    return [
        (
            "room",
            f"{c['interactions']} interactions, {c['open']} open: {', '.join(res['open'])}",
        ),
        (
            "viewers",
            f"{res['viewers_joined']} joined, {res['join_failed']} failed, "
            f"{res['disconnects']} disconnected",
        ),
        (
            "contributions",
            f"{res['acked_total']} acked at {res['offered_per_s']:g}/s offered for "
            f"{c['duration']:g} s {res['acked']}; refused {res['refused'] or 'none'}, "
            f"{res['skipped_busy']} skipped (viewer busy); ack {latency_text(res['ack_ms'])} ms",
        ),
        (
            "state updates",
            f"ack → state {latency_text(s)} ms ({s['samples']} samples, "
            f"{res['state_never_seen']} never seen); {res['state_messages']} state messages "
            f"to viewers, {res['state_bytes_mean']} B each on average, "
            f"{res['state_gaps']} gaps",
        ),
        ("server CPU", f"{res['server_cpu_load']['cpu_pct']}% during the load"),
        ("server drops", str(res["server_drops"] or "none")),
        (
            "degrade levels",
            f"{' → '.join(str(x) for x in res['degrade'].get('path', [])) or '?'} "
            f"(max {res['degrade'].get('max')}, at load end {res['level_at_load_end']})",
        ),
    ]
