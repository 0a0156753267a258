"""10,000 fuzzed frames to a live node over real sockets, while honest viewers in the
same room keep sending and receiving (issue 15, acceptance 9).

Hypothesis makes the commands (every op, fitting fields and then broken ones:
tests/fuzzkit.py); a seeded generator turns them into frames of every sort a client
could send: whole, cut short, with junk after them, random bytes, oversize, fragmented,
text on a MessagePack connection and binary on a JSON one, text that is not UTF-8.
Four viewer connections (two per codec) send them in the honest viewers' room; a host
sends fuzzed host actions in a room of its own (a host who pauses danmaku is within
its rights, so it is not let loose on the honest viewers). A frame that ends a
connection (wrong frame type, over ``max_frame_bytes``) is followed by a new one.

Afterwards: no error and no traceback in the server's log, no ``internal_error`` or
1011 close, only the documented close codes, the node still answers, and the honest
viewers had every command acknowledged and saw each other's danmaku.
``HUDONG_FUZZ_SCALE`` multiplies the number of frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from asyncio import FIRST_COMPLETED
from collections import Counter
from collections.abc import Iterator
from typing import Any

from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from protocol.codec import JSON, MSGPACK, Codec
from protocol.messages import CORE_OPS
from server.interactions.registry import Registry
from server.rooms.moderation import ACTIONS as MODERATION_ACTIONS
from tests.conftest import UNIT, Client, LiveServer
from tests.fuzzkit import VALUES, cases, commands, fuzz_settings

REGISTRY = Registry()
VIEWER_OPS = (*CORE_OPS, *REGISTRY.ops)
HOST_ACTIONS = ("create", *sorted(REGISTRY.actions), *MODERATION_ACTIONS)
FRAMES = cases(10_000)
MAX_COMMAND_BYTES = 4096  # limits.max_command_bytes, the default
MAX_FRAME_BYTES = 65536  # limits.max_frame_bytes, the default
# The closes a fuzzed frame may cause (PROTOCOL.md, "Close codes"): wrong frame type,
# text that is not UTF-8, a frame over max_frame_bytes, broken framing.
FUZZ_CLOSES = {1002, 1003, 1007, 1009}
SYNC_ID = 2**53 - 1  # the ids of the fuzzers' own pings count down from here


class LogWatch(logging.Handler):
    """Keeps every record of the server's log at ERROR or above, or with a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    @contextlib.contextmanager
    def watching(self) -> Iterator[LogWatch]:
        # uvicorn's loggers do not propagate to the root logger
        loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self)


