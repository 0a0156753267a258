"""Roles and refusals of interactions (issue 4, acceptance 5): every host operation
rejects viewer and screen tokens; every viewer command rejects invalid input with the
documented error (PROTOCOL.md, "Interactions" and "Errors").

Host operations: creating each kind and every action of every kind
(``HOST_ACTIONS``), over REST and over the WebSocket ``host`` op, and the check-in
export, are refused to viewers and screens (403 / ``forbidden``) with nothing changed,
while the same request from the host then goes through, so the refusal was the role's.

Viewer commands: for every command, table-driven invalid inputs get the documented
code, nothing changes (every interaction's view is as before), and the sender's
connection carries on (its next valid command is acknowledged).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from server.interactions.registry import Registry
from server.rooms.moderation import ACTIONS as MODERATION_ACTIONS
from tests.conftest import ADMIN, UNIT, Client, LiveServer

REGISTRY = Registry()
HOST_ACTIONS = {kind.name: kind.actions for kind in REGISTRY}
BUILT_IN = {kind.name for kind in REGISTRY if kind.builtin}
VIEWER_OPS = {op: REGISTRY.op(op)[0].name for op in REGISTRY.ops}  # type: ignore[index]
ROOM = "stage"
API = f"/api/v1/rooms/{ROOM}/interactions"
OPTIONS = [{"id": i, "label": f"Option {i.upper()}"} for i in "abcd"]
ERROR_FIELDS = {"type", "id", "code", "message"}
# Codes whose error carries the limit that was passed (PROTOCOL.md: "sometimes `limit`").
WITH_LIMIT = {"text_too_long", "too_few_picks", "too_many_picks"}


def spec_of(kind: str, iid: str) -> dict[str, Any]:
    """A valid spec of ``kind`` with id ``iid``."""
    if kind == "poll":
        return {"id": iid, "question": "Which?", "kind": "single", "options": OPTIONS[:3]}
    if kind == "quiz":
        question = {"options": OPTIONS[:2], "correct": "a", "time_limit_s": 600}
        return {
            "id": iid,
            "title": "Quiz",
            "questions": [
                {"id": "q1", "text": "First?", **question},
                {"id": "q2", "text": "Second?", **question},
            ],
        }
    if kind == "codesign":
        return {
            "id": iid,
            "title": "Design",
            "slots": [
                {
                    "id": "s1",
                    "label": "One",
                    "options": [{"id": "x", "label": "X", "stock": 1}, {"id": "y", "label": "Y"}],
                },
                {"id": "s2", "label": "Two", "options": [{"id": "u", "label": "U"}]},
            ],
        }
    if kind == "draw":
        return {"id": iid, "title": "Prize"}
    assert kind == "qa", kind
    return {"id": iid, "title": "Ask me", "max_chars": 20}


class Stage:
    """A room with a host (over REST) and helpers to set interactions up."""

    def __init__(self, live: LiveServer, http: httpx.AsyncClient) -> None:
        self.live = live
        self.http = http  # one client for every call: a new one per call is slow
        self.host_token = ""
        self.helpers = 0

    async def build(self) -> Stage:
        await self.live.create_room(ROOM)
        self.host_token = await self.mint("host", "host")
        return self

    async def mint(self, role: str, user_id: str) -> str:
        body = {"role": role, "user_id": user_id}
        r = await self.rest(ADMIN, "POST", f"/api/v1/rooms/{ROOM}/tokens", body)
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        return token

    async def rest(
        self,
        token: str,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return await self.http.request(method, path, json=body, params=query, headers=headers)

    async def create(self, kind: str, spec: dict[str, Any]) -> None:
        r = await self.rest(self.host_token, "POST", API, {"kind": kind, "spec": spec})
        assert r.status_code == 201, r.text

    async def act(self, iid: str, action: str, **fields: Any) -> dict[str, Any]:
        r = await self.rest(
            self.host_token, "POST", f"{API}/{iid}/actions", {"action": action, **fields}
        )
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    async def views(self) -> dict[str, Any]:
        """Every interaction's host view (hidden parts included), by id."""
        r = await self.rest(ADMIN, "GET", API)
        assert r.status_code == 200, r.text
        return {view["id"]: view for view in r.json()["interactions"]}

    async def member(self, role: str = "viewer", user_id: str | None = None) -> Client:
        """A new connection joined to the room with a fresh token of ``role``."""
        self.helpers += 1
        user_id = user_id or f"{role}-{self.helpers}"
        client = await self.live.connect()
        await client.join(ROOM, token=await self.mint(role, user_id))
        return client

    async def question_ids(self, iid: str) -> dict[str, str]:
        """text -> id of the questions of a Q&A board (hidden ones included)."""
        return {q["text"]: q["id"] for q in (await self.views())[iid]["questions"]}


