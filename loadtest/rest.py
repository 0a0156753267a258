"""The node's REST API as the load tool uses it (protocol/openapi.yaml): rooms, host
tokens, interactions (polls, draws), the degrade level, and ``/metrics``.

Everything here is blocking (``urllib``, a 5 s timeout); the asyncio scenarios call it
through ``asyncio.to_thread``. Errors a run cannot go on from raise ``Fatal`` with what
was expected and what the node answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping
from typing import Any

from loadtest.results import Fatal

HTTP_TIMEOUT_S = 5.0
# The options of every poll the tool votes in (votes, mixed).
POLL_OPTIONS = ("bun", "patty", "sauce", "cheese")
# hudong's Prometheus counters that tell what the node itself saw (server/metrics.py).
METRICS = (
    "hudong_frames_out_total",
    "hudong_bytes_out_total",
    "hudong_messages_delivered_total",
    "hudong_events_out_total",
    "hudong_drops_total",
    "hudong_disconnects_total",
    "hudong_commands_total",
    "hudong_relay_messages_total",
    "hudong_store_errors_total",
)


def http(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    """(status, decoded JSON body); an HTTP error status is returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def metrics_delta(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    """The counters that moved between two ``AdminApi.metrics`` readings."""
    return {k: round(v - a.get(k, 0.0), 3) for k, v in sorted(b.items()) if v - a.get(k, 0.0)}


def metrics_named(delta: Mapping[str, float], prefix: str) -> dict[str, float]:
    return {k: v for k, v in delta.items() if k.startswith(prefix)}


class AdminApi:
    """One node's REST API with the admin token."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http(method, f"{self.base}{path}", self.token, body)

    def expect(self, status: int, what: str, method: str, path: str, body: Any = None) -> Any:
        """The answer's body; ``Fatal`` when the status is not ``status``."""
        got, answer = self.call(method, path, body)
        if got != status:
            raise Fatal(f"{what}: {got} {answer}")
        return answer

    def ready(self) -> bool:
        """``/readyz`` answers 200; False also when nothing answers."""
        try:
            status, _ = http("GET", f"{self.base}/readyz")
        except OSError:
            return False
        return status == 200

    def prepare_room(self, room: str) -> str:
        """Create ``room`` (an existing one is fine) and return a host token for it:
        viewers may send 5 commands/s, hosts 500/s (PROTOCOL.md, "Limits")."""
        status, body = self.call("POST", "/api/v1/rooms", {"id": room})
        exists = status == 409 and isinstance(body, dict) and body["error"]["code"] == "room_exists"
        if status != 201 and not exists:
            raise Fatal(f"creating room {room!r}: {status} {body}")
        answer = self.expect(
            201,
            "minting a host token",
            "POST",
            f"/api/v1/rooms/{room}/tokens",
            {"role": "host", "name": "loadtest publisher"},
        )
        token: str = answer["token"]
        return token

    def create(self, room: str, kind: str, spec: dict[str, Any]) -> None:
        path = f"/api/v1/rooms/{room}/interactions"
        self.expect(201, f"creating the {kind}", "POST", path, {"kind": kind, "spec": spec})

    def act(self, room: str, interaction: str, action: str) -> Any:
        path = f"/api/v1/rooms/{room}/interactions/{interaction}/actions"
        return self.expect(200, f"{action} {interaction}", "POST", path, {"action": action})

    def view(self, room: str, interaction: str, part: str = "") -> tuple[int, Any]:
        return self.call("GET", f"/api/v1/rooms/{room}/interactions/{interaction}{part}")

    def open_poll(self, room: str, poll: str, question: str) -> None:
        """A single-choice poll over ``POLL_OPTIONS``, open for votes."""
        options = [{"id": o, "label": o} for o in POLL_OPTIONS]
        self.create(
            room, "poll", {"id": poll, "question": question, "kind": "single", "options": options}
        )
        self.act(room, poll, "open")

    def poll_outcome(
        self, room: str, poll: str, expected: Counter[str], voters: int
    ) -> tuple[dict[str, int], int | None, bool]:
        """The poll's tallies and voter count over REST, and whether they are exactly
        ``expected`` (each voter's acknowledged option) and ``voters``."""
        status, view = self.view(room, poll)
        if status != 200:
            return {}, None, False
        results = view["results"]
        tallies = {o["id"]: o["count"] for o in results["options"]}
        seen = results.get("voters")
        exact = tallies == {o: expected.get(o, 0) for o in POLL_OPTIONS} and seen == voters
        return tallies, seen, exact

    def metrics(self) -> dict[str, float]:
        """The ``METRICS`` counters from ``/metrics``; empty if it cannot be read."""
        try:
            with urllib.request.urlopen(f"{self.base}/metrics", timeout=HTTP_TIMEOUT_S) as resp:
                text = resp.read().decode()
        except OSError:
            return {}
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith(METRICS):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[name] = float(value)
        return out


class DegradePoller:
    """``GET /api/v1/degrade`` every ``interval`` s: the levels the node went through."""

    def __init__(self, api: AdminApi, t0: float, interval: float = 0.5) -> None:
        self.api = api
        self.t0 = t0
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self.errors = 0

    @property
    def level(self) -> int | None:
        return self.samples[-1]["level"] if self.samples else None

    async def run(self) -> None:
        while True:
            try:
                status, body = await asyncio.to_thread(self.api.call, "GET", "/api/v1/degrade")
            except OSError:
                status, body = 0, None
            if status == 200 and isinstance(body, dict):
                s = body.get("signals", {})
                self.samples.append(
                    {
                        "t": round(time.monotonic() - self.t0, 2),
                        "level": body["level"],
                        "automatic": body.get("automatic"),
                        "loop_lag_s": s.get("loop_lag_s"),
                        "tick_ratio": s.get("tick_ratio"),
                        "buffered_bytes": s.get("buffered_bytes"),
                        "ingest_per_s": s.get("ingest_per_s"),
                    }
                )
            else:
                self.errors += 1
            await asyncio.sleep(self.interval)

    def summary(self, since: float = 0.0) -> dict[str, Any]:
        samples = [s for s in self.samples if s["t"] >= since]
        path: list[int] = []
        for s in samples:
            if not path or path[-1] != s["level"]:
                path.append(s["level"])
        per_level = Counter(s["level"] for s in samples)
        return {
            "path": path,
            "max": max(path, default=None),
            "samples_per_level": {str(k): v for k, v in sorted(per_level.items())},
            "poll_errors": self.errors,
        }

    async def wait_level(self, level: int, timeout: float) -> float | None:
        """Seconds until a sample at ``level`` or below, None if not within ``timeout``."""
        start = time.monotonic()
        n = len(self.samples)
        while time.monotonic() - start < timeout:
            for s in self.samples[n:]:
                if s["level"] <= level:
                    return round(float(s["t"]) - (start - self.t0), 2)
            n = len(self.samples)
            await asyncio.sleep(0.1)
        return None

    def first_at(self, level: int, after: float) -> float | None:
        """Seconds from ``after`` (since t0) to the first sample at ``level``."""
        for s in self.samples:
            if s["t"] >= after and s["level"] == level:
                return round(float(s["t"]) - after, 2)
        return None
