"""hudong's dialect for the peer benchmark harness (shared/bench/peers, "A dialect in its
own file").

    cd /work/shared/bench/peers   # or a folder of links to it, see BENCHMARKS.md
    HUDONG_ADMIN_TOKEN=... .venv/bin/python loadgen.py --url ws://127.0.0.1:8110 \\
        --dialect file:/work/main/loadtest/peers_dialect.py ...

The harness builds one ``DIALECT(room)`` in loadgen.py and another in its drainer.py
child; neither is told the server's URL. The HTTP base URL is therefore taken from
``HUDONG_URL`` if set, else from the command line of the process that imports this
file (loadgen.py's ``--url ws://h:p``, drainer.py's ``--host h --port p``), else
``http://127.0.0.1:8110`` (the port bench.py's extra-systems file uses). The admin
token comes from ``HUDONG_ADMIN_TOKEN``, the same variable ``hudong serve`` reads.

What it does, per PROTOCOL.md:

* on construction: ``POST /api/v1/rooms {"id": room}`` with the admin token; 409
  ``room_exists`` is fine (both processes do it);
* the publisher joins with a host token (minted once, on its first connection,
  ``POST /api/v1/rooms/{room}/tokens {"role": "host"}``): viewers may send 5
  commands/s, hosts 500/s; the room allows 1000 danmaku/s, so the harness's 200/s
  (20/s in its light pass) stays under both;
* viewers join anonymously; every connection offers ``hudong.v1.json``, waits for
  ``hello``, sends ``join``, and is ready on ``joined``;
* each harness message (``{"user","text","ts"}`` JSON, ~78 bytes) travels as the
  text of one danmaku; it is sent without an ``id``, so the server sends no ``ack``;
* the drains count ``"type":"danmaku"`` in ``batch`` frames only (a ``snapshot``
  after a slow spell repeats recent danmaku, which must not count twice); user text
  is JSON-escaped inside the event, so it can never contain that marker unescaped.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import orjson
from loadgen import TEXT, Dialect  # type: ignore[import-not-found]

SUBPROTOCOL = "hudong.v1.json"
MAX_TEXT_CHARS = 100  # PROTOCOL.md, "Limits": limits.max_text_chars default
DEFAULT_URL = "http://127.0.0.1:8110"
HTTP_TIMEOUT_S = 5.0

BATCH_PREFIX = b'{"type":"batch"'
DANMAKU_MARK = b'"type":"danmaku"'


def _arg(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def base_url(argv: list[str] | None = None) -> str:
    """The node's HTTP base URL, from HUDONG_URL or the harness's own command line."""
    env = os.environ.get("HUDONG_URL")
    if env:
        return env.rstrip("/")
    argv = sys.argv if argv is None else argv
    url = _arg(argv, "--url")  # loadgen.py
    if url:
        u = urlsplit(url)
        scheme = "https" if u.scheme in ("wss", "https") else "http"
        return f"{scheme}://{u.netloc}"
    port = _arg(argv, "--port")  # drainer.py
    if port:
        return f"http://{_arg(argv, '--host') or '127.0.0.1'}:{port}"
    return DEFAULT_URL


def _post(url: str, token: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw or b"{}")
        except ValueError:
            return exc.code, {"raw": raw[:200].decode(errors="replace")}


class HudongDialect(Dialect):  # type: ignore[misc]
    name = "hudong"
    needs_handshake = True
    subprotocol = SUBPROTOCOL
    publish_binary = False

    def __init__(self, room: str) -> None:
        super().__init__(room)
        self.base = base_url()
        self.admin_token = os.environ.get("HUDONG_ADMIN_TOKEN", "")
        if not self.admin_token:
            raise SystemExit("peers_dialect: set HUDONG_ADMIN_TOKEN to the node's admin token")
        self._join_viewer = orjson.dumps({"op": "join", "room": room})
        self._join_publisher: bytes | None = None
        self._ensure_room()

    # --- REST ------------------------------------------------------------------------

    def _ensure_room(self) -> None:
        status, body = _post(f"{self.base}/api/v1/rooms", self.admin_token, {"id": self.room})
        if status == 201:
            return
        err = body.get("error")
        if status == 409 and isinstance(err, dict) and err.get("code") == "room_exists":
            return
        raise SystemExit(f"peers_dialect: creating room {self.room!r} got {status} {body}")

    def _publisher_join(self) -> bytes:
        if self._join_publisher is None:
            status, body = _post(
                f"{self.base}/api/v1/rooms/{self.room}/tokens",
                self.admin_token,
                {"role": "host", "name": "loadgen publisher"},
            )
            if status != 201 or "token" not in body:
                raise SystemExit(f"peers_dialect: minting a host token got {status} {body}")
            self._join_publisher = orjson.dumps(
                {"op": "join", "room": self.room, "token": body["token"]}
            )
        return self._join_publisher

    # --- the harness's hooks -----------------------------------------------------------

    def viewer_path(self) -> str:
        return "/ws"

    def publisher_path(self) -> str:
        return "/ws"

    def handshake(self, transport, payload: bytes | None, publisher: bool) -> bool:  # type: ignore[no-untyped-def]
        # One dialect object serves every connection, so this keeps no per-connection
        # state: the message type alone says where the connection is (PROTOCOL.md, "Session").
        if payload is None:
            return False  # wait for hello
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return False
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "hello":
            transport.send(TEXT, self._publisher_join() if publisher else self._join_viewer)
        elif kind == "joined":
            return True
        elif kind == "error":
            print(f"peers_dialect: join refused: {msg}", file=sys.stderr, flush=True)
        return False

    def count(self, transport, payload: bytes) -> int:  # type: ignore[no-untyped-def]
        if payload.startswith(BATCH_PREFIX):
            return payload.count(DANMAKU_MARK)
        return 0

    def extract_ts(self, payload: bytes) -> list[int]:
        msg = orjson.loads(payload)
        if msg.get("type") != "batch":
            return []
        out = []
        for ev in msg["events"]:
            if ev.get("type") != "danmaku":
                continue
            try:
                out.append(orjson.loads(ev["text"])["ts"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # someone else's danmaku in the room
        return out

    def encode_publish(self, msg: bytes) -> bytes:
        text = msg.decode()
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(
                f"harness message has {len(text)} characters; danmaku allows {MAX_TEXT_CHARS}"
            )
        # No "id": the server then sends no ack, and the harness's publisher reads nothing.
        return b'{"op":"danmaku","text":' + orjson.dumps(text) + b"}"


DIALECT = HudongDialect