@pytest.fixture
async def stage(live: LiveServer) -> AsyncIterator[Stage]:
    async with httpx.AsyncClient(base_url=live.base, timeout=10 * UNIT) as http:
        yield await Stage(live, http).build()


async def acked(client: Client, op: str, **fields: Any) -> dict[str, Any]:
    reply = await client.command(op, **fields)
    assert reply["type"] == "ack", reply
    return reply


def assert_api_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body


def assert_refused(reply: dict[str, Any], code: str, cid: int) -> None:
    """The documented ``error``: its code, the command's id, a message."""
    assert reply.get("type") == "error", reply
    assert reply["code"] == code, reply
    assert type(reply["id"]) is int and reply["id"] == cid, reply
    assert isinstance(reply["message"], str) and reply["message"], reply


def assert_error_fields(reply: dict[str, Any]) -> None:
    """Only the fields PROTOCOL.md gives an ``error`` ("Server messages": `id`, `code`,
    `message`, and the code's detail fields): ``limit`` where a limit was passed."""
    extra = {"limit"} if reply["code"] in WITH_LIMIT else set()
    # PROTOCOL.md, "Server messages": detail fields of illegal_transition and out_of_stock
    extra |= {
        "illegal_transition": {"phase"},
        "out_of_stock": {"field"},
        "muted": {"retry_after_ms"},
    }.get(reply["code"], set())
    assert set(reply) == ERROR_FIELDS | extra, reply
    if "limit" in extra:
        assert type(reply["limit"]) is int, reply


async def carries_on(client: Client, role: str, n: int) -> None:
    """The connection still answers: a ping, and for a viewer a vote that is acked."""
    pong = await client.command("ping")
    assert pong == {"type": "pong", "id": client.next_id}, pong
    if role == "viewer":
        reply = await acked(client, "vote", interaction="single", key=f"after-{n}", option="b")
        assert reply["duplicate"] is False and type(reply["version"]) is int, reply


# --- host operations ---------------------------------------------------------------------


@dataclass
class HostRequest:
    """One host operation: the REST request, and the WebSocket ``host`` command (if any)."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    query: dict[str, str] | None = None
    ws: dict[str, Any] | None = None
    ok: int = 200


Prepare = Callable[[Stage], Awaitable[HostRequest]]
PREPARE: dict[tuple[str, str], Prepare] = {}


def prepares(kind: str, action: str) -> Callable[[Prepare], Prepare]:
    def register(fn: Prepare) -> Prepare:
        PREPARE[(kind, action)] = fn
        return fn

    return register


def action(iid: str, name: str, **fields: Any) -> HostRequest:
    body = {"action": name, **fields}
    return HostRequest("POST", f"{API}/{iid}/actions", body, ws={**body, "interaction": iid})


for _kind in ("poll", "quiz", "codesign", "draw", "qa"):

    def _create(kind: str) -> Prepare:
        async def prepare(stage: Stage) -> HostRequest:
            body = {"kind": kind, "spec": spec_of(kind, "new")}
            return HostRequest("POST", API, body, ws={"action": "create", **body}, ok=201)

        return prepare

    PREPARE[("create", _kind)] = _create(_kind)


@prepares("poll", "open")
async def _poll_open(stage: Stage) -> HostRequest:
    await stage.create("poll", spec_of("poll", "p"))
    return action("p", "open")


@prepares("poll", "close")
async def _poll_close(stage: Stage) -> HostRequest:
    await stage.create("poll", spec_of("poll", "p"))
    await stage.act("p", "open")
    return action("p", "close")


@prepares("poll", "reveal")
async def _poll_reveal(stage: Stage) -> HostRequest:
    await stage.create("poll", spec_of("poll", "p"))
    await stage.act("p", "open")
    await stage.act("p", "close")
    return action("p", "reveal")


@prepares("quiz", "ask")
async def _quiz_ask(stage: Stage) -> HostRequest:
    await stage.create("quiz", spec_of("quiz", "z"))
    return action("z", "ask", question="q1")


@prepares("quiz", "close")
async def _quiz_close(stage: Stage) -> HostRequest:
    await stage.create("quiz", spec_of("quiz", "z"))
    await stage.act("z", "ask", question="q1")
    return action("z", "close")


@prepares("quiz", "reveal")
async def _quiz_reveal(stage: Stage) -> HostRequest:
    await stage.create("quiz", spec_of("quiz", "z"))
    await stage.act("z", "ask", question="q1")
    await stage.act("z", "close")
    return action("z", "reveal")


@prepares("quiz", "finish")
async def _quiz_finish(stage: Stage) -> HostRequest:
    await stage.create("quiz", spec_of("quiz", "z"))
    await stage.act("z", "ask", question="q1")
    return action("z", "finish")


@prepares("codesign", "open")
async def _design_open(stage: Stage) -> HostRequest:
    await stage.create("codesign", spec_of("codesign", "d"))
    return action("d", "open")


@prepares("codesign", "lock")
async def _design_lock(stage: Stage) -> HostRequest:
    await stage.create("codesign", spec_of("codesign", "d"))
    await stage.act("d", "open")
    return action("d", "lock", slot="s1")


@prepares("codesign", "lock_all")
async def _design_lock_all(stage: Stage) -> HostRequest:
    await stage.create("codesign", spec_of("codesign", "d"))
    await stage.act("d", "open")
    return action("d", "lock_all")


@prepares("codesign", "reveal")
async def _design_reveal(stage: Stage) -> HostRequest:
    await stage.create("codesign", spec_of("codesign", "d"))
    await stage.act("d", "open")
    await stage.act("d", "lock_all")
    return action("d", "reveal")


@prepares("draw", "run")
async def _draw_run(stage: Stage) -> HostRequest:
    await stage.create("draw", spec_of("draw", "w"))
    await acked(await stage.member(), "enter", interaction="w", key="k1")
    return action("w", "run")


async def _claim_code(stage: Stage) -> str:
    """Draw ``w`` run with one entrant; the winner's claim code."""
    await stage.create("draw", spec_of("draw", "w"))
    await acked(await stage.member(user_id="lucky"), "enter", interaction="w", key="k1")
    await stage.act("w", "run")
    token = await stage.mint("viewer", "lucky")
    r = await stage.rest(token, "GET", f"{API}/w/mine")
    code: str = r.json()["claim"]["code"]
    return code


