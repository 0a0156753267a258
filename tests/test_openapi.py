"""protocol/openapi.yaml (issue 4, acceptance 6): valid OpenAPI 3, true of the running
server, and complete.

- The file validates as OpenAPI (openapi-spec-validator).
- Every operation of the spec is exercised against a live node: each answer's status
  must be one the operation lists, its body must validate against the schema declared
  for that status and media type (and its required headers be there), and every status
  the operation lists must actually be seen, 503 `store_unavailable` included (the
  store is made to fail). Request bodies the server accepted must validate against the
  declared request schema too, so the spec is neither looser nor stricter than the
  server on either side.
- The application's route table and the spec's paths are the same set, both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema.exceptions import best_match
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_openapi
from starlette.routing import Route

from server.app import create_app
from server.backends import BackendUnavailable
from server.bridges.webhook import signature
from server.config import Settings
from server.interactions import polls
from tests.conftest import ADMIN, SECRET, UNIT, LiveServer

SPEC_FILE = Path(__file__).resolve().parent.parent / "protocol" / "openapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    (method.upper(), path): operation
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
    if method in HTTP_METHODS
}

ROOM = "stage"
ELSEWHERE = "elsewhere"
NOWHERE = "nowhere"
DEGRADE = "/api/v1/degrade"
ROOMS = "/api/v1/rooms"
ROOM_PATH = "/api/v1/rooms/{room_id}"
TOKENS = "/api/v1/rooms/{room_id}/tokens"
INTERACTIONS = "/api/v1/rooms/{room_id}/interactions"
INTERACTION = "/api/v1/rooms/{room_id}/interactions/{interaction_id}"
ACTIONS = f"{INTERACTION}/actions"
AUDIT = f"{INTERACTION}/audit"
EXPORT = f"{INTERACTION}/export"
MINE = f"{INTERACTION}/mine"
MODERATION = "/api/v1/rooms/{room_id}/moderation"
REVOCATIONS = "/api/v1/rooms/{room_id}/revocations"
AUDIT_LOG = "/api/v1/rooms/{room_id}/audit-log"
VIEWER_DATA = "/api/v1/viewers/{user_id}"
ROOM_VIEWER_DATA = "/api/v1/rooms/{room_id}/viewers/{user_id}"
STATS = "/api/v1/rooms/{room_id}/stats"
ALERTS = "/api/v1/rooms/{room_id}/alerts"
WATCHLISTS = f"{ALERTS}/watchlists"
ACK = f"{ALERTS}/{{alert_id}}/ack"
WATCH = {"id": "refund", "name": "Refunds", "terms": ["退款"], "pairs": [["brand", "差"]]}
TOO_LARGE = b'{"title": "' + b"x" * 65536 + b'", "role": "viewer", "kind": "poll"}'
OPTIONS = [{"id": i, "label": f"Option {i.upper()}"} for i in "abcd"]


def setup_module() -> None:
    # jieba loads its dictionary (about a second) at the first text vote of the process,
    # on the event loop, unless warmed up; the loop lag would raise the degrade level and
    # refuse new connections. polls.warm_up() is meant to run at start-up.
    polls.warm_up()


# --- the spec --------------------------------------------------------------------------


def test_the_spec_is_valid_openapi_3():
    assert str(SPEC["openapi"]).startswith("3."), SPEC["openapi"]
    validate_openapi(SPEC)  # raises OpenAPIValidationError, naming the place
    # Every operation has an id and at least one success, and uses only known statuses.
    ids = [op["operationId"] for op in OPERATIONS.values()]
    assert len(ids) == len(set(ids)), ids
    for (method, path), op in OPERATIONS.items():
        statuses = set(op["responses"])
        assert any(s.startswith("2") for s in statuses), (method, path)


def test_the_spec_points_to_the_websocket_protocol():
    description = SPEC["info"]["description"]
    assert "/ws" in description and "PROTOCOL.md" in description
    assert "/ws" not in SPEC["paths"]  # OpenAPI cannot describe it; PROTOCOL.md does


def test_every_route_of_the_app_is_in_the_spec_and_back():
    app = create_app(Settings().replace(server={"admin_token": ADMIN, "secret": SECRET}))
    served: set[tuple[str, str]] = set()
    for route in app.routes:
        assert isinstance(route, Route), f"{route!r} is not an HTTP route the spec can list"
        assert route.methods, route.path
        # Starlette answers HEAD wherever it answers GET; the spec lists the GETs. Path
        # convertors ({path:path}) are Starlette's; OpenAPI templates have none.
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        served |= {(method, path) for method in route.methods if method != "HEAD"}
    documented = set(OPERATIONS)
    assert served - documented == set(), "routes the spec lacks"
    assert documented - served == set(), "operations the server lacks"


# --- checking answers against the spec -------------------------------------------------


def resolve(obj: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/components/...``) to what it names."""
    while "$ref" in obj:
        node: Any = SPEC
        for part in obj["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def schema_errors(instance: Any, schema: dict[str, Any]) -> list[str]:
    # The schema is checked inside a document holding the spec's components, so that
    # its "#/components/schemas/…" references resolve.
    document = {"allOf": [schema], "components": SPEC["components"]}
    found = sorted(OAS31Validator(document).iter_errors(instance), key=lambda e: list(e.path))
    messages = []
    for error in found:
        while error.context:  # oneOf/anyOf: say what the closest alternative lacks
            error = closest(error.context)
        where = "/".join(map(str, error.absolute_path)) or "."
        messages.append(f"at {where}: {error.message[:300]}")
    return messages


def closest(errors: list[Any]) -> Any:
    """The error of the alternative meant: the one whose ``kind`` matched, if any."""
    branches: dict[Any, list[Any]] = defaultdict(list)
    for error in errors:
        branches[error.relative_schema_path[0]].append(error)
    meant = [
        found
        for found in branches.values()
        if not any(list(e.relative_path)[-1:] == ["kind"] for e in found)
    ]
    return best_match(meant[0] if len(meant) == 1 else errors)


def assert_valid(instance: Any, schema: dict[str, Any], where: str) -> None:
    errors = schema_errors(instance, schema)
    shown = json.dumps(instance)[:1500] if not isinstance(instance, str) else instance[:300]
    assert not errors, f"{where}: does not match the spec:\n" + "\n".join(errors) + f"\n{shown}"


class Api:
    """Calls the live node and checks every answer against the spec's operation."""

    def __init__(self, live: LiveServer, http: httpx.AsyncClient) -> None:
        self.live = live
        self.http = http  # one client for every call: a new one per call is slow
        self.seen: dict[tuple[str, str], set[str]] = defaultdict(set)

    async def call(
        self,
        method: str,
        template: str,
        *,
        expect: int,
        code: str | None = None,
        token: str | None = ADMIN,
        body: Any = None,
        content: bytes | None = None,
        query: dict[str, str] | None = None,
        **path: str,
    ) -> httpx.Response:
        key = (method, template)
        assert key in OPERATIONS, f"{method} {template} is not in the spec"
        url = template.format(**path)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs: dict[str, Any] = {"params": query, "headers": headers}
        if content is not None:
            kwargs["content"] = content
            headers["content-type"] = "application/json"
        elif body is not None:
            kwargs["json"] = body
        r = await self.http.request(method, url, **kwargs)
        where = f"{method} {url} -> {r.status_code}"
        self.check(key, r, where)
        assert r.status_code == expect, f"{where}, expected {expect}: {r.text[:500]}"
        if code is not None:
            assert r.json()["error"]["code"] == code, f"{where}: {r.text[:500]}"
        if body is not None and 200 <= r.status_code < 300:
            request = OPERATIONS[key].get("requestBody")
            assert request is not None, f"{where}: the server took a body the spec has no room for"
            schema = resolve(request)["content"]["application/json"]["schema"]
            assert_valid(body, schema, f"{where}: the request body it accepted")
        return r

    def check(self, key: tuple[str, str], r: httpx.Response, where: str) -> None:
        operation = OPERATIONS[key]
        status = str(r.status_code)
        assert status in operation["responses"], (
            f"{where}: the spec lists {sorted(operation['responses'])}: {r.text[:500]}"
        )
        self.seen[key].add(status)
        response = resolve(operation["responses"][status])
        for name, header in response.get("headers", {}).items():
            if header.get("required"):
                assert name in r.headers, f"{where}: no {name} header"
                assert_valid(r.headers[name], resolve(header)["schema"], f"{where} {name}")
        content = response.get("content")
        if not content:
            assert r.content == b"", f"{where}: the spec declares no body: {r.text[:200]}"
            return
        media = r.headers.get("content-type", "").split(";")[0].strip()
        assert media in content, f"{where}: {media!r} is not among {sorted(content)}"
        data = r.json() if media == "application/json" else r.text
        assert_valid(data, content[media]["schema"], where)


@contextlib.contextmanager
def store_outage(live: LiveServer) -> Iterator[None]:
    """Every store call fails as a Redis outage does, until the block ends."""
    store = live.hub.store

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise BackendUnavailable("the test took the store away")

    names = [
        name
        for name, member in inspect.getmembers(type(store))
        if not name.startswith("_") and name != "close" and inspect.iscoroutinefunction(member)
    ]
    assert names, store
    for name in names:
        setattr(store, name, unreachable)
    try:
        yield
    finally:
        for name in names:
            delattr(store, name)


@pytest.fixture
async def api(live: LiveServer) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=live.base, timeout=10 * UNIT) as http:
        yield Api(live, http)


# --- the world the scenarios play in ----------------------------------------------------


