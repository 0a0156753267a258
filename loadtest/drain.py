"""A worker process of cheap viewers: ``python -m loadtest.drain`` (started by fanout).

Thousands of viewers in one process without asyncio: non-blocking sockets and one
level-triggered epoll. Each viewer upgrades (offering ``hudong.v1.json``), waits for
``hello``, joins the room anonymously, and is ready on ``joined`` (PROTOCOL.md,
"Session"). Once ready its socket is read only every ``--interval-ms`` (default 100,
one tick): one ``recv`` then carries about one batch frame, and the kernel's socket
buffer holds what arrives in between, so the generator stays far cheaper than the
server it measures. Every frame header is still walked: batch frames are counted
(and their danmaku events, by a C-speed substring count), pings get a masked pong
(PROTOCOL.md, "Heartbeats"), and a close frame's code is recorded.

Control: JSON lines on stdin/stdout.

    connect K  -> {"ok": true}; K more viewers are connected in the background
    snap       -> counters (ready, failed, connecting, frames, messages, ...)
    close      -> {"closed": true}; every socket is reset (no TIME_WAIT pile-up), exit

It exits by itself on end of stdin or after ``--max-lifetime`` seconds.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import select
import socket
import sys
import time

from loadtest.wire import (
    BATCH_PREFIX,
    DANMAKU_MARK,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    check_upgrade,
    client_frame,
    close_code,
    new_key,
    upgrade_request,
)
from protocol.codec import JSON

CONNECTING, UPGRADING, JOINING, READY, CLOSED = range(5)
EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT
EPOLL_ERR = select.EPOLLERR | select.EPOLLHUP
# Below glibc's mmap threshold (128 KiB): a larger recv() buffer is mmap'ed and unmapped
# on every call, which cost this process several times more CPU (measured: 57-62 % of a
# core for 2,000 viewers with 256 KiB, BENCHMARKS.md). A full read is simply repeated.
RECV_BYTES = 65536
MAX_RECVS = 8  # per socket per cycle
MAX_ERRORS = 5
HANDSHAKE_POLL_S = 0.005  # while viewers are joining, do not wait a whole interval


class Viewer:
    __slots__ = ("key", "rest", "since", "sock", "state")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.state = CONNECTING
        self.rest = b""
        self.key = new_key()
        self.since = time.monotonic()


class Drain:
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.ep = select.epoll()
        self.viewers: dict[int, Viewer] = {}
        self.join = client_frame(OP_TEXT, JSON.encode({"op": "join", "room": args.room}))
        self.request = upgrade_request(args.host, args.port, args.path, b"")[: -len(b"\r\n\r\n")]
        self.target = 0
        self.started = 0
        self.ready = 0
        self.failed = 0
        self.frames = 0  # batch frames received by ready viewers
        self.messages = 0  # danmaku events in them
        self.other_frames = 0  # any other data frame after joining (snapshots, errors)
        self.pings = 0
        self.disconnects = 0
        self.close_codes: dict[str, int] = {}
        self.errors: list[str] = []
        self.closing = False
        self.stdin_buf = b""

    # --- connecting ------------------------------------------------------------------

    def connecting(self) -> int:
        return self.started - self.ready - self.failed

    def start_some(self) -> None:
        while self.started < self.target and self.connecting() < self.a.concurrency:
            self.started += 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            err = sock.connect_ex((self.a.host, self.a.port))
            if err not in (0, errno.EINPROGRESS):
                sock.close()
                self.fail(None, f"connect: {os.strerror(err)}")
                continue
            v = Viewer(sock)
            self.viewers[sock.fileno()] = v
            self.ep.register(sock.fileno(), EPOLLOUT)

    def fail(self, v: Viewer | None, why: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(why)
        if v is not None:
            self.drop(v)

    def drop(self, v: Viewer) -> None:
        if v.state == CLOSED:
            return
        fd = v.sock.fileno()
        try:
            self.ep.unregister(fd)
        except (OSError, ValueError):
            pass
        self.viewers.pop(fd, None)
        v.sock.close()
        v.state = CLOSED

    def expire_handshakes(self) -> None:
        limit = time.monotonic() - self.a.handshake_timeout
        for v in list(self.viewers.values()):
            if v.state < READY and v.since < limit:
                self.fail(v, "handshake timeout")

    def on_connected(self, v: Viewer) -> None:
        err = v.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.fail(v, f"connect: {os.strerror(err)}")
            return
        v.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        v.sock.send(self.request + v.key + b"\r\n\r\n")
        v.state = UPGRADING
        self.ep.modify(v.sock.fileno(), EPOLLIN)

    def on_upgrade(self, v: Viewer, data: bytes) -> None:
        buf = v.rest + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            v.rest = buf
            return
        v.rest = b""
        problem = check_upgrade(buf[:end], v.key)
        if problem:
            self.fail(v, problem)
            return
        v.state = JOINING
        if len(buf) > end + 4:
            self.on_frames(v, buf[end + 4 :])

    def on_handshake_frame(self, v: Viewer, payload: bytes) -> None:
        try:
            kind = JSON.decode(payload).get("type")
        except Exception:
            kind = None
        if kind == "hello":
            v.sock.send(self.join)
        elif kind == "joined":
            v.state = READY
            self.ready += 1
        else:
            self.fail(v, f"join: {payload[:160].decode(errors='replace')}")

    # --- reading -----------------------------------------------------------------------

    def on_frames(self, v: Viewer, data: bytes) -> None:
        buf = v.rest + data if v.rest else data
        n = len(buf)
        pos = 0
        frames = messages = 0
        while pos + 2 <= n:
            b1 = buf[pos + 1]
            if b1 < 126:
                h, ln = 2, b1
            elif b1 == 126:
                if pos + 4 > n:
                    break
                h, ln = 4, (buf[pos + 2] << 8) | buf[pos + 3]
            else:  # 127, or a masked server frame: either way the frame walk is over
                if b1 & 0x80:
                    self.on_closed(v, "masked server frame")
                    return
                if pos + 10 > n:
                    break
                h, ln = 10, int.from_bytes(buf[pos + 2 : pos + 10], "big")
            start = pos + h
            end = start + ln
            if end > n:
                break
            op = buf[pos] & 0x0F
            if op == OP_TEXT:
                if v.state == READY:
                    if buf.startswith(BATCH_PREFIX, start):
                        frames += 1
                        messages += buf.count(DANMAKU_MARK, start, end)
                    else:
                        self.other_frames += 1
                else:
                    self.on_handshake_frame(v, buf[start:end])
                    if v.state == CLOSED:
                        return
            elif op == OP_PING:
                self.pings += 1
                v.sock.send(client_frame(OP_PONG, buf[start:end]))
            elif op == OP_CLOSE:
                code = close_code(buf[start:end])
                self.on_closed(v, str(code) if code is not None else "no_code")
                return
            pos = end
        self.frames += frames
        self.messages += messages
        v.rest = buf[pos:] if pos < n else b""

    def on_closed(self, v: Viewer, why: str) -> None:
        if v.state == READY:
            if not self.closing:
                self.disconnects += 1
                self.close_codes[why] = self.close_codes.get(why, 0) + 1
            self.drop(v)
        else:
            self.fail(v, f"closed during handshake: {why}")

    def on_readable(self, v: Viewer) -> None:
        for _ in range(MAX_RECVS):
            try:
                data = v.sock.recv(RECV_BYTES)
            except BlockingIOError:
                return
            except OSError as exc:
                self.on_closed(v, f"recv: {exc.strerror}")
                return
            if not data:
                self.on_closed(v, "eof")
                return
            if v.state == UPGRADING:
                self.on_upgrade(v, data)
            else:
                self.on_frames(v, data)
            if len(data) < RECV_BYTES or v.state == CLOSED:
                return

    def dispatch(self, events: list[tuple[int, int]]) -> None:
        viewers = self.viewers
        for fd, ev in events:
            v = viewers.get(fd)
            if v is None:
                continue
            if v.state == CONNECTING:
                if ev & (EPOLLOUT | EPOLL_ERR):
                    self.on_connected(v)
            else:
                self.on_readable(v)

    # --- control -----------------------------------------------------------------------

    def reply(self, obj: dict[str, object]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def snap(self) -> dict[str, object]:
        return {
            "t": time.monotonic(),
            "target": self.target,
            "ready": self.ready,
            "failed": self.failed,
            "connecting": self.connecting(),
            "open": sum(1 for v in self.viewers.values() if v.state == READY),
            "frames": self.frames,
            "messages": self.messages,
            "other_frames": self.other_frames,
            "pings": self.pings,
            "disconnects": self.disconnects,
            "close_codes": self.close_codes,
            "errors": self.errors,
        }

    def on_stdin(self) -> None:
        chunk = os.read(sys.stdin.fileno(), 4096)
        if not chunk:
            self.shutdown()
        self.stdin_buf += chunk
        while b"\n" in self.stdin_buf:
            line, self.stdin_buf = self.stdin_buf.split(b"\n", 1)
            words = line.decode().split()
            if not words:
                continue
            if words[0] == "connect":
                self.target += int(words[1])
                self.reply({"ok": True})
            elif words[0] == "snap":
                self.reply(self.snap())
            elif words[0] == "close":
                self.shutdown()

    def shutdown(self) -> None:
        self.closing = True
        linger = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")  # l_onoff=1, l_linger=0
        for v in list(self.viewers.values()):
            try:  # reset instead of FIN: the next run does not inherit TIME_WAIT sockets
                v.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            except OSError:
                pass
            self.drop(v)
        self.reply({"closed": True})
        sys.exit(0)

    def run(self) -> None:
        end = time.monotonic() + self.a.max_lifetime
        interval = self.a.interval_ms / 1000
        stdin = sys.stdin.fileno()
        last_expire = 0.0
        while time.monotonic() < end:
            t0 = time.monotonic()
            self.start_some()
            self.dispatch(self.ep.poll(0, len(self.viewers) + 16))
            if t0 - last_expire > 0.5:
                last_expire = t0
                self.expire_handshakes()
            joining = self.started > self.ready + self.failed
            wait = HANDSHAKE_POLL_S if joining else interval - (time.monotonic() - t0)
            readable, _, _ = select.select([stdin], [], [], max(0.0, wait))
            if readable:
                self.on_stdin()
        self.shutdown()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="cheap hudong viewers (loadtest fanout worker)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/ws")
    ap.add_argument("--room", required=True)
    ap.add_argument("--interval-ms", type=float, default=100)
    ap.add_argument("--concurrency", type=int, default=100, help="handshakes in flight")
    ap.add_argument("--handshake-timeout", type=float, default=10)
    ap.add_argument("--max-lifetime", type=float, default=600)
    args = ap.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loadtest targets loopback only")
    Drain(args).run()


if __name__ == "__main__":
    main()