@prepares("draw", "claim")
async def _draw_claim(stage: Stage) -> HostRequest:
    return action("w", "claim", code=await _claim_code(stage))


@prepares("draw", "lookup")
async def _draw_lookup(stage: Stage) -> HostRequest:
    return action("w", "lookup", code=await _claim_code(stage))


async def _board_with_question(stage: Stage) -> str:
    await stage.create("qa", spec_of("qa", "b"))
    await stage.act("b", "open")
    await acked(await stage.member(), "ask", interaction="b", key="k1", text="When?")
    return (await stage.question_ids("b"))["When?"]


@prepares("qa", "open")
async def _qa_open(stage: Stage) -> HostRequest:
    await stage.create("qa", spec_of("qa", "b"))
    return action("b", "open")


@prepares("qa", "close")
async def _qa_close(stage: Stage) -> HostRequest:
    await stage.create("qa", spec_of("qa", "b"))
    await stage.act("b", "open")
    return action("b", "close")


@prepares("qa", "answer")
async def _qa_answer(stage: Stage) -> HostRequest:
    return action("b", "answer", question=await _board_with_question(stage), text="Now.")


@prepares("qa", "pin")
async def _qa_pin(stage: Stage) -> HostRequest:
    return action("b", "pin", question=await _board_with_question(stage))


@prepares("qa", "unpin")
async def _qa_unpin(stage: Stage) -> HostRequest:
    question = await _board_with_question(stage)
    await stage.act("b", "pin", question=question)
    return action("b", "unpin", question=question)


@prepares("qa", "hide")
async def _qa_hide(stage: Stage) -> HostRequest:
    return action("b", "hide", question=await _board_with_question(stage))


@prepares("qa", "unhide")
async def _qa_unhide(stage: Stage) -> HostRequest:
    question = await _board_with_question(stage)
    await stage.act("b", "hide", question=question)
    return action("b", "unhide", question=question)


@prepares("checkin", "open")
async def _checkin_open(stage: Stage) -> HostRequest:
    # Every room's check-in starts open; `open` is then a no-op the host may send.
    return action("checkin", "open")


@prepares("checkin", "close")
async def _checkin_close(stage: Stage) -> HostRequest:
    await acked(await stage.member(), "checkin", key="k1")
    return action("checkin", "close")


async def _export(stage: Stage, query: dict[str, str] | None) -> HostRequest:
    await acked(await stage.member(), "checkin", key="k1")
    return HostRequest("GET", f"{API}/checkin/export", query=query)


PREPARE[("export", "json")] = lambda stage: _export(stage, None)
PREPARE[("export", "csv")] = lambda stage: _export(stage, {"format": "csv"})


@prepares("reactions", "open")
async def _reactions_open(stage: Stage) -> HostRequest:
    return action("reactions", "open")


@prepares("reactions", "close")
async def _reactions_close(stage: Stage) -> HostRequest:
    await acked(await stage.member(), "react", emoji="❤️", count=3)
    return action("reactions", "close")


@prepares("wall", "open")
async def _wall_open(stage: Stage) -> HostRequest:
    return action("wall", "open")


@prepares("wall", "close")
async def _wall_close(stage: Stage) -> HostRequest:
    return action("wall", "close")