class World:
    def __init__(self, live: LiveServer, api: Api) -> None:
        self.live = live
        self.api = api
        self.tokens: dict[str, str] = {}

    async def build(self) -> World:
        await self.live.create_room(ROOM)
        await self.live.create_room(ELSEWHERE)
        for role in ("host", "moderator", "viewer", "screen"):
            self.tokens[role] = await self.mint(ROOM, role, role)
        self.tokens["elsewhere"] = await self.mint(ELSEWHERE, "host", "host")
        return self

    async def mint(self, room: str, role: str, user_id: str) -> str:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        # named as the id given: a viewer's id is its pseudonym (PROTOCOL.md, "Privacy")
        body = {"role": role, "user_id": user_id, "name": user_id[:32]}
        r = await self.api.http.post(f"{ROOMS}/{room}/tokens", json=body, headers=headers)
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        return token

    async def host(self, method: str, template: str, **kw: Any) -> httpx.Response:
        """A call by the room's host (checked against the spec like any other)."""
        return await self.api.call(method, template, token=self.tokens["host"], **kw)

    async def create(self, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
        r = await self.host(
            "POST", INTERACTIONS, room_id=ROOM, expect=201, body={"kind": kind, "spec": spec}
        )
        return r.json()

    async def act(self, iid: str, action: str, **fields: Any) -> dict[str, Any]:
        r = await self.host(
            "POST",
            ACTIONS,
            room_id=ROOM,
            interaction_id=iid,
            expect=200,
            body={"action": action, **fields},
        )
        return r.json()

    async def viewer(self, name: str) -> Any:
        client = await self.live.connect()
        await client.join(ROOM, token=await self.mint(ROOM, "viewer", name))
        return client

    async def acked(self, client: Any, op: str, **fields: Any) -> dict[str, Any]:
        reply = await client.command(op, **fields)
        assert reply["type"] == "ack", reply
        return reply

    async def alert(self) -> dict[str, Any]:
        """A keyword alert: a one-match watch list, and a viewer's danmaku that hits it."""
        watch = {**WATCH, "threshold": 1, "window_s": 60}
        r = await self.host(
            "PUT", WATCHLISTS, room_id=ROOM, expect=200, body={"watchlists": [watch]}
        )
        assert r.json()["watchlists"][0]["id"] == "refund"
        staff = await self.live.connect()
        await staff.join(ROOM, token=self.tokens["moderator"])
        viewer = await self.viewer("v-alert")
        await self.acked(viewer, "danmaku", text="我要退款")
        while True:
            message = await staff.recv()
            if message.get("kind") == "keyword_alert":
                alert: dict[str, Any] = message["alert"]
                return alert

    async def every_kind_in_every_state(self) -> list[str]:
        """Interactions of every kind, in the states that show every part of the views:
        votes in every poll kind (ranked closed, for its instant-runoff; rating revealed;
        one with hidden results), a quiz with a revealed and an unasked question, a
        revealed co-design (final design), a drawn and an open draw, a Q&A board with
        pinned, answered and hidden questions, and check-ins."""
        polls = {
            "p-single": {"kind": "single", "options": OPTIONS[:3]},
            "p-multiple": {"kind": "multiple", "options": OPTIONS, "min_picks": 1, "max_picks": 2},
            "p-ranked": {"kind": "ranked", "options": OPTIONS},
            "p-rating": {"kind": "rating", "scale": 10, "duration_s": 600},
            "p-text": {"kind": "text", "max_text_chars": 100},
            "p-hidden": {
                "kind": "single",
                "options": OPTIONS[:2],
                "hide_results_until_reveal": True,
            },
        }
        for pid, extra in polls.items():
            await self.create("poll", {"id": pid, "question": f"{pid}?", **extra})
            await self.act(pid, "open")
        question = {"options": OPTIONS[:2], "correct": "a", "time_limit_s": 600, "points": 500}
        await self.create(
            "quiz",
            {
                "id": "z",
                "title": "Quiz",
                "questions": [
                    {"id": "q1", "text": "First?", **question},
                    {"id": "q2", "text": "Second?", **question},
                ],
            },
        )
        await self.act("z", "ask", question="q1")
        await self.create(
            "codesign",
            {
                "id": "d",
                "title": "Design",
                "slots": [
                    {
                        "id": "s1",
                        "label": "One",
                        "options": [
                            {
                                "id": "x",
                                "label": "X",
                                "stock": 1,
                                "image_url": "https://img.example/x.png",
                            },
                            {"id": "y", "label": "Y"},
                        ],
                    },
                    {
                        "id": "s2",
                        "label": "Two",
                        "options": [
                            {"id": "u", "label": "U"},
                            {"id": "v", "label": "V", "image_url": None},
                        ],
                    },
                ],
                "round": 1,
                "previous": None,
            },
        )
        await self.act("d", "open")
        await self.create("draw", {"id": "w", "title": "Prize", "winners": 2})
        await self.create(
            "draw",
            {
                "id": "w-open",
                "title": "Later",
                "source": "keyword",
                "keyword": "hudong",
                "window_s": 60,
                "exclude_previous_winners": True,
            },
        )
        await self.create("qa", {"id": "b", "title": "Ask me", "max_chars": 200})
        await self.act("b", "open")

        voters = [await self.viewer(f"voter-{i}") for i in range(2)]
        for i, v in enumerate(voters):
            await self.acked(v, "vote", interaction="p-single", key="k1", option="abc"[i])
            await self.acked(v, "vote", interaction="p-multiple", key="k1", options=["a", "c"])
            await self.acked(
                v,
                "vote",
                interaction="p-ranked",
                key="k1",
                ranking=[["b", "a", "c"], ["a", "d"]][i],
            )
            await self.acked(v, "vote", interaction="p-rating", key="k1", rating=7 + i)
            await self.acked(
                v,
                "vote",
                interaction="p-text",
                key="k1",
                text=["番茄酱 and fries", "Fries please"][i],
            )
            await self.acked(v, "vote", interaction="p-hidden", key="k1", option="b")
            await self.acked(v, "checkin", key="c1")
        players = [await self.viewer(f"player-{i}") for i in range(2)]
        for i, p in enumerate(players):
            await self.acked(p, "answer", interaction="z", key="k1", question="q1", option="ab"[i])
            await self.acked(p, "pick", interaction="d", key="k1", slot="s1", option="xy"[i])
            await self.acked(p, "pick", interaction="d", key="k2", slot="s2", option="v")
            await self.acked(p, "enter", interaction="w", key="k1")
            await self.acked(p, "ask", interaction="b", key="k1", text=f"Question {i}?")
        questions = (
            await self.host("GET", INTERACTION, room_id=ROOM, interaction_id="b", expect=200)
        ).json()["questions"]
        first, second = sorted(questions, key=lambda q: q["text"])
        await self.acked(players[1], "upvote", interaction="b", key="k2", question=first["id"])
        await self.act("b", "pin", question=first["id"])
        await self.act("b", "answer", question=first["id"], text="Soon.")
        await self.act("b", "hide", question=second["id"])
        # The wall: a pinned, an approved, a pending and a rejected post.
        for i, p in enumerate(players + voters):
            await self.acked(p, "post", key="k1", text=f"Post {i}")
        wall = (
            await self.host("GET", INTERACTION, room_id=ROOM, interaction_id="wall", expect=200)
        ).json()
        posts = [post["id"] for post in wall["queue"]]
        assert len(posts) == 4, wall
        await self.act("wall", "approve", post=posts[0])
        await self.act("wall", "approve", post=posts[1])
        await self.act("wall", "pin", post=posts[1])
        await self.act("wall", "reject", post=posts[2])
        await self.act("p-ranked", "close")
        await self.act("p-rating", "close")
        await self.act("p-rating", "reveal")
        await self.act("z", "close")
        await self.act("z", "reveal")
        await self.act("d", "lock", slot="s1")
        await self.act("d", "lock_all")
        await self.act("d", "reveal")
        drawn = await self.act("w", "run")
        players_ids = sorted(self.live.viewer_id(f"player-{i}") for i in range(2))
        assert sorted(drawn["winners"]) == players_ids, drawn
        # Reactions: taps from two viewers, committed within a second.
        for i, p in enumerate(players):
            await self.acked(p, "react", emoji="❤️", count=3 + i)
        for _ in range(int(50 * UNIT)):
            view = await self.host(
                "GET", INTERACTION, room_id=ROOM, interaction_id="reactions", expect=200
            )
            if view.json()["total"] == 7:
                break
            await asyncio.sleep(0.1)
        assert view.json()["counts"]["❤️"] == 7, view.text
        return [*polls, "z", "d", "w", "w-open", "b", "checkin", "wall", "reactions"]


# --- one scenario per operation: every listed status, and the answers' shapes ----------

Scenario = Callable[[Api, World], Awaitable[None]]
SCENARIOS: dict[tuple[str, str], Scenario] = {}


def scenario(method: str, path: str) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        SCENARIOS[(method, path)] = fn
        return fn

    return register


async def unauthorized(api: Api, w: World, method: str, path: str, **kw: Any) -> None:
    """401 without a token, with a wrong one, and (room routes) with another room's."""
    await api.call(method, path, token=None, expect=401, code="unauthorized", **kw)
    await api.call(method, path, token="not-a-token", expect=401, code="unauthorized", **kw)
    if "room_id" in kw:
        await api.call(method, path, token=w.tokens["elsewhere"], expect=401, **kw)
    await locked_out(api, method, path, **kw)


async def locked_out(api: Api, method: str, path: str, **kw: Any) -> None:
    """429 rate_limited (with Retry-After) for the admin too, once this client address
    sent more wrong tokens than allowed (here: none allowed)."""
    failed = api.live.app.state.callers.failed
    saved = failed.allowed
    failed.allowed = 0
    try:
        await api.call(method, path, token="not-a-token", expect=401, code="unauthorized", **kw)
        await api.call(method, path, expect=429, code="rate_limited", **kw)
    finally:
        failed.allowed = saved
        failed._failures.clear()


async def throttled(api: Api, method: str, path: str, **kw: Any) -> None:
    """429 rate_limited (with Retry-After) once this client's budget of CPU-heavy
    requests is spent (here: a budget of none)."""
    heavy = api.live.app.state.heavy
    saved = heavy.per_s, heavy.burst
    heavy.per_s, heavy.burst = 0.01, 0
    heavy._buckets.clear()
    try:
        await api.call(method, path, expect=429, code="rate_limited", **kw)
    finally:
        heavy.per_s, heavy.burst = saved
        heavy._buckets.clear()


async def crowded(api: Api, template: str, **kw: Any) -> None:
    """429 rate_limited (with Retry-After) once this client's budget of requests that
    need no token is spent (here: a budget of none)."""
    public = api.live.app.state.public_requests
    saved = public.per_s, public.burst
    public.per_s, public.burst = 0.01, 0
    public._buckets.clear()
    try:
        await api.call("GET", template, token=None, expect=429, code="rate_limited", **kw)
    finally:
        public.per_s, public.burst = saved
        public._buckets.clear()


async def outage(api: Api, method: str, path: str, **kw: Any) -> None:
    """503 store_unavailable (with Retry-After) for a call that would otherwise succeed."""
    with store_outage(api.live):
        await api.call(method, path, expect=503, code="store_unavailable", **kw)


@scenario("GET", "/")
async def _index(api: Api, w: World) -> None:
    r = await api.call("GET", "/", token=None, expect=200)
    assert r.json()["websocket"] == "/ws"
    await crowded(api, "/")


@scenario("GET", "/healthz")
async def _healthz(api: Api, w: World) -> None:
    await api.call("GET", "/healthz", token=None, expect=200)
    await crowded(api, "/healthz")


@scenario("GET", "/readyz")
async def _readyz(api: Api, w: World) -> None:
    assert (await api.call("GET", "/readyz", token=None, expect=200)).json()["ready"] is True
    viewer = await w.viewer("v-ready")
    with store_outage(api.live):
        reply = await viewer.command("checkin", key="during-outage")
        assert reply["code"] == "store_unavailable", reply
        r = await api.call("GET", "/readyz", token=None, expect=503)
        assert r.json() == {"ready": False, "checks": {"hub": "ok", "store": "unreachable"}}
    await w.acked(viewer, "checkin", key="during-outage")  # the retry goes through
    await api.call("GET", "/readyz", token=None, expect=200)
    await crowded(api, "/readyz")


@scenario("GET", "/metrics")
async def _metrics(api: Api, w: World) -> None:
    r = await api.call("GET", "/metrics", token=None, expect=200)
    assert "hudong_" in r.text
    await crowded(api, "/metrics")
    hub = api.live.hub
    saved = hub.settings
    hub.settings = saved.replace(server={"metrics_token": "metrics-token-0123456789"})
    try:
        await api.call("GET", "/metrics", token=None, expect=401, code="unauthorized")
        await api.call("GET", "/metrics", token="metrics-token-0123456789", expect=200)
    finally:
        hub.settings = saved


@scenario("GET", DEGRADE)
async def _degrade(api: Api, w: World) -> None:
    r = await api.call("GET", DEGRADE, expect=200)
    assert r.json()["floor"] == 0  # the level itself follows the machine's load
    await unauthorized(api, w, "GET", DEGRADE)
    await api.call("GET", DEGRADE, token=w.tokens["host"], expect=401, code="unauthorized")


@scenario("PUT", DEGRADE)
async def _degrade_floor(api: Api, w: World) -> None:
    r = await api.call("PUT", DEGRADE, expect=200, body={"floor": 2})
    assert r.json()["floor"] == 2 and r.json()["level"] >= 2, r.json()
    await api.call("PUT", DEGRADE, expect=200, body={"floor": 3})
    await api.call("GET", "/readyz", token=None, expect=503)  # essential: no new viewers
    await api.call("PUT", DEGRADE, expect=200, body={"floor": 0})
    await api.call("GET", "/readyz", token=None, expect=200)
    for body in ({"floor": 4}, {"floor": "1"}, {}):
        await api.call("PUT", DEGRADE, expect=400, code="invalid_field", body=body)
    await api.call("PUT", DEGRADE, expect=400, code="malformed", content=b"3")
    await api.call("PUT", DEGRADE, expect=413, code="body_too_large", content=TOO_LARGE)
    await unauthorized(api, w, "PUT", DEGRADE, body={"floor": 1})
    await api.call("PUT", DEGRADE, token=w.tokens["host"], expect=401, body={"floor": 1})


@scenario("GET", ROOMS)
async def _list_rooms(api: Api, w: World) -> None:
    r = await api.call("GET", ROOMS, expect=200)
    assert {room["id"] for room in r.json()["rooms"]} == {ROOM, ELSEWHERE}
    await unauthorized(api, w, "GET", ROOMS)
    await api.call("GET", ROOMS, token=w.tokens["host"], expect=401, code="unauthorized")
    await outage(api, "GET", ROOMS)


@scenario("POST", ROOMS)
async def _create_room(api: Api, w: World) -> None:
    body = {"id": "fresh", "title": "Fresh", "settings": {"allow_anonymous": False}}
    await api.call("POST", ROOMS, expect=201, body=body)
    await api.call("POST", ROOMS, expect=201, body={})
    await api.call("POST", ROOMS, expect=201)  # no body at all
    await api.call("POST", ROOMS, expect=409, code="room_exists", body={"id": "fresh"})
    await api.call("POST", ROOMS, expect=400, code="invalid_field", body={"id": "bad id"})
    await api.call("POST", ROOMS, expect=400, code="malformed", content=b"[1]")
    await api.call("POST", ROOMS, expect=413, code="body_too_large", content=TOO_LARGE)
    await unauthorized(api, w, "POST", ROOMS, body={"id": "r2"})
    await outage(api, "POST", ROOMS, body={"id": "r3"})


@scenario("GET", ROOM_PATH)
async def _get_room(api: Api, w: World) -> None:
    await api.call("GET", ROOM_PATH, room_id=ROOM, expect=200)
    for role in ("host", "moderator"):
        await api.call("GET", ROOM_PATH, room_id=ROOM, token=w.tokens[role], expect=200)
    for role in ("viewer", "screen"):
        await api.call(
            "GET", ROOM_PATH, room_id=ROOM, token=w.tokens[role], expect=403, code="forbidden"
        )
    await api.call("GET", ROOM_PATH, room_id=NOWHERE, expect=404, code="room_not_found")
    await unauthorized(api, w, "GET", ROOM_PATH, room_id=ROOM)
    await outage(api, "GET", ROOM_PATH, room_id=ROOM)


@scenario("PATCH", ROOM_PATH)
async def _update_room(api: Api, w: World) -> None:
    await api.call("PATCH", ROOM_PATH, room_id=ROOM, expect=200, body={"title": "Renamed"})
    await api.call(
        "PATCH",
        ROOM_PATH,
        room_id=ROOM,
        token=w.tokens["host"],
        expect=200,
        body={"settings": {"allow_anonymous": False}},
    )
    every_setting = {
        "mode": "slow",
        "slow_mode_s": 10,
        "wall_moderation": "post",
        "brand_color": "#112233",
        "accent_color": "#AABBCC",
        "logo_url": "/assets/logo.png",
        "degrade_floor": 0,
    }
    r = await api.call(
        "PATCH", ROOM_PATH, room_id=ROOM, expect=200, body={"settings": every_setting}
    )
    assert r.json()["settings"]["accent_color"] == "#aabbcc"  # colours come back lower-cased
    for bad in ({"mode": "silent"}, {"logo_url": "http://elsewhere/logo.png"}):
        await api.call(
            "PATCH",
            ROOM_PATH,
            room_id=ROOM,
            expect=400,
            code="invalid_field",
            body={"settings": bad},
        )
    for role in ("moderator", "viewer", "screen"):
        await api.call(
            "PATCH",
            ROOM_PATH,
            room_id=ROOM,
            token=w.tokens[role],
            expect=403,
            body={"title": "mine"},
        )
    await api.call(
        "PATCH", ROOM_PATH, room_id=ROOM, expect=400, code="invalid_field", body={"version": 9}
    )
    await api.call("PATCH", ROOM_PATH, room_id=ROOM, expect=400, code="malformed", content=b"{")
    await api.call("PATCH", ROOM_PATH, room_id=ROOM, expect=413, content=TOO_LARGE)
    await api.call(
        "PATCH", ROOM_PATH, room_id=NOWHERE, expect=404, code="room_not_found", body={"title": "t"}
    )
    await unauthorized(api, w, "PATCH", ROOM_PATH, room_id=ROOM, body={"title": "t"})
    await outage(api, "PATCH", ROOM_PATH, room_id=ROOM, body={"title": "t"})


@scenario("DELETE", ROOM_PATH)
async def _delete_room(api: Api, w: World) -> None:
    for role in ("host", "moderator", "viewer", "screen"):
        await api.call(
            "DELETE", ROOM_PATH, room_id=ROOM, token=w.tokens[role], expect=403, code="forbidden"
        )
    await unauthorized(api, w, "DELETE", ROOM_PATH, room_id=ROOM)
    await outage(api, "DELETE", ROOM_PATH, room_id=ROOM)
    await api.call("DELETE", ROOM_PATH, room_id=ROOM, expect=204)
    await api.call("DELETE", ROOM_PATH, room_id=ROOM, expect=404, code="room_not_found")


async def _viewer_data(api: Api, w: World, method: str, template: str, **room: str) -> None:
    """A viewer's export or erasure: by its platform id or by its pseudonym; refused for
    anyone but the admin, for a wrong id, with the store away."""
    await w.every_kind_in_every_state()
    pseudonym = w.live.viewer_id("player-0")
    for role in ("host", "viewer"):
        token = w.tokens[role]
        if room:
            await api.call(method, template, user_id=pseudonym, token=token, expect=403, **room)
        else:
            await api.call(method, template, user_id=pseudonym, token=token, expect=401, **room)
    await unauthorized(api, w, method, template, user_id=pseudonym, **room)
    await api.call(method, template, user_id="x" * 129, expect=400, code="invalid_field", **room)
    await api.call(
        method, template, user_id=pseudonym, query={"external": "yes"}, expect=400, **room
    )
    await outage(api, method, template, user_id=pseudonym, **room)
    if room:
        await api.call(method, template, user_id=pseudonym, expect=404, room_id="gone")
    r = await api.call(
        method, template, user_id="player-0", query={"external": "true"}, expect=200, **room
    )
    assert r.json()["user_id"] == pseudonym and ROOM in r.json()["rooms"], r.text
    if method == "DELETE":
        again = await api.call(method, template, user_id=pseudonym, expect=200, **room)
        assert again.json()["rooms"] == {}, again.text


@scenario("GET", VIEWER_DATA)
async def _export_viewer(api: Api, w: World) -> None:
    await _viewer_data(api, w, "GET", VIEWER_DATA)


@scenario("DELETE", VIEWER_DATA)
async def _erase_viewer(api: Api, w: World) -> None:
    await _viewer_data(api, w, "DELETE", VIEWER_DATA)


@scenario("GET", ROOM_VIEWER_DATA)
async def _export_room_viewer(api: Api, w: World) -> None:
    await _viewer_data(api, w, "GET", ROOM_VIEWER_DATA, room_id=ROOM)


@scenario("DELETE", ROOM_VIEWER_DATA)
async def _erase_room_viewer(api: Api, w: World) -> None:
    await _viewer_data(api, w, "DELETE", ROOM_VIEWER_DATA, room_id=ROOM)


@scenario("POST", TOKENS)
async def _mint_token(api: Api, w: World) -> None:
    for role in ("host", "moderator", "screen", "viewer"):
        await api.call(
            "POST",
            TOKENS,
            room_id=ROOM,
            expect=201,
            body={"role": role, "user_id": f"u.{role}@x", "name": "Kim", "ttl_s": 60},
        )
    r = await api.call(
        "POST", TOKENS, room_id=ROOM, token=w.tokens["host"], expect=201, body={"role": "viewer"}
    )
    assert r.json()["role"] == "viewer"
    for minter, role in (("host", "host"), ("moderator", "viewer"), ("viewer", "viewer")):
        await api.call(
            "POST",
            TOKENS,
            room_id=ROOM,
            token=w.tokens[minter],
            expect=403,
            code="forbidden",
            body={"role": role},
        )
    for body in ({"role": "admin"}, {"role": "viewer", "ttl_s": 0}, {}):
        await api.call("POST", TOKENS, room_id=ROOM, expect=400, code="invalid_field", body=body)
    await api.call(
        "POST", TOKENS, room_id=ROOM, expect=400, code="malformed", content=b"role=viewer"
    )
    await api.call("POST", TOKENS, room_id=ROOM, expect=413, content=TOO_LARGE)
    await api.call(
        "POST", TOKENS, room_id=NOWHERE, expect=404, code="room_not_found", body={"role": "viewer"}
    )
    await unauthorized(api, w, "POST", TOKENS, room_id=ROOM, body={"role": "viewer"})
    await outage(api, "POST", TOKENS, room_id=ROOM, body={"role": "viewer"})


@scenario("GET", REVOCATIONS)
async def _revocations(api: Api, w: World) -> None:
    r = await api.call("GET", REVOCATIONS, room_id=ROOM, expect=200)
    assert r.json() == {"revocations": []}
    await w.host("POST", REVOCATIONS, room_id=ROOM, expect=201, body={"role": "screen"})
    r = await api.call("GET", REVOCATIONS, room_id=ROOM, token=w.tokens["host"], expect=200)
    assert [e.get("role") for e in r.json()["revocations"]] == ["screen"]
    for role in ("moderator", "viewer"):
        await api.call("GET", REVOCATIONS, room_id=ROOM, token=w.tokens[role], expect=403)
    await api.call("GET", REVOCATIONS, room_id=NOWHERE, expect=404, code="room_not_found")
    await unauthorized(api, w, "GET", REVOCATIONS, room_id=ROOM)
    await outage(api, "GET", REVOCATIONS, room_id=ROOM)


@scenario("POST", REVOCATIONS)
async def _revoke(api: Api, w: World) -> None:
    minted = await api.call("POST", TOKENS, room_id=ROOM, expect=201, body={"role": "viewer"})
    jti = minted.json()["jti"]
    r = await api.call("POST", REVOCATIONS, room_id=ROOM, expect=201, body={"jti": jti})
    assert r.json()["jti"] == jti and r.json()["until"] == minted.json()["expires_at"] * 1000
    token = minted.json()["token"]
    await api.call("GET", INTERACTIONS, room_id=ROOM, token=token, expect=401, code="unauthorized")
    await api.call(
        "POST",
        REVOCATIONS,
        room_id=ROOM,
        token=w.tokens["host"],
        expect=201,
        body={"role": "screen"},
    )
    await api.call("GET", INTERACTIONS, room_id=ROOM, token=w.tokens["screen"], expect=401)
    for body in ({}, {"role": "admin"}, {"jti": ""}, {"role": "viewer", "jti": "x"}, {"x": 1}):
        await api.call(
            "POST", REVOCATIONS, room_id=ROOM, expect=400, code="invalid_field", body=body
        )
    await api.call(
        "POST", REVOCATIONS, room_id=ROOM, expect=400, code="malformed", content=b"role=viewer"
    )
    await api.call("POST", REVOCATIONS, room_id=ROOM, expect=413, content=TOO_LARGE)
    for role in ("moderator", "viewer"):
        await api.call(
            "POST",
            REVOCATIONS,
            room_id=ROOM,
            token=w.tokens[role],
            expect=403,
            code="forbidden",
            body={"role": "viewer"},
        )
    await api.call(
        "POST",
        REVOCATIONS,
        room_id=NOWHERE,
        expect=404,
        code="room_not_found",
        body={"role": "viewer"},
    )
    await unauthorized(api, w, "POST", REVOCATIONS, room_id=ROOM, body={"role": "viewer"})
    await outage(api, "POST", REVOCATIONS, room_id=ROOM, body={"role": "viewer"})


@scenario("GET", INTERACTIONS)
async def _list_interactions(api: Api, w: World) -> None:
    r = await api.call("GET", INTERACTIONS, room_id=ROOM, expect=200)
    assert [v["id"] for v in r.json()["interactions"]] == ["checkin", "wall", "reactions"]
    ids = await w.every_kind_in_every_state()
    for who in ("admin", "host", "moderator", "viewer", "screen"):
        token = ADMIN if who == "admin" else w.tokens[who]
        r = await api.call("GET", INTERACTIONS, room_id=ROOM, token=token, expect=200)
        assert sorted(v["id"] for v in r.json()["interactions"]) == sorted(ids)
    await api.call("GET", INTERACTIONS, room_id=NOWHERE, expect=404, code="room_not_found")
    await unauthorized(api, w, "GET", INTERACTIONS, room_id=ROOM)
    await outage(api, "GET", INTERACTIONS, room_id=ROOM)


@scenario("POST", INTERACTIONS)
async def _create_interaction(api: Api, w: World) -> None:
    # Every kind, every poll kind, with every optional field of the specs somewhere.
    await w.every_kind_in_every_state()
    await w.create(
        "poll",
        {
            "id": "p-full",
            "question": "All fields?",
            "kind": "ranked",
            "options": OPTIONS,
            "min_picks": 2,
            "max_picks": 3,
            "scale": 5,
            "hide_results_until_reveal": False,
            "duration_s": 30.5,
            "max_text_chars": 200,
        },
    )
    await w.create(
        "draw",
        {
            "id": "w-poll",
            "title": "Voters",
            "source": "poll",
            "poll_id": "p-full",
            "keyword": None,
            "window_s": None,
        },
    )
    await w.create("draw", {"id": "w-presence", "title": "Here", "source": "presence"})
    await w.create(
        "quiz",
        {
            "id": "z-min",
            "title": "Q",
            "questions": [{"id": "q", "text": "?", "options": OPTIONS[:2], "correct": "b"}],
        },
    )
    await w.create("qa", {"id": "b-min", "title": "Board"})
    taken = {"kind": "qa", "spec": {"id": "b-min", "title": "again"}}
    for body in (
        taken,
        {"kind": "checkin", "spec": {"id": "c", "title": "C"}},
        {"kind": "poll", "spec": {"id": "p", "question": "Q?", "kind": "single"}},
        {"kind": "poll"},
        {},
    ):
        await api.call(
            "POST", INTERACTIONS, room_id=ROOM, expect=400, code="invalid_field", body=body
        )
    await api.call("POST", INTERACTIONS, room_id=ROOM, expect=400, code="malformed", content=b"[]")
    await api.call("POST", INTERACTIONS, room_id=ROOM, expect=413, content=TOO_LARGE)
    new = {"kind": "qa", "spec": {"id": "b-new", "title": "New"}}
    for role in ("viewer", "screen"):
        await api.call(
            "POST",
            INTERACTIONS,
            room_id=ROOM,
            token=w.tokens[role],
            expect=403,
            code="forbidden",
            body=new,
        )
    await api.call(
        "POST", INTERACTIONS, room_id=ROOM, token=w.tokens["moderator"], expect=201, body=new
    )
    await api.call(
        "POST", INTERACTIONS, room_id=NOWHERE, expect=404, code="room_not_found", body=new
    )
    # A room holds limits.interactions_per_room (100) created interactions at most.
    r = await api.call("GET", INTERACTIONS, room_id=ROOM, expect=200)
    made = sum(v["id"] not in ("checkin", "wall", "reactions") for v in r.json()["interactions"])
    for i in range(made, 100):
        body = {"kind": "qa", "spec": {"id": f"fill-{i}", "title": "Filler"}}
        await api.call("POST", INTERACTIONS, room_id=ROOM, expect=201, body=body)
    body = {"kind": "qa", "spec": {"id": "one-too-many", "title": "Over"}}
    await api.call("POST", INTERACTIONS, room_id=ROOM, expect=409, code="limit_reached", body=body)
    await unauthorized(api, w, "POST", INTERACTIONS, room_id=ROOM, body=new)
    await outage(
        api,
        "POST",
        INTERACTIONS,
        room_id=ROOM,
        body={"kind": "qa", "spec": {"id": "b-out", "title": "Out"}},
    )


@scenario("GET", INTERACTION)
async def _get_interaction(api: Api, w: World) -> None:
    ids = await w.every_kind_in_every_state()
    for iid in ids:
        for who in ("admin", "host", "moderator", "viewer", "screen"):
            token = ADMIN if who == "admin" else w.tokens[who]
            r = await api.call(
                "GET", INTERACTION, room_id=ROOM, interaction_id=iid, token=token, expect=200
            )
            assert r.json()["id"] == iid
    # What viewers must not see, and hosts do.
    viewer = w.tokens["viewer"]
    hidden = {"room_id": ROOM, "interaction_id": "p-hidden", "expect": 200}
    assert (await api.call("GET", INTERACTION, token=viewer, **hidden)).json()["results"] == {
        "poll": "p-hidden",
        "kind": "single",
        "voters": 2,
        "hidden": True,
    }
    assert "options" in (await api.call("GET", INTERACTION, **hidden)).json()["results"]
    quiz = {"room_id": ROOM, "interaction_id": "z", "expect": 200}
    public = (await api.call("GET", INTERACTION, token=viewer, **quiz)).json()["spec"]
    assert [q["id"] for q in public["questions"]] == ["q1"]
    assert len((await api.call("GET", INTERACTION, **quiz)).json()["spec"]["questions"]) == 2
    board = {"room_id": ROOM, "interaction_id": "b", "expect": 200}
    shown = (await api.call("GET", INTERACTION, token=viewer, **board)).json()["questions"]
    assert len(shown) == 1 and "viewer_id" not in shown[0]
    assert len((await api.call("GET", INTERACTION, **board)).json()["questions"]) == 2
    await api.call(
        "GET", INTERACTION, room_id=ROOM, interaction_id="nope", expect=404, code="unknown_target"
    )
    await api.call(
        "GET",
        INTERACTION,
        room_id=NOWHERE,
        interaction_id="checkin",
        expect=404,
        code="room_not_found",
    )
    await unauthorized(api, w, "GET", INTERACTION, room_id=ROOM, interaction_id="checkin")
    await outage(api, "GET", INTERACTION, room_id=ROOM, interaction_id="checkin")


@scenario("POST", ACTIONS)
async def _act(api: Api, w: World) -> None:
    # Every action of every kind succeeds (every_kind_in_every_state runs them through
    # this operation), and the check-in's two.
    await w.every_kind_in_every_state()
    await w.act("checkin", "open")  # open already: a no-op that succeeds
    await w.act("checkin", "close")
    await w.act("z", "ask")  # the next question
    await w.act("z", "finish")
    await w.act("b", "unpin", question=await first_question(w))
    board = await w.host("GET", INTERACTION, room_id=ROOM, interaction_id="b", expect=200)
    for hidden in [q["id"] for q in board.json()["questions"] if q["hidden"]]:
        await w.act("b", "unhide", question=hidden)
    await w.act("b", "close")
    await w.create("poll", {"id": "p-draft", "question": "Draft?", "kind": "text"})
    at = {"room_id": ROOM, "interaction_id": "p-draft"}
    await api.call(
        "POST", ACTIONS, **at, token=w.tokens["moderator"], expect=200, body={"action": "open"}
    )
    for body in (
        {"action": "explode"},
        {},
        {"action": "create"},
        {"action": 5},
        {"action": "lock_all"},
    ):
        await api.call("POST", ACTIONS, **at, expect=400, code="invalid_field", body=body)
    qa = {"room_id": ROOM, "interaction_id": "b"}
    question = await first_question(w)
    await api.call(
        "POST",
        ACTIONS,
        **qa,
        expect=400,
        code="empty_text",
        body={"action": "answer", "question": question, "text": "  "},
    )
    await api.call(
        "POST",
        ACTIONS,
        **qa,
        expect=400,
        code="text_too_long",
        body={"action": "answer", "question": question, "text": "x" * 2001},
    )
    await api.call(
        "POST",
        ACTIONS,
        **qa,
        expect=404,
        code="unknown_target",
        body={"action": "pin", "question": "nope"},
    )
    await api.call("POST", ACTIONS, **at, expect=400, code="malformed", content=b"{")
    await api.call("POST", ACTIONS, **at, expect=413, content=TOO_LARGE)
    await w.create("draw", {"id": "w-empty", "title": "Nobody"})
    await api.call(
        "POST",
        ACTIONS,
        room_id=ROOM,
        interaction_id="w-empty",
        expect=409,
        code="no_entrants",
        body={"action": "run"},
    )
    for role in ("viewer", "screen"):
        await api.call(
            "POST",
            ACTIONS,
            **at,
            token=w.tokens[role],
            expect=403,
            code="forbidden",
            body={"action": "close"},
        )
    await api.call(
        "POST",
        ACTIONS,
        room_id=ROOM,
        interaction_id="nope",
        expect=404,
        code="unknown_target",
        body={"action": "open"},
    )
    await api.call(
        "POST",
        ACTIONS,
        room_id=NOWHERE,
        interaction_id="p-draft",
        expect=404,
        code="room_not_found",
        body={"action": "open"},
    )
    await unauthorized(api, w, "POST", ACTIONS, **at, body={"action": "close"})
    await outage(api, "POST", ACTIONS, **at, body={"action": "close"})


async def first_question(w: World) -> str:
    r = await w.host("GET", INTERACTION, room_id=ROOM, interaction_id="b", expect=200)
    return str(r.json()["questions"][0]["id"])


@scenario("GET", AUDIT)
async def _audit(api: Api, w: World) -> None:
    await w.every_kind_in_every_state()
    for who in ("admin", "host", "moderator"):
        token = ADMIN if who == "admin" else w.tokens[who]
        r = await api.call("GET", AUDIT, room_id=ROOM, interaction_id="w", token=token, expect=200)
        players = sorted(w.live.viewer_id(f"player-{i}") for i in range(2))
        assert r.json()["entrants"] == players
    for who in ("viewer", "screen"):  # the ids as digests (issue 15)
        at = {"room_id": ROOM, "interaction_id": "w"}
        r = await api.call("GET", AUDIT, **at, token=w.tokens[who], expect=200)
        assert "entrants" not in r.json() and len(r.json()["entrant_digests"]) == 2
    await api.call("GET", AUDIT, room_id=ROOM, interaction_id="w-open", expect=409, code="not_open")
    await api.call(
        "GET", AUDIT, room_id=ROOM, interaction_id="p-single", expect=400, code="invalid_field"
    )
    await throttled(api, "GET", AUDIT, room_id=ROOM, interaction_id="w")
    await api.call(
        "GET", AUDIT, room_id=ROOM, interaction_id="nope", expect=404, code="unknown_target"
    )
    await api.call(
        "GET", AUDIT, room_id=NOWHERE, interaction_id="w", expect=404, code="room_not_found"
    )
    await unauthorized(api, w, "GET", AUDIT, room_id=ROOM, interaction_id="w")
    await outage(api, "GET", AUDIT, room_id=ROOM, interaction_id="w")


@scenario("GET", MINE)
async def _mine(api: Api, w: World) -> None:
    await w.every_kind_in_every_state()
    at = {"room_id": ROOM, "interaction_id": "w"}
    for winner in ("player-0", "player-1"):
        token = await w.mint(ROOM, "viewer", winner)
        r = await api.call("GET", MINE, **at, token=token, expect=200)
        claim = r.json()["claim"]
        assert claim["winner"] == w.live.viewer_id(winner) and claim["claimed_at"] is None
    for who in ("admin", "host", "viewer", "screen"):  # none of them won
        token = ADMIN if who == "admin" else w.tokens[who]
        r = await api.call("GET", MINE, **at, token=token, expect=200)
        assert r.json() == {"interaction": "w"}, who
    await api.call("GET", MINE, room_id=ROOM, interaction_id="nope", expect=404)
    await unauthorized(api, w, "GET", MINE, **at)
    await outage(api, "GET", MINE, **at)


@scenario("GET", EXPORT)
async def _export(api: Api, w: World) -> None:
    at = {"room_id": ROOM, "interaction_id": "checkin"}
    r = await api.call("GET", EXPORT, **at, expect=200)
    assert r.json() == {"rows": []}
    await throttled(api, "GET", EXPORT, **at)
    for i in range(2):
        viewer = await w.viewer(f"-evil-{i}")
        await w.acked(viewer, "checkin", key="c1")
    for who in ("admin", "host", "moderator"):
        token = ADMIN if who == "admin" else w.tokens[who]
        rows = (await api.call("GET", EXPORT, **at, token=token, expect=200)).json()["rows"]
        ids = [w.live.viewer_id(f"-evil-{i}") for i in range(2)]
        assert [(row["viewer"], row["name"]) for row in rows] == [
            (ids[0], "-evil-0"),
            (ids[1], "-evil-1"),
        ]
        for query in ({"format": "csv"}, {"format": "json"}):
            await api.call("GET", EXPORT, **at, token=token, query=query, expect=200)
        csv = (await api.call("GET", EXPORT, **at, query={"format": "csv"}, expect=200)).text
        assert f"{ids[0]},'-evil-0," in csv.splitlines()[1], csv  # no formula for spreadsheets
    for role in ("viewer", "screen"):
        await api.call("GET", EXPORT, **at, token=w.tokens[role], expect=403, code="forbidden")
    await w.create("qa", {"id": "b", "title": "Board"})  # every kind exports its rows
    board = await api.call("GET", EXPORT, room_id=ROOM, interaction_id="b", expect=200)
    assert board.json() == {"rows": []}
    await api.call(
        "GET", EXPORT, room_id=ROOM, interaction_id="nope", expect=404, code="unknown_target"
    )
    await api.call(
        "GET", EXPORT, room_id=NOWHERE, interaction_id="checkin", expect=404, code="room_not_found"
    )
    await unauthorized(api, w, "GET", EXPORT, **at)
    await outage(api, "GET", EXPORT, **at)


@scenario("GET", MODERATION)
async def _moderation_list(api: Api, w: World) -> None:
    r = await api.call("GET", MODERATION, room_id=ROOM, expect=200)
    assert r.json() == {"muted": [], "banned": []}
    await w.host("POST", MODERATION, room_id=ROOM, expect=200, body={"action": "ban", "user": "b"})
    await w.host("POST", MODERATION, room_id=ROOM, expect=200, body={"action": "mute", "user": "m"})
    for who in ("admin", "host", "moderator"):
        token = ADMIN if who == "admin" else w.tokens[who]
        r = await api.call("GET", MODERATION, room_id=ROOM, token=token, expect=200)
        assert r.json()["banned"] == [{"user": "b"}]
        assert [m["user"] for m in r.json()["muted"]] == ["m"]
    for role in ("viewer", "screen"):
        await api.call("GET", MODERATION, room_id=ROOM, token=w.tokens[role], expect=403)
    await api.call("GET", MODERATION, room_id=NOWHERE, expect=404, code="room_not_found")
    await unauthorized(api, w, "GET", MODERATION, room_id=ROOM)
    await outage(api, "GET", MODERATION, room_id=ROOM)


@scenario("POST", MODERATION)
async def _moderate(api: Api, w: World) -> None:
    for body in (
        {"action": "retract", "event": "node.1"},
        {"action": "mute", "user": "v1", "duration_s": 30},
        {"action": "mute", "user": "v1"},
        {"action": "unmute", "user": "v1"},
        {"action": "ban", "user": "v2"},
        {"action": "unban", "user": "v2"},
        {"action": "unban", "user": "never-banned"},
    ):
        r = await api.call("POST", MODERATION, room_id=ROOM, expect=200, body=body)
        assert r.json()["action"] == body["action"]
    await api.call(
        "POST",
        MODERATION,
        room_id=ROOM,
        token=w.tokens["moderator"],
        expect=200,
        body={"action": "mute", "user": "v3", "duration_s": 5},
    )
    for body in (
        {"action": "explode"},
        {},
        {"action": "mute"},
        {"action": "mute", "user": "v1", "duration_s": 0},
        {"action": "retract"},
        {"action": "ban", "user": ""},
    ):
        await api.call(
            "POST", MODERATION, room_id=ROOM, expect=400, code="invalid_field", body=body
        )
    await api.call("POST", MODERATION, room_id=ROOM, expect=400, code="malformed", content=b"{")
    await api.call("POST", MODERATION, room_id=ROOM, expect=413, content=TOO_LARGE)
    ban = {"action": "ban", "user": "v9"}
    for role in ("viewer", "screen"):
        await api.call("POST", MODERATION, room_id=ROOM, token=w.tokens[role], expect=403, body=ban)
    await api.call("POST", MODERATION, room_id=NOWHERE, expect=404, body=ban)
    await unauthorized(api, w, "POST", MODERATION, room_id=ROOM, body=ban)
    await outage(api, "POST", MODERATION, room_id=ROOM, body=ban)


BLOCKLIST = "/api/v1/rooms/{room_id}/blocklist"


@scenario("GET", BLOCKLIST)
async def _blocklist_get(api: Api, w: World) -> None:
    r = await api.call("GET", BLOCKLIST, room_id=ROOM, expect=200)
    assert r.json() == {"words": []}
    for role in ("viewer", "screen"):
        await api.call("GET", BLOCKLIST, room_id=ROOM, token=w.tokens[role], expect=403)
    await api.call("GET", BLOCKLIST, room_id=NOWHERE, expect=404, code="room_not_found")
    await unauthorized(api, w, "GET", BLOCKLIST, room_id=ROOM)
    await outage(api, "GET", BLOCKLIST, room_id=ROOM)


@scenario("PUT", BLOCKLIST)
async def _blocklist_put(api: Api, w: World) -> None:
    words = {"words": [{"word": "Ｓｐｏｉｌｅｒ", "action": "mask"}, {"word": "竞品"}]}
    r = await api.call("PUT", BLOCKLIST, room_id=ROOM, expect=200, body=words)
    assert r.json()["words"] == [
        {"word": "spoiler", "action": "mask", "as_typed": "Ｓｐｏｉｌｅｒ"},
        {"word": "竞品", "action": "reject", "as_typed": "竞品"},
    ]
    for who in ("host", "moderator"):
        r = await api.call("GET", BLOCKLIST, room_id=ROOM, token=w.tokens[who], expect=200)
        assert [x["word"] for x in r.json()["words"]] == ["spoiler", "竞品"]
    for body in (
        {},
        {"words": "spoiler"},
        {"words": [{"word": "x", "action": "explode"}]},
        {"words": [{"word": " "}]},
        {"words": [{"action": "mask"}]},
        {"words": [{"word": "w"}] * 501},
    ):
        await api.call("PUT", BLOCKLIST, room_id=ROOM, expect=400, code="invalid_field", body=body)
    r = await api.call("GET", BLOCKLIST, room_id=ROOM, expect=200)
    assert len(r.json()["words"]) == 2  # refused bodies changed nothing
    await api.call("PUT", BLOCKLIST, room_id=ROOM, expect=400, code="malformed", content=b"{")
    await api.call("PUT", BLOCKLIST, room_id=ROOM, expect=413, content=TOO_LARGE)
    for role in ("viewer", "screen"):
        await api.call("PUT", BLOCKLIST, room_id=ROOM, token=w.tokens[role], expect=403, body=words)
    await api.call("PUT", BLOCKLIST, room_id=NOWHERE, expect=404, body=words)
    await unauthorized(api, w, "PUT", BLOCKLIST, room_id=ROOM, body=words)
    await outage(api, "PUT", BLOCKLIST, room_id=ROOM, body=words)


@scenario("GET", ALERTS)
async def _alerts(api: Api, w: World) -> None:
    r = await api.call("GET", ALERTS, room_id=ROOM, expect=200)
    assert r.json() == {"watchlists": [], "alerts": [], "active": 0}
    await w.alert()
    for who in ("admin", "host", "moderator"):
        token = ADMIN if who == "admin" else w.tokens[who]
        r = await api.call("GET", ALERTS, room_id=ROOM, token=token, expect=200)
        assert [a["watch"] for a in r.json()["alerts"]] == ["refund"]
    for role in ("viewer", "screen"):
        await api.call("GET", ALERTS, room_id=ROOM, token=w.tokens[role], expect=403)
    await api.call("GET", ALERTS, room_id=NOWHERE, expect=404, code="room_not_found")
    await unauthorized(api, w, "GET", ALERTS, room_id=ROOM)
    await outage(api, "GET", ALERTS, room_id=ROOM)


@scenario("PUT", WATCHLISTS)
async def _watchlists(api: Api, w: World) -> None:
    body = {"watchlists": [{**WATCH, "threshold": 5, "window_s": 30, "baseline": 2.5}]}
    r = await api.call("PUT", WATCHLISTS, room_id=ROOM, expect=200, body=body)
    assert r.json()["watchlists"][0]["threshold"] == 5
    await w.host("PUT", WATCHLISTS, room_id=ROOM, expect=200, body={"watchlists": [WATCH]})
    await api.call(
        "PUT", WATCHLISTS, room_id=ROOM, token=w.tokens["moderator"], expect=200, body=body
    )
    for bad in (
        {},
        {"watchlists": [{"id": "x"}]},
        {"watchlists": [{**WATCH, "window_s": 0}]},
        {"watchlists": [WATCH], "more": 1},
    ):
        await api.call("PUT", WATCHLISTS, room_id=ROOM, expect=400, code="invalid_field", body=bad)
    await api.call("PUT", WATCHLISTS, room_id=ROOM, expect=400, code="malformed", content=b"[")
    await api.call("PUT", WATCHLISTS, room_id=ROOM, expect=413, content=TOO_LARGE)
    for role in ("viewer", "screen"):
        await api.call("PUT", WATCHLISTS, room_id=ROOM, token=w.tokens[role], expect=403, body=body)
    await api.call("PUT", WATCHLISTS, room_id=NOWHERE, expect=404, body=body)
    await unauthorized(api, w, "PUT", WATCHLISTS, room_id=ROOM, body=body)
    await outage(api, "PUT", WATCHLISTS, room_id=ROOM, body=body)


@scenario("POST", ACK)
async def _acknowledge(api: Api, w: World) -> None:
    alert = await w.alert()
    at = {"room_id": ROOM, "alert_id": alert["id"]}
    with store_outage(api.live):
        await api.call("POST", ACK, expect=503, code="store_unavailable", **at)
    for role in ("viewer", "screen"):
        await api.call("POST", ACK, token=w.tokens[role], expect=403, **at)
    r = await api.call("POST", ACK, token=w.tokens["moderator"], expect=200, **at)
    assert r.json()["acked"]["user"] == "moderator"
    r = await api.call("POST", ACK, expect=200, **at)
    assert r.json()["acked"]["role"] == "moderator"  # the first acknowledgement stays
    await api.call("POST", ACK, room_id=ROOM, alert_id="a-none", expect=404, code="unknown_target")
    await api.call("POST", ACK, room_id=NOWHERE, alert_id="a-none", expect=404)
    await unauthorized(api, w, "POST", ACK, **at)


@scenario("GET", "/api/v1/rooms/{room_id}/report")
async def _report(api: Api, w: World) -> None:
    path = "/api/v1/rooms/{room_id}/report"
    ids = await w.every_kind_in_every_state()
    await throttled(api, "GET", path, room_id=ROOM)
    for who in ("admin", "host", "moderator"):
        token = ADMIN if who == "admin" else w.tokens[who]
        report = (await api.call("GET", path, room_id=ROOM, token=token, expect=200)).json()
        assert sorted(s["id"] for s in report["interactions"]) == sorted(ids)
        sections = {s["id"]: s["section"] for s in report["interactions"]}
        assert sections["w"]["state"]["phase"] == "drawn"  # the draw's winners
        assert sections["p-hidden"]["results"]["hidden"] is False  # hosts see everything
    # the HTML page renders every kind in every state
    html = {"format": "html", "lang": "en"}
    page = await api.call("GET", path, room_id=ROOM, query=html, expect=200)
    assert page.headers["content-type"].startswith("text/html")
    assert all(f'id="i-{iid}"' in page.text for iid in ids)
    for query in ({"format": "pdf"}, {"lang": "fr"}):
        await api.call("GET", path, room_id=ROOM, query=query, expect=400, code="invalid_field")
    for role in ("viewer", "screen"):
        await api.call("GET", path, room_id=ROOM, token=w.tokens[role], expect=403)
    await api.call("GET", path, room_id=NOWHERE, expect=404, code="room_not_found")
    await unauthorized(api, w, "GET", path, room_id=ROOM)
    await outage(api, "GET", path, room_id=ROOM)


@scenario("GET", AUDIT_LOG)
async def _audit_log(api: Api, w: World) -> None:
    await w.host("POST", MODERATION, room_id=ROOM, expect=200, body={"action": "ban", "user": "b"})
    mod = w.tokens["moderator"]
    body = {"action": "mute", "user": "m"}
    await api.call("POST", MODERATION, room_id=ROOM, token=mod, expect=200, body=body)
    for who in ("admin", "host", "moderator"):
        token = ADMIN if who == "admin" else w.tokens[who]
        r = await api.call("GET", AUDIT_LOG, room_id=ROOM, token=token, expect=200)
        actions = [(e["action"], e["actor"]["id"]) for e in r.json()["entries"]]
        assert actions[:2] == [("moderation.mute", "moderator"), ("moderation.ban", "host")]
    first = await api.call("GET", AUDIT_LOG, room_id=ROOM, query={"limit": "1"}, expect=200)
    cursor = first.json()["next"]
    query = {"limit": "1", "before": cursor, "action": "moderation"}
    second = await api.call("GET", AUDIT_LOG, room_id=ROOM, query=query, expect=200)
    assert [e["action"] for e in second.json()["entries"]] == ["moderation.ban"]
    query = {"actor": "host", "target": "b", "since": "0", "until": str(2**42)}
    r = await api.call("GET", AUDIT_LOG, room_id=ROOM, query=query, expect=200)
    assert [e["action"] for e in r.json()["entries"]] == ["moderation.ban"]
    exported = await api.call("GET", AUDIT_LOG, room_id=ROOM, query={"format": "json"}, expect=200)
    assert exported.json()["entries"][-1]["action"] == "moderation.mute"  # oldest first
    csv = await api.call("GET", AUDIT_LOG, room_id=ROOM, query={"format": "csv"}, expect=200)
    assert csv.text.splitlines()[0].startswith("id,at,time,node,actor_id"), csv.text
    for query in ({"limit": "0"}, {"since": "yesterday"}, {"who": "x"}, {"format": "xml"}):
        await api.call(
            "GET", AUDIT_LOG, room_id=ROOM, query=query, expect=400, code="invalid_field"
        )
    await throttled(api, "GET", AUDIT_LOG, room_id=ROOM)
    for role in ("viewer", "screen"):
        await api.call("GET", AUDIT_LOG, room_id=ROOM, token=w.tokens[role], expect=403)
    await api.call("GET", AUDIT_LOG, room_id=NOWHERE, expect=404, code="room_not_found")
    await unauthorized(api, w, "GET", AUDIT_LOG, room_id=ROOM)
    await outage(api, "GET", AUDIT_LOG, room_id=ROOM)


@scenario("GET", STATS)
async def _stats(api: Api, w: World) -> None:
    viewer = await w.viewer("counted")
    reply = await viewer.command("danmaku", text="hello")
    assert reply["type"] == "ack", reply
    await w.acked(viewer, "checkin", key="c1")
    for who in ("admin", "host", "moderator"):
        token = ADMIN if who == "admin" else w.tokens[who]
        r = await api.call("GET", STATS, room_id=ROOM, token=token, expect=200)
        stats = r.json()
        assert (stats["online"], stats["participants"]) == (1, 1), stats
        assert stats["unique_viewers"] == 1, stats  # staff and screens are no viewers
        assert (stats["danmaku_per_min"], stats["votes_per_min"]) == (1, 1), stats
    for role in ("viewer", "screen"):
        await api.call("GET", STATS, room_id=ROOM, token=w.tokens[role], expect=403)
    await api.call("GET", STATS, room_id=NOWHERE, expect=404, code="room_not_found")
    await unauthorized(api, w, "GET", STATS, room_id=ROOM)
    await outage(api, "GET", STATS, room_id=ROOM)


TIMELINE = "/api/v1/rooms/{room_id}/timeline"


@scenario("GET", TIMELINE)
async def _timeline(api: Api, w: World) -> None:
    viewer = await w.viewer("counted")
    reply = await viewer.command("danmaku", text="hello")
    assert reply["type"] == "ack", reply
    await w.acked(viewer, "checkin", key="c1")
    minutes: list[dict[str, Any]] = []
    for _ in range(50):  # each node writes its minute every 2 s
        r = await api.call("GET", TIMELINE, room_id=ROOM, token=w.tokens["host"], expect=200)
        minutes = r.json()["minutes"]
        if minutes and minutes[-1]["danmaku"] == 1 and minutes[-1]["votes"] == 1:
            break
        await asyncio.sleep(0.2)
    assert [(m["online"], m["participants"], m["unique_viewers"]) for m in minutes[-1:]] == [
        (1, 1, 1)
    ], minutes
    for role in ("viewer", "screen"):
        await api.call("GET", TIMELINE, room_id=ROOM, token=w.tokens[role], expect=403)
    await api.call("GET", TIMELINE, room_id=NOWHERE, expect=404, code="room_not_found")
    await unauthorized(api, w, "GET", TIMELINE, room_id=ROOM)
    await outage(api, "GET", TIMELINE, room_id=ROOM)


TOP_WORDS = "/api/v1/rooms/{room_id}/top-words"


@scenario("GET", TOP_WORDS)
async def _top_words(api: Api, w: World) -> None:
    await outage(api, "GET", TOP_WORDS, room_id=ROOM)  # first: an answer is kept 2 s
    viewer = await w.viewer("talker")
    reply = await viewer.command("danmaku", text="番茄酱太好吃了")
    assert reply["type"] == "ack", reply
    words: list[dict[str, Any]] = []
    for _ in range(50):  # each node writes its counts every 2 s
        r = await api.call("GET", TOP_WORDS, room_id=ROOM, token=w.tokens["host"], expect=200)
        words = r.json()["words"]
        if {"word": "番茄酱", "count": 1} in words:
            break
        await asyncio.sleep(0.2)
    assert {"word": "番茄酱", "count": 1} in words, words
    for n in ("0", "101", "many"):
        await api.call(
            "GET", TOP_WORDS, room_id=ROOM, query={"n": n}, expect=400, code="invalid_field"
        )
    for role in ("viewer", "screen"):
        await api.call("GET", TOP_WORDS, room_id=ROOM, token=w.tokens[role], expect=403)
    await api.call("GET", TOP_WORDS, room_id=NOWHERE, expect=404, code="room_not_found")
    await unauthorized(api, w, "GET", TOP_WORDS, room_id=ROOM)


async def _page(api: Api, w: World, path: str, **params: str) -> None:
    r = await api.call("GET", path, token=None, expect=200, **params)
    policy = r.headers["content-security-policy"]
    assert "connect-src 'self'" in policy and "'unsafe-inline'" not in policy, policy
    assert r.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module"' in r.text
    await crowded(api, path, **params)


@scenario("GET", "/console")
async def _console_page(api: Api, w: World) -> None:
    await _page(api, w, "/console")


@scenario("GET", "/cockpit")
async def _cockpit_page(api: Api, w: World) -> None:
    await _page(api, w, "/cockpit")


@scenario("GET", "/live/{room_id}")
async def _live_page(api: Api, w: World) -> None:
    await _page(api, w, "/live/{room_id}", room_id=ROOM)


@scenario("GET", "/overlay/{room_id}")
async def _overlay_page(api: Api, w: World) -> None:
    await _page(api, w, "/overlay/{room_id}", room_id=ROOM)


@scenario("GET", "/wall/{room_id}")
async def _wall_page(api: Api, w: World) -> None:
    await _page(api, w, "/wall/{room_id}", room_id=ROOM)


@scenario("GET", "/qr/{room_id}.svg")
async def _qr(api: Api, w: World) -> None:
    r = await api.call("GET", "/qr/{room_id}.svg", token=None, expect=200, room_id=ROOM)
    assert r.headers["x-hudong-target"] == f"{api.live.base}/live/{ROOM}"
    assert r.text.startswith("<svg")
    await api.call("GET", "/qr/{room_id}.svg", token=None, expect=400, room_id="a.b")
    await api.call("GET", "/qr/{room_id}.svg", token=None, expect=404, room_id=NOWHERE)
    await throttled(api, "GET", "/qr/{room_id}.svg", token=None, room_id=ROOM)


@scenario("GET", "/static/kinds/{name}.js")
async def _kind_modules(api: Api, w: World) -> None:
    path = "/static/kinds/{name}.js"
    index = await api.call("GET", path, token=None, expect=200, name="index")
    assert '"/static/kinds/poll.js"' in index.text and "export const KINDS" in index.text
    poll = await api.call("GET", path, token=None, expect=200, name="poll")
    assert "export default" in poll.text
    await api.call("GET", path, token=None, expect=404, name="nope")
    await crowded(api, path, name="index")


@scenario("GET", "/static/{path}")
async def _static(api: Api, w: World) -> None:
    for path in ("client/hudong.js", "common.js", "style.css", "vendor/msgpack/index.mjs"):
        r = await api.call("GET", "/static/{path}", token=None, expect=200, path=path)
        assert r.content, path
    for path in ("client/package.json", "nope.js", "../../server/app.py", "client/node_modules"):
        await api.call("GET", "/static/{path}", token=None, expect=404, path=path)
    await crowded(api, "/static/{path}", path="style.css")


def _folder_with_a_logo(folder: str) -> Path:
    (Path(folder) / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    return Path(folder).resolve()


@scenario("GET", "/assets/{path}")
async def _assets(api: Api, w: World) -> None:
    pages = api.live.app.state.pages
    await api.call("GET", "/assets/{path}", token=None, expect=404, path="logo.png")
    with tempfile.TemporaryDirectory() as folder:
        pages.assets = _folder_with_a_logo(folder)
        try:
            await api.call("GET", "/assets/{path}", token=None, expect=200, path="logo.svg")
            await api.call("GET", "/assets/{path}", token=None, expect=404, path="logo.png")
            await crowded(api, "/assets/{path}", path="logo.svg")
        finally:
            pages.assets = None


BRIDGES = "/api/v1/rooms/{room_id}/bridges"
BRIDGE = f"{BRIDGES}/{{platform}}/{{channel}}"
WEBHOOK = f"{BRIDGES}/webhook/{{channel}}"
WEBHOOK_SECRET = "the webhook's shared secret"


def with_webhook_secret(api: Api) -> None:
    """The node's [bridges] webhook secret (the test node starts without one)."""
    bridges = api.live.app.state.bridges
    bridges.settings = bridges.settings.replace(bridges={"webhook": {"secret": WEBHOOK_SECRET}})


async def added(w: World, channel: str) -> dict[str, Any]:
    body = {"platform": "webhook", "channel": channel}
    r = await w.host("POST", BRIDGES, room_id=ROOM, expect=201, body=body)
    bridge: dict[str, Any] = r.json()
    return bridge


@scenario("GET", BRIDGES)
async def _bridges_list(api: Api, w: World) -> None:
    with_webhook_secret(api)
    r = await api.call("GET", BRIDGES, room_id=ROOM, expect=200)
    assert r.json()["bridges"] == [] and "webhook" in r.json()["platforms"]
    await added(w, "shop")
    r = await w.host("GET", BRIDGES, room_id=ROOM, expect=200)
    (bridge,) = r.json()["bridges"]
    assert bridge["id"] == "webhook:shop"
    assert bridge["status"]["state"] in ("connecting", "connected")
    for role in ("moderator", "viewer", "screen"):
        await api.call("GET", BRIDGES, room_id=ROOM, token=w.tokens[role], expect=403)
    await api.call("GET", BRIDGES, room_id=NOWHERE, expect=404, code="room_not_found")
    await unauthorized(api, w, "GET", BRIDGES, room_id=ROOM)
    await outage(api, "GET", BRIDGES, room_id=ROOM)


@scenario("POST", BRIDGES)
async def _bridges_add(api: Api, w: World) -> None:
    with_webhook_secret(api)
    first = await added(w, "c0")
    again = await w.host(
        "POST", BRIDGES, room_id=ROOM, expect=201, body={"platform": "webhook", "channel": "c0"}
    )
    assert again.json()["id"] == first["id"] == "webhook:c0"
    for body in (
        {"platform": "nowhere", "channel": "x"},
        {"platform": "webhook", "channel": "not one/channel"},
        {"platform": "webhook"},
        {"platform": "webhook", "channel": "x", "secret": "never in a room"},
    ):
        await api.call("POST", BRIDGES, room_id=ROOM, expect=400, code="invalid_field", body=body)
    await api.call("POST", BRIDGES, room_id=ROOM, expect=400, code="malformed", content=b"{")
    await api.call("POST", BRIDGES, room_id=ROOM, expect=413, content=TOO_LARGE)
    body = {"platform": "webhook", "channel": "c9"}
    for role in ("moderator", "viewer", "screen"):
        await api.call("POST", BRIDGES, room_id=ROOM, token=w.tokens[role], expect=403, body=body)
    await api.call("POST", BRIDGES, room_id=NOWHERE, expect=404, body=body)
    for n in range(1, 8):
        await added(w, f"c{n}")
    await api.call("POST", BRIDGES, room_id=ROOM, expect=409, code="limit_reached", body=body)
    await unauthorized(api, w, "POST", BRIDGES, room_id=ROOM, body=body)
    await outage(api, "POST", BRIDGES, room_id=ROOM, body=body)


@scenario("DELETE", BRIDGE)
async def _bridges_remove(api: Api, w: World) -> None:
    with_webhook_secret(api)
    await added(w, "shop")
    where = {"room_id": ROOM, "platform": "webhook", "channel": "shop"}
    for role in ("moderator", "viewer", "screen"):
        await api.call("DELETE", BRIDGE, token=w.tokens[role], expect=403, **where)
    await unauthorized(api, w, "DELETE", BRIDGE, **where)
    await outage(api, "DELETE", BRIDGE, **where)
    await w.host("DELETE", BRIDGE, expect=204, **where)
    await api.call("DELETE", BRIDGE, expect=404, code="unknown_target", **where)
    await api.call(
        "DELETE", BRIDGE, expect=404, code="room_not_found", **{**where, "room_id": NOWHERE}
    )
    r = await api.call("GET", BRIDGES, room_id=ROOM, expect=200)
    assert r.json()["bridges"] == []


async def webhook_post(
    api: Api, channel: str, body: bytes, expect: int, *, secret: str = WEBHOOK_SECRET
) -> httpx.Response:
    ts = str(int(time.time()))
    headers = {
        "X-Hudong-Timestamp": ts,
        "X-Hudong-Signature": signature(secret, ts, body),
        "Content-Type": "application/json",
    }
    url = WEBHOOK.format(room_id=ROOM, channel=channel)
    r = await api.http.post(url, content=body, headers=headers)
    where = f"POST {url} -> {r.status_code}"
    api.check(("POST", WEBHOOK), r, where)
    assert r.status_code == expect, f"{where}, expected {expect}: {r.text[:500]}"
    return r


@scenario("POST", WEBHOOK)
async def _webhook(api: Api, w: World) -> None:
    with_webhook_secret(api)
    await added(w, "shop")
    message = b'{"sender": "u1", "name": "Ann", "text": "hello", "id": "m1"}'
    await webhook_post(api, "shop", message, 202)
    await webhook_post(api, "shop", message, 401, secret="not the secret")
    await webhook_post(api, "shop", b'{"sender": "u1"}', 400)
    await webhook_post(api, "elsewhere", message, 404)
    await webhook_post(api, "shop", TOO_LARGE, 413)
    adapter = api.live.app.state.bridges.running(ROOM, "webhook", "shop")
    adapter.queue = asyncio.Queue(1)
    adapter.queue.put_nowait(None)  # the bridge is behind
    await webhook_post(api, "shop", message, 503)
    public = api.live.app.state.public_requests
    saved = public.per_s, public.burst
    public.per_s, public.burst = 0.01, 0
    public._buckets.clear()
    try:
        await webhook_post(api, "shop", message, 429)
    finally:
        public.per_s, public.burst = saved
        public._buckets.clear()


def test_every_operation_has_a_scenario():
    assert set(SCENARIOS) == set(OPERATIONS)


@pytest.mark.parametrize(
    "operation", sorted(OPERATIONS), ids=[f"{m} {p}" for m, p in sorted(OPERATIONS)]
)
async def test_the_running_server_matches_the_spec(live, api, operation):
    """Each answer is one the spec lists for the operation, shaped as it says; and every
    status the spec lists for it is one the server really gives."""
    world = await World(live, api).build()
    await SCENARIOS[operation](api, world)
    documented = set(OPERATIONS[operation]["responses"])
    assert api.seen[operation] == documented, (
        f"statuses the spec lists that were not seen: {sorted(documented - api.seen[operation])}"
    )


async def test_interaction_refusals_are_shaped_as_the_spec_says(live, api):
    """An interaction refusal over REST is ``{"error": {"code", "message"}}`` (PROTOCOL.md,
    "REST API"): reveal a draft poll, lock a slot of a draft design, reveal a quiz whose
    question is still open."""
    w = await World(live, api).build()
    await w.create("poll", {"id": "p", "question": "Q?", "kind": "text"})
    await w.create(
        "codesign",
        {
            "id": "d",
            "title": "D",
            "slots": [{"id": "s", "label": "S", "options": [{"id": "o", "label": "O"}]}],
        },
    )
    await w.create(
        "quiz",
        {
            "id": "z",
            "title": "Z",
            "questions": [{"id": "q", "text": "?", "options": OPTIONS[:2], "correct": "a"}],
        },
    )
    await w.act("z", "ask")
    for iid, body in (
        ("p", {"action": "reveal"}),
        ("d", {"action": "lock", "slot": "s"}),
        ("z", {"action": "reveal"}),
    ):
        await api.call(
            "POST",
            ACTIONS,
            room_id=ROOM,
            interaction_id=iid,
            expect=409,
            code="illegal_transition",
            body=body,
        )
