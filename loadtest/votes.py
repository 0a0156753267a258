"""Vote burst: N viewers vote in one poll at once; every vote must be acknowledged
and the final tallies must be exact.

    python -m loadtest votes --spawn --viewers 5000
    python -m loadtest votes --spawn --redis-spawn --viewers 5000

Viewers connect from ``--workers`` processes (hudong.v1.json), join anonymously
and wait; at a common start time each sends one ``vote`` with its own idempotency
key and retries it with the same key on ``store_unavailable`` or after
``--ack-timeout`` without an answer, until acknowledged. Reports votes/s (acked
votes over the time from the start to the last ack) and the acknowledgement latency
(first send to ack, retries included), then reads the poll's results over REST and
compares them with what the viewers voted. Exit 0 when every vote was acknowledged
and the tallies are exact, 1 when not (or an SLO was missed), 2 when the run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from loadtest.fanout import http, require_loopback, spawn_server, stop_server

OPTIONS = ("bun", "patty", "sauce", "cheese")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--url", help="a running server's base URL (else --spawn)")
    ap.add_argument("--admin-token", default=os.environ.get("HUDONG_ADMIN_TOKEN"))
    ap.add_argument("--spawn", action="store_true", help="start `hudong serve` for the run")
    ap.add_argument(
        "--redis-spawn",
        action="store_true",
        help="with --spawn: start a redis-server and put the node on it",
    )
    ap.add_argument("--redis", help="with --spawn: put the node on this Redis URL")
    ap.add_argument("--viewers", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=4, help="client processes")
    ap.add_argument("--ack-timeout", type=float, default=10.0)
    ap.add_argument("--deadline", type=float, default=120.0, help="give up after (s)")
    ap.add_argument("--json-out", help="where to write the JSON result")
    ap.add_argument("--slo-p99-ms", type=float, help="fail when p99 ack latency is above")
    ap.add_argument("--quiet", action="store_true", help="no progress line")
    # what fanout.spawn_server reads
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--server-cpu", type=int)
    ap.add_argument("--server-src")
    ap.add_argument("--server-env", action="append", default=[])
    ap.add_argument("--start-timeout", type=float, default=30.0)


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need + 512))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# --- one client process -------------------------------------------------------------------


async def _viewers(
    ws_url: str, count: int, first: int, start_at: Any, out: Any, ack_timeout: float, progress: Any
) -> None:
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    gate = asyncio.Semaphore(64)
    conns: list[Any] = []

    async def open_one(i: int) -> None:
        async with gate:
            for attempt in range(5):
                try:
                    ws = await connect(
                        ws_url,
                        subprotocols=[Subprotocol("hudong.v1.json")],
                        compression=None,
                        ping_interval=None,
                        open_timeout=30,
                        max_size=None,
                    )
                    break
                except OSError:
                    await asyncio.sleep(0.2 * (attempt + 1))
            else:
                raise ConnectionError("could not connect")
            await ws.recv()  # hello
            await ws.send(orjson.dumps({"op": "join", "id": 1, "room": "votes"}).decode())
            while True:
                reply = orjson.loads(await ws.recv())
                if reply.get("type") == "joined":
                    break
            conns.append((first + i, ws))
            with progress.get_lock():
                progress.value += 1

    await asyncio.gather(*(open_one(i) for i in range(count)))
    # The start time comes from the parent process through shared memory: poll it.
    while time.time() < start_at.value or start_at.value == 0:  # noqa: ASYNC110
        await asyncio.sleep(0.01)

    results: list[tuple[int, str, float, int, bool]] = []

    async def vote(index: int, ws: Any) -> None:
        option = OPTIONS[index % len(OPTIONS)]
        key = f"v-{index}-{secrets.token_hex(4)}"
        command = orjson.dumps(
            {"op": "vote", "id": 2, "interaction": "burger", "key": key, "option": option}
        ).decode()
        started = time.perf_counter()
        tries = 0
        while True:
            tries += 1
            await ws.send(command)
            sent = time.monotonic()
            try:
                while True:
                    left = ack_timeout - (time.monotonic() - sent)
                    reply = orjson.loads(await asyncio.wait_for(ws.recv(), max(left, 0.001)))
                    if reply.get("id") == 2:
                        break
            except TimeoutError:
                continue
            if reply["type"] == "ack":
                results.append((index, option, time.perf_counter() - started, tries, True))
                return
            if reply.get("code") in ("store_unavailable", "rate_limited", "internal_error"):
                await asyncio.sleep(reply.get("retry_after_ms", 200) / 1000)
                continue
            results.append((index, option, time.perf_counter() - started, tries, False))
            return

    await asyncio.gather(*(vote(i, ws) for i, ws in conns))
    out.put(("done", results))
    for _, ws in conns:
        await ws.close()


def _worker(
    ws_url: str, count: int, first: int, start_at: Any, out: Any, ack_timeout: float, progress: Any
) -> None:
    _raise_fd_limit(count + 64)
    try:
        import uvloop

        uvloop.run(_viewers(ws_url, count, first, start_at, out, ack_timeout, progress))
    except ImportError:  # pragma: no cover
        asyncio.run(_viewers(ws_url, count, first, start_at, out, ack_timeout, progress))
    except Exception as exc:  # reported, not hidden
        out.put(("error", repr(exc)))


# --- the run -------------------------------------------------------------------------------


def _spawn_redis() -> tuple[subprocess.Popen[bytes], str, str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("--redis-spawn needs redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    directory = tempfile.mkdtemp(prefix="hudong-votes-redis-")
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                break
        except OSError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0", directory


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_votes(args: argparse.Namespace) -> int:
    """Exit status: 0 every vote acked and tallies exact; 1 not, or an SLO missed; 2 the
    run could not be done."""
    try:
        return _run_votes(args)
    except SystemExit as exc:
        if isinstance(exc.code, int):
            raise
        print(f"FATAL: {exc.code}", file=sys.stderr)
        return 2
    except OSError as exc:  # the server cannot be reached (urllib's URLError included)
        print(f"FATAL: {args.url or 'the spawned server'}: {exc}", file=sys.stderr)
        return 2


def _run_votes(args: argparse.Namespace) -> int:
    _raise_fd_limit(args.viewers + 64)
    redis_proc = None
    server = None
    try:
        if args.spawn:
            if args.redis_spawn:
                redis_proc, redis_url, _ = _spawn_redis()
                args.server_env.append(f"HUDONG_REDIS_URL={redis_url}")
            elif args.redis:
                args.server_env.append(f"HUDONG_REDIS_URL={args.redis}")
            server = spawn_server(args)
            base, token = server.base, server.admin_token
        elif args.url and args.admin_token:
            require_loopback(args.url)
            base, token = args.url.rstrip("/"), args.admin_token
        else:
            raise SystemExit("give --spawn, or --url with --admin-token / HUDONG_ADMIN_TOKEN")
        return _run(
            args,
            base,
            token,
            backend="redis"
            if (args.redis_spawn or args.redis)
            else "memory"
            if args.spawn
            else "given",
        )
    finally:
        if server is not None:
            stop_server(server)
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)


def _run(args: argparse.Namespace, base: str, token: str, backend: str) -> int:
    status, _ = http("POST", f"{base}/api/v1/rooms", token, {"id": "votes"})
    if status not in (201, 409):
        raise SystemExit(f"creating the room failed: {status}")
    spec = {
        "id": "burger",
        "question": "Which part matters most?",
        "kind": "single",
        "options": [{"id": o, "label": o} for o in OPTIONS],
    }
    status, body = http(
        "POST", f"{base}/api/v1/rooms/votes/interactions", token, {"kind": "poll", "spec": spec}
    )
    if status != 201:
        raise SystemExit(f"creating the poll failed: {status} {body}")
    status, body = http(
        "POST", f"{base}/api/v1/rooms/votes/interactions/burger/actions", token, {"action": "open"}
    )
    if status != 200:
        raise SystemExit(f"opening the poll failed: {status} {body}")

    ctx = multiprocessing.get_context("spawn")
    start_at = ctx.Value("d", 0.0)
    progress = ctx.Value("i", 0)
    out = ctx.Queue()
    ws_url = base.replace("http", "ws", 1) + "/ws"
    workers = max(1, min(args.workers, args.viewers))
    shares = [
        args.viewers // workers + (1 if i < args.viewers % workers else 0) for i in range(workers)
    ]
    procs = []
    first = 0
    for share in shares:
        p = ctx.Process(
            target=_worker,
            args=(ws_url, share, first, start_at, out, args.ack_timeout, progress),
            daemon=True,
        )
        p.start()
        procs.append(p)
        first += share
    deadline = time.monotonic() + args.deadline
    while progress.value < args.viewers:
        if time.monotonic() > deadline or not any(p.is_alive() for p in procs):
            break
        if not args.quiet:
            print(f"\rconnected {progress.value}/{args.viewers}", end="", file=sys.stderr)
        time.sleep(0.2)
    connected = progress.value
    begin = time.time() + 0.5
    start_at.value = begin
    results: list[tuple[int, str, float, int, bool]] = []
    errors: list[str] = []
    finished = 0
    while finished < workers and time.monotonic() < deadline:
        try:
            kind, payload = out.get(timeout=0.5)
        except Exception:
            if not args.quiet:
                print(f"\rconnected {connected}/{args.viewers}  voting…", end="", file=sys.stderr)
            if not any(p.is_alive() for p in procs) and out.empty():
                break
            continue
        finished += 1
        if kind == "done":
            results.extend(payload)
        else:
            errors.append(payload)
    ended = time.time()
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
    if not args.quiet:
        print(file=sys.stderr)

    acked = [r for r in results if r[4]]
    refused = [r for r in results if not r[4]]
    latencies = [r[2] * 1000 for r in acked]
    last_ack = begin + max((r[2] for r in acked), default=0.0)
    expected = Counter(r[1] for r in acked)
    status, view = http("GET", f"{base}/api/v1/rooms/votes/interactions/burger", token)
    tallies = {o["id"]: o["count"] for o in view["results"]["options"]} if status == 200 else {}
    exact = tallies == {o: expected.get(o, 0) for o in OPTIONS} and (
        view["results"]["voters"] == len(acked)
    )
    result = {
        "scenario": "votes",
        "backend": backend,
        "viewers": args.viewers,
        "connected": connected,
        "acked": len(acked),
        "refused": len(refused),
        "retried": sum(1 for r in acked if r[3] > 1),
        "errors": errors,
        "votes_per_s": round(len(acked) / max(last_ack - begin, 1e-9), 1),
        "ack_ms": {
            "p50": round(percentile(latencies, 0.5), 1),
            "p90": round(percentile(latencies, 0.9), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(max(latencies, default=float("nan")), 1),
        },
        "tallies": tallies,
        "expected": dict(expected),
        "exact": exact,
        "wall_s": round(ended - begin, 2),
        "command": " ".join(["python -m loadtest", *sys.argv[1:]]),
    }
    ok = exact and len(acked) == args.viewers and not errors
    if args.slo_p99_ms is not None and result["ack_ms"]["p99"] > args.slo_p99_ms:
        ok = False
        result["slo_missed"] = f"p99 {result['ack_ms']['p99']} ms > {args.slo_p99_ms} ms"
    print(
        f"votes ({backend}): {len(acked)}/{args.viewers} acknowledged, "
        f"{result['votes_per_s']} votes/s, ack p50 {result['ack_ms']['p50']} ms, "
        f"p99 {result['ack_ms']['p99']} ms, max {result['ack_ms']['max']} ms; "
        f"tallies {'exact' if exact else 'WRONG'} {tallies}"
        + (f"; errors: {errors[:3]}" if errors else "")
    )
    out_path = (
        Path(args.json_out)
        if args.json_out
        else (Path(__file__).parent / "results" / f"votes-{time.strftime('%Y%m%d-%H%M%S')}.json")
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"JSON: {out_path}")
    return 0 if ok else 1
