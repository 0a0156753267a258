"""Votes through the room service and the store, in one process, without sockets: what
committing costs per vote (issue 14, batched commits), apart from the hub and clients.
It runs the server's code in its own process, so it lives beside the tests: loadtest/
never imports the server.

    python -m tests.commit_burst --backend redis --votes 5000 --rounds 3
    python -m tests.commit_burst --backend redis --voters 2000 --duration 10

Burst (default): ``--votes`` viewers call ``RoomService.participate`` with a vote at
the same moment; prints per round the wall time, the CPU time per vote, votes/s, the
p50/p99 of a call, the store's write calls and the tallies. Sustained (``--duration``):
``--voters`` viewers each vote again as soon as the last vote was acknowledged (a new
key, the other option), for that many seconds; prints acknowledged votes/s. With
``--backend redis`` a private ``redis-server`` is started on a free loopback port;
``--backend embedded`` runs the durable store in a temporary data directory.
``--server-src`` runs another checkout's server package (a before/after comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    proc = subprocess.Popen([*args, "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            if time.monotonic() > deadline:
                raise SystemExit("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait()


class Outbox:
    """The hub's side, answered with nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: 0


async def run(args: argparse.Namespace, url: str | None) -> None:
    from server.backends import open_backends
    from server.backends.memory import MemoryStore

    backends = open_backends(url, prefix=f"cb{uuid.uuid4().hex[:6]}:") if url else None
    store: Any = backends.store if backends else MemoryStore()
    calls = [0]  # write calls made to the store (a call made inside one is not counted)
    inside: contextvars.ContextVar[bool] = contextvars.ContextVar("inside", default=False)
    for name in ("submit", "submit_many", "apply"):
        original = getattr(store, name, None)
        if original is None:  # a checkout from before submit_many
            continue

        async def counted(*a: Any, _original: Any = original, **k: Any) -> Any:
            if inside.get():
                return await _original(*a, **k)
            calls[0] += 1
            token = inside.set(True)
            try:
                return await _original(*a, **k)
            finally:
                inside.reset(token)

        setattr(store, name, counted)
    for round_ in range(1, args.rounds + 1):
        await one_round(args, store, f"cb{round_}", calls, shared=bool(url))
    if backends:
        await backends.broker.close()
        await backends.store.close()


async def one_round(
    args: argparse.Namespace, store: Any, room: str, calls: list[int], *, shared: bool
) -> None:
    from server.auth import Authority, Identity
    from server.backends.base import RoomRecord
    from server.interactions.registry import Registry
    from server.rooms.service import RoomService

    authority = Authority("admin-token-xxxxxxxx", "s" * 32)
    options = [{"id": c, "label": c} for c in "abcd"]
    spec = {"id": "p", "question": "Q?", "kind": "single", "options": options}
    await store.create_room(RoomRecord(room, room, time.time(), 1, {}))
    rooms = RoomService(store, Registry(), authority, node_id="n1", shared=shared)
    rooms.bind(Outbox())  # type: ignore[arg-type]
    await rooms.host(room, "create", {"kind": "poll", "spec": spec})
    await rooms.host(room, "open", {"interaction": "p"})
    await rooms.enter(await rooms.room(room), Identity("host", "host", "viewer", room))

    async def vote(i: int, key: str, option: str) -> float:
        started = time.perf_counter()
        who = Identity(f"u{i}", f"u{i}", "viewer", room)
        await rooms.participate(room, who, "vote", key, {"interaction": "p", "option": option})
        return time.perf_counter() - started

    calls[0] = 0
    cpu, wall = time.process_time(), time.perf_counter()
    if args.duration:
        acked = [0]
        stop = wall + args.duration

        async def voter(i: int) -> None:
            n = 0
            while time.perf_counter() < stop:
                await vote(i, f"k{n}", "abcd"[(i + n) % 4])
                n += 1
                acked[0] += 1

        await asyncio.gather(*(voter(i) for i in range(args.voters)))
        took = time.perf_counter() - wall
        print(
            f"{room}: {args.voters} voters, {acked[0]} votes acknowledged in {took:.2f} s = "
            f"{acked[0] / took:,.0f} votes/s; CPU "
            f"{1e6 * (time.process_time() - cpu) / acked[0]:.0f} us/vote, "
            f"{calls[0]} store write calls"
        )
    else:
        n = args.votes
        latencies = sorted(await asyncio.gather(*(vote(i, "k", "abcd"[i % 4]) for i in range(n))))
        took, used = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"{room}: {n} votes in {took:.3f} s = {n / took:,.0f} votes/s; CPU "
            f"{1e6 * used / n:.0f} us/vote; call p50 {1000 * latencies[n // 2]:.0f} ms, "
            f"p99 {1000 * latencies[int(n * 0.99)]:.0f} ms; {calls[0]} store write calls"
        )
    print(f"  tallies {sorted((await store.counters(room, 'p')).items())}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.commit_burst", description=__doc__)
    parser.add_argument("--backend", choices=["memory", "embedded", "redis"], default="memory")
    parser.add_argument("--votes", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--voters", type=int, default=2000, help="sustained: voters")
    parser.add_argument("--duration", type=float, default=0, help="sustained: seconds")
    parser.add_argument("--server-src", help="a checkout whose server package to run")
    args = parser.parse_args()
    if args.server_src:
        sys.path.insert(0, args.server_src)
    import uvloop

    if args.backend == "embedded":  # the durable store, in a temporary data directory
        with tempfile.TemporaryDirectory(prefix="hudong-commit-burst-") as data:
            uvloop.run(run(args, f"sqlite://{data}/hudong.db"))
        return
    with redis_server() if args.backend == "redis" else contextlib.nullcontext() as url:
        uvloop.run(run(args, url))


if __name__ == "__main__":
    main()