async def _posted(stage: Stage, *, approved: bool = False) -> str:
    await acked(await stage.member(), "post", key="k1", text="Hello wall")
    [post] = (await stage.views())["wall"]["queue"]
    if approved:
        await stage.act("wall", "approve", post=post["id"])
    return str(post["id"])


@prepares("wall", "approve")
async def _wall_approve(stage: Stage) -> HostRequest:
    return action("wall", "approve", post=await _posted(stage))


@prepares("wall", "reject")
async def _wall_reject(stage: Stage) -> HostRequest:
    return action("wall", "reject", post=await _posted(stage))


@prepares("wall", "pin")
async def _wall_pin(stage: Stage) -> HostRequest:
    return action("wall", "pin", post=await _posted(stage, approved=True))


@prepares("wall", "unpin")
async def _wall_unpin(stage: Stage) -> HostRequest:
    post = await _posted(stage, approved=True)
    await stage.act("wall", "pin", post=post)
    return action("wall", "unpin", post=post)


def moderation(name: str, **fields: Any) -> HostRequest:
    body = {"action": name, **fields}
    return HostRequest("POST", f"/api/v1/rooms/{ROOM}/moderation", body, ws=body)


PREPARE[("moderation", "retract")] = lambda stage: _ready(moderation("retract", event="n.1"))
PREPARE[("moderation", "mute")] = lambda stage: _ready(moderation("mute", user="v-9"))
PREPARE[("moderation", "unmute")] = lambda stage: _ready(moderation("unmute", user="v-9"))
PREPARE[("moderation", "ban")] = lambda stage: _ready(moderation("ban", user="v-9"))
PREPARE[("moderation", "unban")] = lambda stage: _ready(moderation("unban", user="v-9"))
PREPARE[("moderation", "list")] = lambda stage: _ready(
    HostRequest("GET", f"/api/v1/rooms/{ROOM}/moderation")
)
PREPARE[("stats", "get")] = lambda stage: _ready(HostRequest("GET", f"/api/v1/rooms/{ROOM}/stats"))


async def _ready(request: HostRequest) -> HostRequest:
    return request


def test_every_host_operation_is_covered():
    every = {(kind, name) for kind, names in HOST_ACTIONS.items() for name in names}
    creatable = {("create", kind) for kind in HOST_ACTIONS if kind not in BUILT_IN}
    moderating = {("moderation", name) for name in MODERATION_ACTIONS} | {("moderation", "list")}
    reading = {("export", "json"), ("export", "csv"), ("stats", "get")}
    assert set(PREPARE) == every | creatable | moderating | reading


@pytest.mark.parametrize("operation", sorted(PREPARE), ids=lambda op: f"{op[0]}-{op[1]}")
async def test_host_operation_is_refused_to_viewers_and_screens(live, stage, operation):
    request = await PREPARE[operation](stage)
    before = await stage.views()
    for role in ("viewer", "screen"):
        token = await stage.mint(role, f"{role}-refused")
        r = await stage.rest(token, request.method, request.path, request.body, request.query)
        assert_api_error(r, 403, "forbidden")
        assert await stage.views() == before, f"a {role}'s refused REST call changed something"
        if request.ws is None:
            continue  # no WebSocket form (export)
        client = await live.connect()
        await client.join(ROOM, token=token)
        reply = await client.command("host", **request.ws)
        assert_refused(reply, "forbidden", client.next_id)
        assert_error_fields(reply)
        assert await stage.views() == before, f"a {role}'s refused host op changed something"
        await still_answers(client, role)
    # The very same request from the host goes through: the refusals were the roles'.
    r = await stage.rest(
        stage.host_token, request.method, request.path, request.body, request.query
    )
    assert r.status_code == request.ok, r.text


async def still_answers(client: Client, role: str) -> None:
    """A ping, and for a viewer a danmaku that is acked (screens send no danmaku)."""
    pong = await client.command("ping")
    assert pong == {"type": "pong", "id": client.next_id}, pong
    if role == "viewer":
        reply = await client.command("danmaku", text="still here")
        assert reply["type"] == "ack", reply


# --- viewer commands: the arena -------------------------------------------------------------


