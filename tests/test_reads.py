"""Reads in batches on a busy node (server/hub/reads.py): the part alone, then a live node
made to batch from its first tick, whose answers keep their order and whose danmaku
still go out in the tick after they came."""

from __future__ import annotations

import asyncio
import time

import pytest

from loadtest import wire
from server.hub import reads as reads_module
from server.hub.reads import Reads
from tests.conftest import UNIT, running_server


class Clock:
    """The read rounds' clock (``time`` in server/hub/reads.py), moved by the readers:
    a round's bound does not depend on how busy the machine is."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class Reader:
    def __init__(
        self,
        name: str,
        log: list[tuple[str, bytes]],
        cost_s: float = 0.0,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.log = log
        self.cost_s = cost_s
        self.clock = clock

    def read_now(self, data: bytes) -> None:
        if self.clock is not None:
            self.clock.now += self.cost_s
        self.log.append((self.name, data))


async def test_a_quiet_node_reads_at_once_and_a_busy_one_in_order_at_the_tick():
    reads = Reads(window_s=3600, from_per_s=30, until_per_s=60)  # only the tick reads
    log: list[tuple[str, bytes]] = []
    a, b = Reader("a", log), Reader("b", log)
    assert not reads.came(a, b"1")  # quiet: the caller reads it now
    reads.tick(0.1)  # 1 read in 0.1 s: 10/s, under 30/s
    assert not reads.batching
    for n in range(3):
        assert not reads.came(b, b"x%d" % n)
    reads.tick(0.1)  # 3 reads in 0.1 s: 30/s
    assert reads.batching
    assert reads.came(a, b"2") and reads.came(b, b"3") and reads.came(a, b"4")
    assert reads.holds(a) and len(reads) == 2 and log == []
    reads.tick(0.1)  # reads them first; 3 reads: still busy
    assert log == [("a", b"24"), ("b", b"3")]  # each reader's in order, readers as they came
    assert reads.batching and reads.rounds == 1
    reads.tick(0.1)  # nothing came: quiet again
    assert not reads.batching and not reads.came(a, b"5")
    for n in range(6):  # 60/s and more: dense enough to come together anyway
        reads.came(b, b"y%d" % n)
    reads.tick(0.1)
    assert not reads.batching and not reads.came(a, b"6")


async def test_the_window_reads_before_the_tick_and_take_hands_back_what_waits():
    reads = Reads(window_s=0.02, from_per_s=0, until_per_s=1e9)
    reads.tick(0.1)
    log: list[tuple[str, bytes]] = []
    a, b = Reader("a", log), Reader("b", log)
    assert reads.came(a, b"1") and reads.came(b, b"2") and reads.came(a, b"3")
    assert reads.take(b) == b"2" and reads.take(b) is None  # a close or a FIN reads it now
    await asyncio.sleep(0.1)
    assert log == [("a", b"13")]  # the window's timer read it
    reads.came(a, b"4")
    reads.close()  # shutting down: read now, batch no more
    assert log[-1] == ("a", b"4") and not reads.batching


async def test_a_round_is_bounded_and_the_rest_is_read_in_the_next_turn(monkeypatch):
    monkeypatch.setattr(reads_module, "READ_ROUND_S", 0.01)
    clock = Clock()
    monkeypatch.setattr(reads_module, "time", clock)
    reads = Reads(window_s=3600, from_per_s=0, until_per_s=1e9)
    reads.tick(0.1)
    log: list[tuple[str, bytes]] = []
    readers = [Reader(str(n), log, cost_s=0.004, clock=clock) for n in range(10)]
    for r in readers:
        reads.came(r, b".")
    reads.read()
    # 4 ms each: the third read ends past the round's 10 ms, then the loop's next turn
    assert [name for name, _ in log] == ["0", "1", "2"] and len(reads) == 7
    for _ in range(20):
        await asyncio.sleep(0)
    assert [name for name, _ in log] == [str(n) for n in range(10)]  # in order, all
    assert len(reads) == 0 and reads.rounds == 4  # 3 + 3 + 3 + 1


# --- a live node that batches from its first tick ----------------------------------------


@pytest.fixture
async def batching():
    hub = {"read_batch_ms": 200, "read_batch_from": 0.0, "read_batch_until": 1e9}
    async with running_server(hub=hub) as live:
        # A node decides at each tick whether to batch until the next: until its first
        # tick it reads at once, and a quick test could be done before that.
        for _ in range(round(200 * UNIT)):
            if live.hub.reads.batching:
                break
            await asyncio.sleep(0.01)
        assert live.hub.reads.batching
        yield live


async def test_answers_keep_their_order_and_danmaku_go_out_in_the_next_tick(batching):
    live = batching
    await live.create_room("r")
    host = await live.connect()
    await host.join("r", token=await live.mint("r", "host"))
    viewer = await live.connect()
    await viewer.join("r")
    rounds = live.hub.reads.rounds
    for n in range(5):  # all in one turn: they wait together
        await host.ws.send(f'{{"op":"danmaku","id":{n},"text":"hi {n}"}}')
    await host.ws.send('{"op":"ping","id":9}')
    answers = []
    while len(answers) < 6:
        message = await host.recv()
        if message["type"] in ("ack", "pong", "error"):
            answers.append(message)
    assert [a["id"] for a in answers] == [0, 1, 2, 3, 4, 9]
    assert live.hub.reads.rounds > rounds
    texts = []
    started = time.monotonic()
    while len(texts) < 5:
        batch = await viewer.recv_type("batch")
        texts += [e["text"] for e in batch["events"] if e["type"] == "danmaku"]
    assert texts == [f"hi {n}" for n in range(5)]
    assert time.monotonic() - started < 1.0 * UNIT  # not held past the tick


async def test_what_came_before_a_close_or_a_fin_is_read_first(batching):
    live = batching
    await live.create_room("r")
    viewer = await live.connect()
    await viewer.join("r")
    host = await live.connect()
    await host.join("r", token=await live.mint("r", "host"))
    reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
    try:
        key = wire.new_key()
        writer.write(wire.upgrade_request("127.0.0.1", live.port, "/ws", key))
        head = await reader.readuntil(b"\r\n\r\n")
        assert wire.check_upgrade(head, key) is None
        token = await live.mint("r", "host")
        join = f'{{"op":"join","id":1,"room":"r","token":"{token}"}}'.encode()
        writer.write(wire.client_frame(wire.OP_TEXT, join))
        await asyncio.sleep(0.5)  # joined
        said = wire.client_frame(wire.OP_TEXT, b'{"op":"danmaku","text":"before the close"}')
        bye = wire.client_frame(wire.OP_CLOSE, (1000).to_bytes(2, "big"))
        writer.write(said)  # waits for the next round (up to 200 ms here) ...
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(bye)  # ... and the close that comes meanwhile waits behind it
        writer.write(wire.client_frame(wire.OP_TEXT, b'{"op":"danmaku","text":"never read"}'))
        await writer.drain()
    finally:
        writer.close()
    raw_reader, raw_writer = await asyncio.open_connection("127.0.0.1", live.port)
    try:
        key = wire.new_key()
        raw_writer.write(wire.upgrade_request("127.0.0.1", live.port, "/ws", key))
        assert wire.check_upgrade(await raw_reader.readuntil(b"\r\n\r\n"), key) is None
        token = await live.mint("r", "host")
        join = f'{{"op":"join","id":1,"room":"r","token":"{token}"}}'.encode()
        raw_writer.write(wire.client_frame(wire.OP_TEXT, join))
        await asyncio.sleep(0.5)
        said = wire.client_frame(wire.OP_TEXT, b'{"op":"danmaku","text":"before the fin"}')
        raw_writer.write(said)
        raw_writer.write_eof()  # a FIN, no close frame
        await raw_writer.drain()
        texts: list[str] = []
        while len(texts) < 2:
            batch = await asyncio.wait_for(viewer.recv_type("batch"), 5 * UNIT)
            texts += [e["text"] for e in batch["events"] if e["type"] == "danmaku"]
        assert texts == ["before the close", "before the fin"]
    finally:
        raw_writer.close()
