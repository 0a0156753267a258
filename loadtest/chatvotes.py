"""Danmaku votes (弹幕投票, issue 18): N viewers vote in a poll by typing its codes as
danmaku ("1", "２", "C", "bun") within ``--over`` seconds; every danmaku must be
acknowledged and the final tallies exact.

    python -m loadtest chatvotes --spawn --viewers 5000 --over 2
    python -m loadtest chatvotes --spawn --redis-spawn --viewers 5000 --over 2

The poll takes danmaku (spec ``danmaku: true``), and the room hides vote danmaku from
the scrolling layer (``hide_vote_danmaku``; ``--show-votes`` sends them to everyone).
Viewers connect from ``--workers`` processes and join anonymously; viewer i of N sends
its one danmaku at ``i * over / N`` s after a common start, and is refused nothing the
spawned node's danmaku budget is raised for (``--server-env``
``HUDONG_LIMITS_ROOM_DANMAKU_PER_S`` and ``_BURST``, 20,000 unless given).

Latencies: ``ack_ms``, each danmaku's send -> ack; ``counted_ms``, send -> the first
``state`` an observer (one more viewer, in this process) sees with the vote counted;
``ack_counted_ms``, ack -> that ``state`` (negative where the count moved before the
ack reached its sender: the vote is committed when the node takes the danmaku, not
when the ack arrives). Votes are committed in the order the node takes the danmaku,
so the k-th send (or ack), in wall-clock time over every process, is paired with the
voter count reaching k. Both include the node's state flush, as an overlay sees it.
Exit 0 when every danmaku was acknowledged as a vote and the tallies are exact, 1
when not (or an SLO was missed), 2 when the run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

from loadtest import voters
from loadtest.harness import Run, run_loop
from loadtest.rest import POLL_OPTIONS
from loadtest.results import Rows
from loadtest.stats import latency_text, quantiles
from loadtest.viewers import RETRYABLE
from protocol.delta import HeldViews

NAME = "chatvotes"
HELP = "N viewers vote by danmaku within --over s: ack and counted latency, exact tallies"
CONFIG = ("viewers", "workers", "over", "show_votes", "server_env")
DEGRADE = False
GRACE_S = 30
LOAD = {
    "viewers": 5000,
    "workers": 4,
    "workers_help": "client processes",
    "deadline": 120,
    "drains": False,
}
SLOS = {
    "--slo-p99-ms": "fail when p99 ack latency is above",
    "--slo-counted-p99-ms": "fail when p99 send -> counted latency is above",
}
BUDGET = ("HUDONG_LIMITS_ROOM_DANMAKU_PER_S=20000", "HUDONG_LIMITS_ROOM_DANMAKU_BURST=20000")

POLL = "colour"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
# (viewer index, option, send -> ack s, wall-clock times of the send and of the ack,
# acknowledged as a vote)
Sent = tuple[int, str, float, float, float, bool]


def says(index: int) -> tuple[str, str]:
    """What viewer ``index`` types, and the option it names: the option's number,
    full-width number, letter or label, in turn."""
    k = index % len(POLL_OPTIONS)
    form = (index // len(POLL_OPTIONS)) % 4
    number = str(k + 1)
    text = (number, number.translate(FULL_WIDTH), chr(ord("A") + k), POLL_OPTIONS[k])[form]
    return text, POLL_OPTIONS[k]


# --- one client process -------------------------------------------------------------------


@dataclass
class Share(voters.Share):
    """A client process's part, and how the whole burst is spread: ``total`` viewers
    over ``over`` seconds."""

    total: int = 0
    over: float = 0.0


async def _viewers(share: Share) -> None:
    conns = await voters.join_all(share)
    begin = await voters.started(share)
    results: list[Sent] = []

    async def vote(index: int, voter: voters.Voter) -> None:
        text, option = says(index)
        command = voters.command_frame({"op": "danmaku", "id": 2, "text": text})
        await asyncio.sleep(max(0.0, begin + index * share.over / share.total - time.time()))
        started = time.perf_counter()
        sent_at = time.time()
        while True:
            try:
                left = share.ack_timeout - (time.perf_counter() - started)
                reply = await voter.command(command, max(left, 0.001))
            except TimeoutError:  # not retried: a second copy would be duplicate_text
                took = time.perf_counter() - started
                results.append((index, option, took, sent_at, 0.0, False))
                return
            if reply["type"] == "error" and reply.get("code") in (*RETRYABLE, "room_rate_limited"):
                await asyncio.sleep(reply.get("retry_after_ms", 200) / 1000)
                continue
            voted = reply["type"] == "ack" and reply.get("vote") is True
            took = time.perf_counter() - started
            results.append((index, option, took, sent_at, time.time(), voted))
            return

    await asyncio.gather(*(vote(i, voter) for i, voter in conns))
    share.out.put(("done", results))
    await voters.close_all(conns)


def _worker(share: Share) -> None:
    """One client process; its errors are reported, not hidden."""
    try:
        run_loop(_viewers(share))
    except Exception as exc:
        share.out.put(("error", repr(exc)))


# --- the observer: when each vote shows -----------------------------------------------------


class Observer:
    """One more viewer of the room, in this process: the wall-clock time at which the
    poll's voter count first reached each value."""

    def __init__(self) -> None:
        self.times: list[float] = []  # times[k - 1]: when the count first reached k
        self.task: asyncio.Task[None] | None = None

    async def watch(self, ws_url: str, room: str, ready: asyncio.Event) -> None:
        from websockets.asyncio.client import connect
        from websockets.typing import Subprotocol

        async with connect(
            ws_url, subprotocols=[Subprotocol("hudong.v1.json")], max_size=None
        ) as ws:
            await ws.recv()  # hello
            await ws.send(orjson.dumps({"op": "join", "id": 1, "room": room}).decode())
            ready.set()
            held = HeldViews()  # state messages carry changes (PROTOCOL.md, "State messages")
            async for raw in ws:
                at = time.time()
                message = orjson.loads(raw)
                kind = message.get("type")
                if kind in ("joined", "snapshot"):
                    held.snapshot(message["snapshot"])
                elif kind != "state":
                    continue
                elif held.state(message) is None:  # a gap: ask for the room's snapshot
                    await ws.send(b'{"op":"snapshot"}'.decode())
                    continue
                view = held.views.get(POLL)
                if isinstance(view, dict) and "results" in view:
                    voters = int(view["results"].get("voters") or 0)
                    while len(self.times) < voters:
                        self.times.append(at)

    def counted_ms(self, since: list[float]) -> list[float]:
        """Time -> counted for each vote: the k-th of ``since`` (send or ack times) and
        the voter count reaching k."""
        return [
            (self.times[k] - at) * 1000 for k, at in enumerate(sorted(since)) if k < len(self.times)
        ]