async def arena(stage: Stage) -> dict[str, str]:
    """Interactions in every state the refusals need; returns Q&A question ids by name.

    Polls ``single`` (a, b, c), ``multiple`` and ``ranked`` (a..d, 2..3 picks), ``rating``
    (scale 5), ``text`` (10 characters), all open; ``draft-poll`` and ``closed-poll``.
    Quiz ``quiz`` with q1 asked (600 s) and q2 not. Co-design ``design`` open, slot s1
    (x with stock 1, y), slot s2 locked; ``draft-design``. Draws ``draw`` (entries),
    ``presence-draw`` and ``drawn``. Q&A ``board`` (open, 20 characters) with a visible
    and a hidden question, and ``closed-board`` with one question.
    """
    polls = {
        "single": {"kind": "single", "options": OPTIONS[:3]},
        "multiple": {"kind": "multiple", "options": OPTIONS, "min_picks": 2, "max_picks": 3},
        "ranked": {"kind": "ranked", "options": OPTIONS, "min_picks": 2, "max_picks": 3},
        "rating": {"kind": "rating", "scale": 5},
        "text": {"kind": "text", "max_text_chars": 10},
        "draft-poll": {"kind": "single", "options": OPTIONS[:2]},
        "closed-poll": {"kind": "single", "options": OPTIONS[:2]},
    }
    for pid, extra in polls.items():
        await stage.create("poll", {"id": pid, "question": f"{pid}?", **extra})
        if pid != "draft-poll":
            await stage.act(pid, "open")
    await stage.act("closed-poll", "close")
    await stage.create("quiz", spec_of("quiz", "quiz"))
    await stage.act("quiz", "ask", question="q1")
    design = spec_of("codesign", "design")
    design["slots"][1]["options"].append({"id": "v", "label": "V"})
    await stage.create("codesign", design)
    await stage.act("design", "open")
    await stage.act("design", "lock", slot="s2")
    await stage.create("codesign", spec_of("codesign", "draft-design"))
    await stage.create("draw", spec_of("draw", "draw"))
    await stage.create("draw", {**spec_of("draw", "presence-draw"), "source": "presence"})
    await stage.create("draw", spec_of("draw", "drawn"))
    await stage.create("qa", spec_of("qa", "board"))
    await stage.create("qa", spec_of("qa", "closed-board"))
    await stage.act("board", "open")
    await stage.act("closed-board", "open")
    helper = await stage.member(user_id="helper")
    await acked(helper, "enter", interaction="drawn", key="k1")
    await acked(helper, "ask", interaction="board", key="k1", text="Visible?")
    await acked(helper, "ask", interaction="board", key="k2", text="Hidden?")
    await acked(helper, "ask", interaction="closed-board", key="k1", text="Late?")
    await stage.act("drawn", "run")
    await stage.act("closed-board", "close")
    board = await stage.question_ids("board")
    await stage.act("board", "hide", question=board["Hidden?"])
    late = await stage.question_ids("closed-board")
    return {"$visible": board["Visible?"], "$hidden": board["Hidden?"], "$late": late["Late?"]}


# --- viewer commands: the table --------------------------------------------------------------

NO_KEY = object()
Pre = Callable[[Stage, Client, dict[str, str]], Awaitable[None]]


@dataclass
class Case:
    name: str
    op: str
    fields: dict[str, Any]
    code: str
    key: Any = "k-refused"
    role: str = "viewer"
    pre: Pre | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# A valid command of each op (on the arena), and an interaction of another kind.
VALID: dict[str, dict[str, Any]] = {
    "vote": {"interaction": "single", "option": "a"},
    "answer": {"interaction": "quiz", "question": "q1", "option": "a"},
    "pick": {"interaction": "design", "slot": "s1", "option": "y"},
    "unpick": {"interaction": "design", "slot": "s1"},
    "enter": {"interaction": "draw"},
    "ask": {"interaction": "board", "text": "Why?"},
    "upvote": {"interaction": "board", "question": "$visible"},
    "unvote": {"interaction": "board", "question": "$visible"},
}
OTHER_KIND = {
    "vote": "design",
    "answer": "single",
    "pick": "board",
    "unpick": "quiz",
    "enter": "checkin",
    "ask": "drawn",
    "upvote": "quiz",
    "unvote": "rating",
}


def common(op: str) -> list[Case]:
    """What every interaction command refuses alike: keys, interaction ids, kinds, screens."""
    valid = VALID[op]
    rest = {k: v for k, v in valid.items() if k != "interaction"}
    return [
        Case("no-key", op, valid, "invalid_field", key=NO_KEY),
        Case("key-with-space", op, valid, "invalid_field", key="has space"),
        Case("key-65-chars", op, valid, "invalid_field", key="k" * 65),
        Case("key-empty", op, valid, "invalid_field", key=""),
        Case("key-not-a-string", op, valid, "invalid_field", key=5),
        Case("no-interaction", op, rest, "invalid_field"),
        Case("interaction-not-an-id", op, {**valid, "interaction": "a/b"}, "invalid_field"),
        Case("interaction-not-a-string", op, {**valid, "interaction": 5}, "invalid_field"),
        Case("unknown-interaction", op, {**valid, "interaction": "nope"}, "unknown_target"),
        Case("other-kind", op, {**valid, "interaction": OTHER_KIND[op]}, "unknown_target"),
        Case("screen", op, valid, "forbidden", role="screen"),
    ]