def hypothesis_commands(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` examples of ``strategy``, drawn as a Hypothesis test draws them (the same
    ones every run)."""
    out: list[Any] = []

    @settings(fuzz_settings(n), phases=[Phase.generate])
    @given(strategy)
    def collect(value: Any) -> None:
        out.append(value)

    collect()
    return out


@st.composite
def host_commands(draw: st.DrawFn) -> dict[str, Any]:
    """A host action with fields that fit, some of them broken: a kind's example spec
    with fields replaced, an interaction that exists or not, a moderation target."""
    action = draw(st.sampled_from(HOST_ACTIONS))
    obj: dict[str, Any] = {"op": "host", "id": draw(st.integers(0, 2**53 - 1)), "action": action}
    kinds = [k for k in REGISTRY if k.builtin is None]
    if action == "create":
        kind = draw(st.sampled_from(kinds))
        spec = dict(kind.example or {"id": "f1"})
        spec["id"] = draw(st.sampled_from(["f1", "f2", "f3"]))
        for _ in range(draw(st.integers(0, 2))):
            spec[draw(st.sampled_from([*spec, "x"]))] = draw(VALUES)
        obj |= {"kind": kind.name, "spec": spec}
    else:
        obj["interaction"] = draw(st.sampled_from(["f1", "f2", "f3", "wall", "checkin", "nope"]))
        obj["user"] = draw(st.sampled_from(["g-1", "", "x" * 100]))
    for _ in range(draw(st.integers(0, 2))):
        obj[draw(st.sampled_from(["interaction", "user", "event", "spec", "kind", "x"]))] = draw(
            VALUES
        )
    return obj


def encode(codec: Codec, obj: Any) -> bytes:
    try:
        return bytes(codec.encode(obj))
    except (TypeError, OverflowError, ValueError):  # integers past 64 bits
        return bytes(codec.encode(repr(obj)))


# payload (or its fragments), sent as a text frame, ends the connection
Frame = tuple[bytes | list[bytes], bool, bool]


def frames(rng: random.Random, codec: Codec, objs: list[Any], n: int) -> list[Frame]:
    """``n`` frames for a connection of ``codec`` made from ``objs``."""
    out: list[Frame] = []
    text = not codec.binary

    def framed(data: bytes) -> Frame:
        # a JSON connection's broken frames stay UTF-8 text: not UTF-8 is its own case
        return (data.decode("utf-8", "replace").encode() if text else data), text, False

    for _ in range(n):
        data = encode(codec, rng.choice(objs))
        roll = rng.random()
        if roll < 0.55:
            out.append((data, text, False))
        elif roll < 0.65:
            out.append(framed(data[: rng.randrange(len(data) + 1)]))
        elif roll < 0.75:
            out.append(framed(data + rng.randbytes(rng.randrange(1, 16))))
        elif roll < 0.83:
            out.append(framed(rng.randbytes(rng.randrange(64))))
        elif roll < 0.90:  # over max_command_bytes, under max_frame_bytes
            pad = "x" * rng.randrange(MAX_COMMAND_BYTES, MAX_FRAME_BYTES // 2)
            out.append((encode(codec, {"op": "danmaku", "id": 1, "text": pad}), text, False))
        elif roll < 0.985:  # fragmented
            cut = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(1, 4)))
            parts = [data[a:b] for a, b in zip([0, *cut], [*cut, len(data)], strict=True)]
            out.append((parts, text, False))
        elif roll < 0.99:  # the other codec's frame type: ends the connection (1003)
            out.append((data, not text, True))
        elif roll < 0.995 and text:  # not UTF-8 in a text frame (1007)
            out.append((b"\xff\xfe" + data, True, True))
        else:  # over max_frame_bytes (1009)
            out.append((b"x" * (MAX_FRAME_BYTES + 1), text, True))
    # A message over max_frame_bytes ends the connection (1009), whatever made it so big.
    return [
        (payload, text, fatal or size(payload) > MAX_FRAME_BYTES) for payload, text, fatal in out
    ]


def size(payload: bytes | list[bytes]) -> int:
    return len(payload) if isinstance(payload, bytes) else sum(map(len, payload))


class Fuzzer:
    """One fuzzing client: sends its frames, reads and counts what comes back, and
    connects and joins again after each frame that ends a connection. Before such a
    frame it waits for the answer to a ping, so that the node has read every frame
    before it: all of them reach the node."""

    def __init__(self, live: LiveServer, codec: Codec, room: str, token: str | None) -> None:
        self.live, self.codec, self.room, self.token = live, codec, room, token
        self.replies: Counter[str] = Counter()
        self.closes: Counter[int | None] = Counter()
        self.connects = 0
        self.pings = 0
        self.pong = asyncio.Event()  # the answer to the last ping came
        self.recent: list[bytes | list[bytes]] = []  # the frames sent last, for a failure

    async def _connect(self) -> tuple[Client, asyncio.Task[None]]:
        client = await self.live.connect(self.codec.subprotocol)
        self.connects += 1
        fields = {"token": self.token} if self.token else {"name": "fuzz"}
        await client.join(self.room, **fields)
        return client, asyncio.create_task(self._read(client))

    async def _read(self, client: Client) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for data in client.ws:
                raw = data if isinstance(data, bytes) else data.encode()
                message = self.codec.decode(raw)
                kind = message.get("type")
                if kind == "pong" and message.get("id") == SYNC_ID - self.pings:
                    self.pong.set()
                self.replies[f"error:{message.get('code')}" if kind == "error" else kind] += 1

    async def _sync(self, client: Client, reader: asyncio.Task[None]) -> None:
        """Wait until the node answered everything sent so far."""
        self.pings += 1
        self.pong.clear()
        await client.send({"op": "ping", "id": SYNC_ID - self.pings})
        pong = asyncio.create_task(self.pong.wait())
        await asyncio.wait([pong, reader], timeout=30 * UNIT, return_when=FIRST_COMPLETED)
        pong.cancel()
        assert self.pong.is_set(), (
            f"no pong; closed {client.ws.close_code} {client.ws.close_reason!r}; "
            f"the last frames: {self.recent}"
        )

    async def run(self, sends: list[Frame]) -> None:
        client, reader = await self._connect()
        for payload, text, fatal in sends:
            self.recent = [*self.recent[-11:], payload]
            if not fatal:
                await client.ws.send(payload, text=text)
                continue
            await self._sync(client, reader)
            with contextlib.suppress(ConnectionClosed):
                await client.ws.send(payload, text=text)
            await asyncio.wait_for(reader, 10 * UNIT)  # the node ends the connection
            self.closes[client.ws.close_code] += 1
            client, reader = await self._connect()
        await self._sync(client, reader)
        await client.close()
        await reader


class Honest:
    """A viewer that keeps voting and sending danmaku, and notes what it is told."""

    def __init__(self, client: Client, poll: dict[str, Any]) -> None:
        self.client, self.poll = client, poll["id"]
        self.options = [option["id"] for option in poll["options"]]
        self.sent: dict[int, str] = {}
        self.replies: dict[int, dict[str, Any]] = {}
        self.seen: set[str] = set()  # danmaku event ids from the room's batches

    async def read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                message = await self.client.recv(timeout=60)
                if message.get("type") == "batch":
                    self.seen.update(
                        e["id"] for e in message["events"] if e.get("type") == "danmaku"
                    )
                elif message.get("id") in self.sent:
                    self.replies[message["id"]] = message

    async def talk(self, stop: asyncio.Event, me: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            cid = self.client.next_id = self.client.next_id + 1
            if n % 3 == 0:
                option = n % 2
                self.sent[cid] = "vote"
                await self.client.send(
                    {
                        "op": "vote",
                        "id": cid,
                        "key": f"h{me}-{n}",
                        "interaction": self.poll,
                        "option": self.options[option],
                    }
                )
            elif n % 3 == 1:
                self.sent[cid] = "danmaku"
                await self.client.send({"op": "danmaku", "id": cid, "text": f"honest {me} #{n}"})
            else:
                self.sent[cid] = "ping"
                await self.client.send({"op": "ping", "id": cid})
            await asyncio.sleep(0.02)


async def test_ten_thousand_fuzzed_frames_hurt_no_one(server_factory):
    rng = random.Random(15)
    viewer_objs = hypothesis_commands(commands(VIEWER_OPS), cases(400))
    host_objs = hypothesis_commands(host_commands(), cases(150))
    # Each fuzz connection may send as fast as it likes: the frames must reach the parser
    # and the handlers, not stop at the rate limit (which has tests of its own).
    limits = {"viewer_commands_per_s": 1e6, "viewer_command_burst": 10**6}
    # Thousands of frames a second on a busy CI machine can raise the node's degrade level,
    # and slow mode would then refuse honest danmaku, rightly (tests/test_degrade*.py):
    # here the question is only whether fuzzed frames hurt anyone.
    hub = {"degrade_auto": False}
    watch = LogWatch()
    with watch.watching():
        async with server_factory(limits=limits, hub=hub) as live:
            await run_fuzz(live, rng, viewer_objs, host_objs)
    assert not watch.records, "\n".join(
        watch.format(r) if r.exc_info else r.getMessage() for r in watch.records
    )


async def run_fuzz(
    live: LiveServer,
    rng: random.Random,
    viewer_objs: list[Any],
    host_objs: list[Any],
) -> None:
    await live.create_room("fuzz")
    await live.create_room("fuzzhost")
    host_token = await live.mint("fuzzhost", "host")
    # One open interaction of every kind that has an example: the fuzzers' commands reach
    # each kind's rules (tests/fuzzkit.py names these interactions and their options).
    async with live.http() as http:
        for kind in REGISTRY:
            if kind.example is None:
                continue
            spec = dict(kind.example)
            r = await http.post(
                "/api/v1/rooms/fuzz/interactions", json={"kind": kind.name, "spec": spec}
            )
            assert r.status_code == 201, r.text
            if "open" in kind.actions:
                r = await http.post(
                    f"/api/v1/rooms/fuzz/interactions/{spec['id']}/actions",
                    json={"action": "open"},
                )
                assert r.status_code == 200, r.text
    poll = dict(REGISTRY.get("poll").example or {})

    honest = []
    for codec in (JSON, MSGPACK):
        client = await live.connect(codec.subprotocol)
        await client.join("fuzz", name=f"honest-{codec.name}")
        honest.append(Honest(client, poll))
    readers = [asyncio.create_task(h.read()) for h in honest]
    stop = asyncio.Event()
    talkers = [asyncio.create_task(h.talk(stop, i)) for i, h in enumerate(honest)]
    try:
        await fuzz_and_check(live, rng, viewer_objs, host_objs, host_token, honest, stop, talkers)
    finally:
        for task in [*talkers, *readers]:
            task.cancel()


async def fuzz_and_check(
    live: LiveServer,
    rng: random.Random,
    viewer_objs: list[Any],
    host_objs: list[Any],
    host_token: str,
    honest: list[Honest],
    stop: asyncio.Event,
    talkers: list[asyncio.Task[None]],
) -> None:

    host_share = FRAMES // 8
    per_viewer = (FRAMES - host_share) // 4
    fuzzers = [
        Fuzzer(live, JSON, "fuzz", None),
        Fuzzer(live, JSON, "fuzz", None),
        Fuzzer(live, MSGPACK, "fuzz", None),
        Fuzzer(live, MSGPACK, "fuzz", None),
    ]
    plans = [frames(rng, f.codec, viewer_objs, per_viewer) for f in fuzzers]
    host = Fuzzer(live, MSGPACK, "fuzzhost", host_token)
    fuzzers.append(host)
    plans.append(frames(rng, host.codec, host_objs, FRAMES - 4 * per_viewer))
    assert sum(len(p) for p in plans) == FRAMES

    started = time.monotonic()
    await asyncio.wait_for(
        asyncio.gather(*(f.run(p) for f, p in zip(fuzzers, plans, strict=True))), 120 * UNIT
    )
    took = time.monotonic() - started
    stop.set()
    await asyncio.gather(*talkers)

    # Every honest command is answered, and each honest viewer saw the other's danmaku.
    for _ in range(100):
        if all(len(h.replies) == len(h.sent) for h in honest):
            break
        await asyncio.sleep(0.1 * UNIT)
    await asyncio.sleep(0.5 * UNIT)  # the tick after the last danmaku
    for h in honest:
        assert len(h.sent) > 10, f"the honest viewer sent only {len(h.sent)} in {took:.1f} s"
        refused = {cid: r for cid, r in h.replies.items() if r["type"] not in ("ack", "pong")}
        assert not refused, refused
        assert set(h.replies) == set(h.sent), "some honest commands got no answer"
    for me, other in ((honest[0], honest[1]), (honest[1], honest[0])):
        events = {other.replies[cid]["event"] for cid, op in other.sent.items() if op == "danmaku"}
        assert events <= me.seen, f"{len(events - me.seen)} honest danmaku were not delivered"

    replies = sum((f.replies for f in fuzzers), Counter())
    closes = sum((f.closes for f in fuzzers), Counter())
    assert not replies["error:internal_error"], replies
    assert set(closes) <= FUZZ_CLOSES, closes
    # The fuzz reached the handlers: refusals of many sorts, and commands that were taken.
    assert replies["ack"] and replies["error:malformed"] and replies["error:invalid_field"]
    assert replies["error:frame_too_large"], replies
    async with live.http() as http:
        r = await http.get("/api/v1/rooms/fuzz")
        assert r.status_code == 200, r.text
        r = await http.get("/healthz")
        assert r.status_code == 200, r.text
    print(f"{FRAMES} frames in {took:.1f} s; replies {dict(replies)}; closes {dict(closes)}")