# --- the run -------------------------------------------------------------------------------


def check_args(args: argparse.Namespace) -> None:
    if args.over < 0:
        raise SystemExit("FATAL: --over must be 0 or more")
    given = {item.partition("=")[0] for item in args.server_env}
    args.server_env[:0] = [item for item in BUDGET if item.partition("=")[0] not in given]


async def body(run: Run) -> None:
    a, res = run.args, run.res
    await asyncio.to_thread(run.api.prepare_room, run.room)
    settings = {"settings": {"hide_vote_danmaku": not a.show_votes}}
    await asyncio.to_thread(
        run.api.expect, 200, "setting the room", "PATCH", f"/api/v1/rooms/{run.room}", settings
    )
    options = [{"id": o, "label": o} for o in POLL_OPTIONS]
    spec = {"id": POLL, "question": "弹幕投票", "kind": "single", "options": options}
    await asyncio.to_thread(run.api.create, run.room, "poll", {**spec, "danmaku": True})
    await asyncio.to_thread(run.api.act, run.room, POLL, "open")
    res["backend"] = run.deployment.backend
    res["viewers"] = a.viewers

    ws_url = run.server.base.replace("http", "ws", 1) + "/ws"
    observer = Observer()
    ready = asyncio.Event()
    observer.task = asyncio.get_running_loop().create_task(observer.watch(ws_url, run.room, ready))
    await asyncio.wait_for(ready.wait(), 30)

    async def stop_observer() -> None:
        if observer.task is not None:
            observer.task.cancel()

    run.closers.append(stop_observer)
    fleet = voters.Fleet(run, a.viewers, a.workers)
    progress = fleet.progress
    run.phase = "connect"
    run.status = lambda: f"viewers {progress.value}/{a.viewers}, counted {len(observer.times)}"
    fleet.spawn(_worker, a.ack_timeout, Share, total=a.viewers, over=a.over)
    deadline = time.monotonic() + a.deadline
    connected = await fleet.all_joined(deadline)
    run.phase = "voting"
    begin, results, errors = await fleet.go(deadline)
    await fleet.stop()
    voted = [r for r in results if r[5]]
    settle = time.monotonic() + 10
    while len(observer.times) < len(voted) and time.monotonic() < settle:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # the observer's count, read as it grows
    await stop_observer()

    expected = Counter(r[1] for r in voted)
    tallies, _, exact = await asyncio.to_thread(
        run.api.poll_outcome, run.room, POLL, expected, len(voted)
    )
    last_ack = max((r[4] for r in voted), default=begin)
    counted = observer.counted_ms([r[3] for r in voted])
    ack_counted = observer.counted_ms([r[4] for r in voted])
    res.update(
        {
            "connected": connected,
            "voted": len(voted),
            "refused": len(results) - len(voted),
            "errors": errors,
            "sent_over_s": round(last_ack - begin, 2),
            "votes_per_s": round(len(voted) / max(last_ack - begin, 1e-9), 1),
            "ack_ms": quantiles((r[2] * 1000 for r in voted), nd=1),
            "counted_ms": quantiles(counted, nd=1),
            "ack_counted_ms": quantiles(ack_counted, nd=1),
            "seen": len(observer.times),
            "tallies": tallies,
            "expected": dict(expected),
            "exact": exact,
        }
    )
    run.check("all_voted", len(voted) == a.viewers, f"{len(voted)}/{a.viewers} counted as votes")
    run.check("exact", exact, f"tallies {tallies}, expected {dict(expected)}")
    run.check("seen", len(observer.times) >= len(voted), f"{len(observer.times)} seen counted")
    run.check("no_errors", not errors, f"client processes: {errors[:3]}")
    run.slo("p99_ms", a.slo_p99_ms, res["ack_ms"]["p99"])
    run.slo("counted_p99_ms", a.slo_counted_p99_ms, res["counted_ms"]["p99"])
    missed = [name for name, slo in res["slo"].items() if not slo["ok"]]
    if missed:
        res["slo_missed"] = ", ".join(missed)


def rows(res: dict[str, Any]) -> Rows:
    return [
        (
            "danmaku votes",
            f"{res['voted']}/{res['viewers']} acknowledged as votes ({res['backend']}), "
            f"{res['connected']} connected, {res['refused']} not",
        ),
        ("votes/s", f"{res['votes_per_s']} (start to last ack, {res['sent_over_s']} s)"),
        ("ack ms", latency_text(res["ack_ms"])),
        ("send->counted ms", latency_text(res["counted_ms"])),
        ("ack->counted ms", latency_text(res["ack_counted_ms"])),
        ("tallies", f"{'exact' if res['exact'] else 'WRONG'} {res['tallies']}"),
    ]


def add_arguments(load: argparse._ArgumentGroup) -> None:
    load.add_argument("--over", type=float, default=2.0, help="seconds the votes spread over")
    load.add_argument("--ack-timeout", type=float, default=10.0)
    load.add_argument(
        "--show-votes",
        action="store_true",
        help="leave hide_vote_danmaku off: every vote danmaku goes to every viewer",
    )