async def _take_stock(stage: Stage, client: Client, ids: dict[str, str]) -> None:
    other = await stage.member()
    await acked(other, "pick", interaction="design", key="k1", slot="s1", option="x")


async def _answered(stage: Stage, client: Client, ids: dict[str, str]) -> None:
    fields = {"interaction": "quiz", "key": "first", "question": "q1", "option": "b"}
    await acked(client, "answer", **fields)
    assert (await acked(client, "answer", **fields))["duplicate"] is True  # a retry is acked


async def _upvoted(stage: Stage, client: Client, ids: dict[str, str]) -> None:
    fields = {"interaction": "board", "key": "first", "question": ids["$visible"]}
    await acked(client, "upvote", **fields)
    assert (await acked(client, "upvote", **fields))["duplicate"] is True


async def _entered(stage: Stage, client: Client, ids: dict[str, str]) -> None:
    await acked(client, "enter", interaction="draw", key="first")
    assert (await acked(client, "enter", interaction="draw", key="first"))["duplicate"] is True


async def _checkin_closed(stage: Stage, client: Client, ids: dict[str, str]) -> None:
    await stage.act("checkin", "close")


async def _wall_closed(stage: Stage, client: Client, ids: dict[str, str]) -> None:
    await stage.act("wall", "close")


async def _reactions_closed(stage: Stage, client: Client, ids: dict[str, str]) -> None:
    await stage.act("reactions", "close")


async def _muted(stage: Stage, client: Client, ids: dict[str, str]) -> None:
    r = await stage.rest(
        stage.host_token,
        "POST",
        f"/api/v1/rooms/{ROOM}/moderation",
        # the viewer's id is its pseudonym (PROTOCOL.md, "Privacy")
        {"action": "mute", "user": stage.live.viewer_id("viewer-muted"), "duration_s": 60},
    )
    assert r.status_code == 200, r.text


async def _posted_once(stage: Stage, client: Client, ids: dict[str, str]) -> None:
    first = await acked(client, "post", key="first", text="Once")
    again = await acked(client, "post", key="first", text="Once")
    assert again["duplicate"] is True and again["post"] == first["post"], (first, again)


def vote(poll: str, **ballot: Any) -> dict[str, Any]:
    return {"interaction": poll, **ballot}


CASES: dict[str, list[Case]] = {
    "vote-single": [
        *common("vote"),
        Case("checkin-is-no-poll", "vote", vote("checkin", option="a"), "unknown_target"),
        Case("no-option", "vote", vote("single"), "invalid_vote"),
        Case("option-not-a-string", "vote", vote("single", option=1), "invalid_vote"),
        Case("options-on-single", "vote", vote("single", options=["a"]), "invalid_vote"),
        Case("unknown-option", "vote", vote("single", option="z"), "unknown_option"),
        Case("draft", "vote", vote("draft-poll", option="a"), "not_open"),
        Case("closed", "vote", vote("closed-poll", option="a"), "not_open"),
    ],
    "vote-multiple": [
        Case("no-options", "vote", vote("multiple"), "invalid_vote"),
        Case("options-not-a-list", "vote", vote("multiple", options="a"), "invalid_vote"),
        Case("option-on-multiple", "vote", vote("multiple", option="a"), "invalid_vote"),
        Case("twice", "vote", vote("multiple", options=["a", "a"]), "invalid_vote"),
        Case("too-few", "vote", vote("multiple", options=["a"]), "too_few_picks"),
        Case("none", "vote", vote("multiple", options=[]), "too_few_picks"),
        Case("too-many", "vote", vote("multiple", options=list("abcd")), "too_many_picks"),
        Case("unknown", "vote", vote("multiple", options=["a", "z"]), "unknown_option"),
        Case("not-ids", "vote", vote("multiple", options=["a", 2]), "invalid_vote"),
    ],
    "vote-ranked": [
        Case("no-ranking", "vote", vote("ranked"), "invalid_vote"),
        Case("ranking-not-a-list", "vote", vote("ranked", ranking="ab"), "invalid_vote"),
        Case("twice", "vote", vote("ranked", ranking=["a", "b", "a"]), "invalid_vote"),
        Case("empty", "vote", vote("ranked", ranking=[]), "too_few_picks"),
        Case("too-few", "vote", vote("ranked", ranking=["a"]), "too_few_picks"),
        Case("too-many", "vote", vote("ranked", ranking=list("dcba")), "too_many_picks"),
        Case("unknown", "vote", vote("ranked", ranking=["a", "z"]), "unknown_option"),
    ],
    "vote-rating": [
        Case("no-rating", "vote", vote("rating"), "invalid_vote"),
        Case("zero", "vote", vote("rating", rating=0), "invalid_vote"),
        Case("over-the-scale", "vote", vote("rating", rating=6), "invalid_vote"),
        Case("negative", "vote", vote("rating", rating=-1), "invalid_vote"),
        Case("fraction", "vote", vote("rating", rating=2.5), "invalid_vote"),
        Case("string", "vote", vote("rating", rating="3"), "invalid_vote"),
        Case("bool", "vote", vote("rating", rating=True), "invalid_vote"),
    ],
    "vote-text": [
        Case("no-text", "vote", vote("text"), "invalid_vote"),
        Case("text-not-a-string", "vote", vote("text", text=5), "invalid_vote"),
        Case("blank", "vote", vote("text", text="   "), "empty_text"),
        Case("only-format-chars", "vote", vote("text", text="\u202e\u200b\n"), "empty_text"),
        Case("too-long", "vote", vote("text", text="x" * 11), "text_too_long", extra={"limit": 10}),
    ],
    "answer": [
        *common("answer"),
        Case("no-question", "answer", {"interaction": "quiz", "option": "a"}, "invalid_vote"),
        Case("no-option", "answer", {"interaction": "quiz", "question": "q1"}, "invalid_vote"),
        Case(
            "unknown-question",
            "answer",
            {"interaction": "quiz", "question": "nope", "option": "a"},
            "unknown_target",
        ),
        Case(
            "question-not-asked",
            "answer",
            {"interaction": "quiz", "question": "q2", "option": "a"},
            "not_open",
        ),
        Case(
            "unknown-option",
            "answer",
            {"interaction": "quiz", "question": "q1", "option": "z"},
            "unknown_option",
        ),
        Case("second-answer", "answer", VALID["answer"], "already_done", pre=_answered),
    ],
    "pick": [
        *common("pick"),
        Case("no-slot", "pick", {"interaction": "design", "option": "y"}, "invalid_vote"),
        Case("no-option", "pick", {"interaction": "design", "slot": "s1"}, "invalid_vote"),
        Case(
            "unknown-slot",
            "pick",
            {"interaction": "design", "slot": "nope", "option": "y"},
            "unknown_target",
        ),
        Case(
            "locked-slot",
            "pick",
            {"interaction": "design", "slot": "s2", "option": "u"},
            "not_open",
        ),
        Case(
            "draft-design",
            "pick",
            {"interaction": "draft-design", "slot": "s1", "option": "y"},
            "not_open",
        ),
        Case(
            "unknown-option",
            "pick",
            {"interaction": "design", "slot": "s1", "option": "z"},
            "unknown_option",
        ),
        Case(
            "stock-taken",
            "pick",
            {"interaction": "design", "slot": "s1", "option": "x"},
            "out_of_stock",
            pre=_take_stock,
        ),
    ],
    "unpick": [
        *common("unpick"),
        Case("no-slot", "unpick", {"interaction": "design"}, "invalid_vote"),
        Case("unknown-slot", "unpick", {"interaction": "design", "slot": "z"}, "unknown_target"),
        Case("locked-slot", "unpick", {"interaction": "design", "slot": "s2"}, "not_open"),
        Case("draft", "unpick", {"interaction": "draft-design", "slot": "s1"}, "not_open"),
    ],
    "enter": [
        *common("enter"),
        Case("presence-draw", "enter", {"interaction": "presence-draw"}, "not_eligible"),
        Case("drawn", "enter", {"interaction": "drawn"}, "not_open"),
        Case("second-entry", "enter", VALID["enter"], "already_done", pre=_entered),
    ],
    "ask": [
        *common("ask"),
        Case("no-text", "ask", {"interaction": "board"}, "invalid_field"),
        Case("text-not-a-string", "ask", {"interaction": "board", "text": 5}, "invalid_field"),
        Case("blank", "ask", {"interaction": "board", "text": " \t "}, "empty_text"),
        Case(
            "too-long",
            "ask",
            {"interaction": "board", "text": "x" * 21},
            "text_too_long",
            extra={"limit": 20},
        ),
        Case("closed-board", "ask", {"interaction": "closed-board", "text": "Hi?"}, "not_open"),
    ],
    "upvote": [
        *common("upvote"),
        Case("no-question", "upvote", {"interaction": "board"}, "invalid_field"),
        Case(
            "unknown-question",
            "upvote",
            {"interaction": "board", "question": "nope"},
            "unknown_target",
        ),
        Case(
            "hidden-question",
            "upvote",
            {"interaction": "board", "question": "$hidden"},
            "unknown_target",
        ),
        Case(
            "closed-board",
            "upvote",
            {"interaction": "closed-board", "question": "$late"},
            "not_open",
        ),
        Case("second-upvote", "upvote", VALID["upvote"], "already_done", pre=_upvoted),
    ],
    "unvote": [
        *common("unvote"),
        Case("no-question", "unvote", {"interaction": "board"}, "invalid_field"),
        Case(
            "unknown-question",
            "unvote",
            {"interaction": "board", "question": "nope"},
            "unknown_target",
        ),
        Case(
            "hidden-question",
            "unvote",
            {"interaction": "board", "question": "$hidden"},
            "unknown_target",
        ),
        Case(
            "closed-board",
            "unvote",
            {"interaction": "closed-board", "question": "$late"},
            "not_open",
        ),
    ],
    "checkin": [
        Case("no-key", "checkin", {}, "invalid_field", key=NO_KEY),
        Case("key-with-space", "checkin", {}, "invalid_field", key="has space"),
        Case("key-65-chars", "checkin", {}, "invalid_field", key="k" * 65),
        Case("key-not-a-string", "checkin", {}, "invalid_field", key=["k"]),
        Case("screen", "checkin", {}, "forbidden", role="screen"),
        # Last: it closes the room's check-in for the cases after it.
        Case("closed", "checkin", {}, "not_open", pre=_checkin_closed),
    ],
    "post": [
        Case("no-key", "post", {"text": "Hi"}, "invalid_field", key=NO_KEY),
        Case("key-with-space", "post", {"text": "Hi"}, "invalid_field", key="has space"),
        Case("no-text", "post", {}, "invalid_field"),
        Case("text-not-a-string", "post", {"text": ["Hi"]}, "invalid_field"),
        Case("blank", "post", {"text": "\n \u200b"}, "empty_text"),
        Case("too-long", "post", {"text": "x" * 141}, "text_too_long", extra={"limit": 140}),
        Case("screen", "post", {"text": "Hi"}, "forbidden", role="screen"),
        # A retry with the same key is one post; another key on the same text is fine.
        Case("muted", "post", {"text": "Hi"}, "muted", pre=_muted),
        Case("retried", "post", {"text": "x" * 141}, "text_too_long", pre=_posted_once),
        # Last: it closes the room's wall for the cases after it.
        Case("closed", "post", {"text": "Hi"}, "not_open", pre=_wall_closed),
    ],
    "react": [
        Case("no-emoji", "react", {}, "unknown_option", key=NO_KEY),
        Case("unknown-emoji", "react", {"emoji": "💩"}, "unknown_option", key=NO_KEY),
        Case("emoji-not-a-string", "react", {"emoji": 1}, "unknown_option", key=NO_KEY),
        Case("count-zero", "react", {"emoji": "❤️", "count": 0}, "invalid_field", key=NO_KEY),
        Case("count-51", "react", {"emoji": "❤️", "count": 51}, "invalid_field", key=NO_KEY),
        Case("count-fraction", "react", {"emoji": "❤️", "count": 1.5}, "invalid_field", key=NO_KEY),
        Case("screen", "react", {"emoji": "❤️"}, "forbidden", key=NO_KEY, role="screen"),
        # Last: it closes the room's reactions for the cases after it.
        Case("closed", "react", {"emoji": "❤️"}, "not_open", key=NO_KEY, pre=_reactions_closed),
    ],
}


def test_every_viewer_command_has_cases():
    ops = {case.op for cases in CASES.values() for case in cases}
    assert ops == set(VIEWER_OPS)
    for op in VIEWER_OPS:
        if REGISTRY.op(op)[1].targets == "interaction":  # type: ignore[index]
            names = {c.name for cases in CASES.values() for c in cases if c.op == op}
            assert {"no-key", "no-interaction", "unknown-interaction", "other-kind"} <= names, op


def substitute(value: Any, ids: dict[str, str]) -> Any:
    return ids.get(value, value) if isinstance(value, str) else value


@pytest.mark.parametrize("group", sorted(CASES))
async def test_viewer_command_refusals(stage, group):
    """Each case on a fresh connection of a fresh viewer (or screen): the documented
    error, nothing changed, and the connection carries on. Every case runs; the
    failures are reported together."""
    ids = await arena(stage)
    failures = []
    for n, case in enumerate(CASES[group]):
        try:
            await run_case(stage, ids, case, n)
        except AssertionError as exc:
            failures.append(f"{case.op} {case.name}: {exc}")
    assert not failures, f"{len(failures)} of {len(CASES[group])} cases failed:\n" + "\n".join(
        failures
    )


async def run_case(stage: Stage, ids: dict[str, str], case: Case, n: int) -> None:
    client = await stage.member(case.role, user_id=f"{case.role}-{case.name}")
    if case.pre is not None:
        await case.pre(stage, client, ids)
    fields = {k: substitute(v, ids) for k, v in case.fields.items()}
    if case.key is not NO_KEY:
        fields["key"] = case.key
    before = await stage.views()
    reply = await client.command(case.op, **fields)
    assert_refused(reply, case.code, client.next_id)
    for name, value in case.extra.items():
        assert reply.get(name) == value, reply
    assert await stage.views() == before, "the refused command changed something"
    await carries_on(client, case.role, n)
    assert_error_fields(reply)
