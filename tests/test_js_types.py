"""The JS client's TypeScript declarations and its package (issue 19).

- clients/js/protocol.d.ts is what ``python -m server.js_types`` makes now, and the
  modules' .d.ts are what tsc emits from their JSDoc now (no drift);
- ``tsc --noEmit`` accepts the declarations and types-test/usage.ts, which touches every
  event and every kind's view, and refuses types-test/wrong.ts with the expected errors;
- every protocol vector and real views of every kind type-check against the declared
  types: views the kinds make in each state their actions reach, and views a live node
  sends to staff and to a viewer once votes, answers, picks, entries, questions and posts
  came in; a view with a field the types lack does not;
- package.json names nothing that does not exist, nor do the client's README and
  changelog; ``npm pack`` makes a tarball that installs into a scratch project without a
  registry, type-checks as a dependency, and works from Node and Chromium against a live
  node.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from server import js_types
from server.interactions.kind import AUDIENCES, UNCHANGED, Context, Definition, Kind
from server.interactions.registry import Registry
from tests.browser_kit import (
    CHROMIUM_FLAGS,
    WAIT_MS,
    _chromium,
    start_node,
    stop_node,
    viewer_ws,
)
from tests.conftest import UNIT, free_port, require_tool

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "clients" / "js"
VECTORS = ROOT / "protocol" / "vectors" / "messages.json"
MODULES = ("hudong", "codec", "codes", "backoff", "room")


def _require(tool: str) -> str:
    return require_tool(tool, "the JS type and package tests")


@functools.cache
def _npm_ready() -> tuple[str, str]:
    npm, node = _require("npm"), _require("node")
    if not (JS / "node_modules" / "typescript").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, timeout=300 * UNIT
        )
    return npm, node


def tsc(*args: str, cwd: Path = JS) -> subprocess.CompletedProcess[str]:
    _, node = _npm_ready()
    return subprocess.run(
        [node, str(JS / "node_modules" / "typescript" / "bin" / "tsc"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300 * UNIT,
    )


STRICT = ["--noEmit", "--strict", "--target", "es2022", "--module", "nodenext"]
STRICT += ["--moduleResolution", "nodenext", "--lib", "es2022,dom"]


# --- no drift -------------------------------------------------------------------------


def test_protocol_declarations_are_current():
    assert (JS / "protocol.d.ts").read_text("utf-8") == js_types.render(), (
        f"clients/js/protocol.d.ts is stale: run `{js_types.COMMAND}`"
    )


def test_module_declarations_are_what_tsc_emits_from_the_jsdoc():
    _, node = _npm_ready()
    done = subprocess.run(
        [node, "scripts/emit-types.mjs", "--check"],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=300 * UNIT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_client_speaks_the_server_s_protocol_version():
    from protocol.messages import PROTOCOL_VERSION

    source = (JS / "hudong.js").read_text("utf-8")
    assert f'export const PROTOCOL_VERSION = "{PROTOCOL_VERSION}";' in source
    assert f"export type ProtocolVersion = {json.dumps(PROTOCOL_VERSION)};" in js_types.render()


def test_every_kind_declares_its_view():
    undeclared = [k.name for k in Registry() if k.view_ts == Kind.view_ts]
    assert not undeclared, f"kinds without view_ts: {undeclared}"


# --- tsc over the declarations and the usage ----------------------------------------------


def _declared_events() -> list[str]:
    text = (JS / "hudong.d.ts").read_text("utf-8")
    body = text[text.index("export type BaseEvents = {") : text.index("export type HudongEvents")]
    return re.findall(r"^    (\w+): \(", body, re.M)


def test_usage_touches_every_event_and_every_view():
    usage = (JS / "types-test" / "usage.ts").read_text("utf-8")
    events = _declared_events()
    assert {"state", "hello", "danmaku", "close", "drawWon"} <= set(events), events
    names = [*events, *(k.name for k in Registry())]
    missing = [name for name in names if f'client.on("{name}"' not in usage]
    assert not missing, f"types-test/usage.ts does not listen to {missing}"


def test_tsc_accepts_the_declarations_and_the_usage():
    done = tsc("-p", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_tsc_refuses_the_wrong_usage():
    done = tsc(*STRICT, "types-test/wrong.ts")
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    for expected in (
        """Type '"xml"' is not assignable to type '"json" | "msgpack" | undefined'""",
        "Property 'txt' does not exist on type 'DanmakuEvent'",
        "Property 'winner' does not exist on type 'PollResults'",
        """Argument of type '"danmkau"' is not assignable""",
        "Type 'number' is not assignable to type 'string'",
        """Type '"pie"' is not assignable to type '""",
    ):
        assert expected in out, f"{expected!r} not in:\n{out}"
    assert len(re.findall(r"error TS\d+", out)) == 6, out


# --- the vectors and real views against the declared types --------------------------------


def sample_views() -> Iterator[tuple[str, dict[str, Any]]]:
    """Views of every kind as the kinds make them: its example (or built-in) instance in
    its first state, then after each of its actions that applies with no fields, for
    every audience."""
    for kind in Registry():
        if kind.example is not None:
            spec = kind.parse_spec(dict(kind.example))
        elif kind.builtin is not None:
            spec = kind.default_spec()
        else:
            continue
        now = 1_795_500_000.0
        d = Definition("i1", kind.name, spec, kind.first_state(spec, now, bytes(32)), now)
        seen: set[str] = set()
        for action in (None, *kind.actions):
            now += 1
            if action is not None:
                try:
                    change = kind.act(action, d, {}, Context(now=now))
                except Exception:  # an action that needs fields or another state
                    continue
                if change.changes_definition:
                    state = d.state if change.state is UNCHANGED else change.state
                    audit = change.audit or d.audit
                    d = Definition(d.id, d.kind, d.spec, state, d.created_at, audit)
            views = kind.views(d, Context(now=now))
            for audience in AUDIENCES:
                text = json.dumps(views[audience], sort_keys=True)
                if text not in seen:
                    seen.add(text)
                    yield kind.name, views[audience]


def _checks(extra: str = "") -> str:
    lines = [
        'import type { Command, ServerMessage, ViewsByKind } from "../protocol.js";',
        "",
    ]
    vectors = json.loads(VECTORS.read_text("utf-8"))
    for i, vector in enumerate(vectors):
        declared = "Command" if vector["kind"] == "command" else "ServerMessage"
        message = json.dumps(vector["message"], ensure_ascii=False)
        lines.append(f"// vector {vector['name']}")
        lines.append(f"export const vector{i} = {message} satisfies {declared};")
    for i, (kind, view) in enumerate(sample_views()):
        lines.append(f"export const view{i} = {json.dumps(view)} satisfies ViewsByKind[{kind!r}];")
    return "\n".join(lines) + "\n" + extra


def _tsc_over(text: str) -> subprocess.CompletedProcess[str]:
    work = Path(tempfile.mkdtemp(prefix=".checks-", dir=JS))
    try:
        (work / "checks.ts").write_text(text, "utf-8")
        return tsc(*STRICT, str(work / "checks.ts"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_vectors_and_every_kind_s_views_type_check():
    kinds = {kind for kind, _ in sample_views()}
    assert len(kinds) >= len(list(Registry())) - 1, kinds  # all but a kind with no example
    text = _checks()
    assert text.count("satisfies ServerMessage") >= 10 and text.count("satisfies Command") >= 5
    done = _tsc_over(text)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_view_with_a_field_the_types_lack_does_not_type_check():
    kind, view = next(iter(sample_views()))
    wrong = {**view, "surprise": 1}
    done = _tsc_over(
        _checks(f"export const wrong = {json.dumps(wrong)} satisfies ViewsByKind[{kind!r}];\n")
    )
    assert done.returncode != 0
    assert "'\"surprise\"' does not exist in type" in done.stdout, done.stdout


def _live_scenario(node: Any) -> list[tuple[str, dict[str, Any]]]:
    """Views as a live node sends them, with votes in: every kind, in states the
    examples do not reach (a ranked poll's runoff, a revealed quiz, a drawn draw, asked
    questions, approved and waiting posts), for staff (admin) and for a viewer."""
    registry = Registry()
    room = "types"
    node.room(room)
    polls = {
        "ps": {"kind": "single", "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]},
        "pm": {
            "kind": "multiple",
            "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}],
        },
        "pr": {
            "kind": "ranked",
            "options": [{"id": x, "label": x.upper()} for x in "abc"],
        },
        "pt": {"kind": "rating", "scale": 5},
        "px": {"kind": "text"},
        "ph": {
            "kind": "single",
            "hide_results_until_reveal": True,
            "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}],
        },
    }
    quiz = {
        "id": "qz",
        "title": "Quiz",
        "questions": [
            {
                "id": "q1",
                "text": "1+1?",
                "options": [{"id": "a", "label": "2"}, {"id": "b", "label": "3"}],
                "correct": "a",
            },
            {
                "id": "q2",
                "text": "2+2?",
                "options": [{"id": "a", "label": "4"}, {"id": "b", "label": "5"}],
                "correct": "a",
            },
        ],
    }
    specs = [("poll", {"id": iid, "question": iid, **spec}) for iid, spec in polls.items()]
    specs.append(("quiz", quiz))
    for name in ("codesign", "draw", "qa"):
        kind = registry.get(name)
        assert kind is not None and kind.example is not None
        specs.append((name, dict(kind.example)))
    with node.http() as http:

        def act(iid: str, action: str, **fields: Any) -> None:
            r = http.post(
                f"/api/v1/rooms/{room}/interactions/{iid}/actions",
                json={"action": action, **fields},
            )
            assert r.status_code == 200, (iid, action, r.text)

        for kind_name, spec in specs:
            r = http.post(
                f"/api/v1/rooms/{room}/interactions", json={"kind": kind_name, "spec": spec}
            )
            assert r.status_code == 201, r.text
        for iid in polls:
            act(iid, "open")
        act("qz", "ask", question="q1")
        act("burger", "open")
        act("ask", "open")
        with viewer_ws(node.base, room, name="观众") as viewer:
            viewer.ok("vote", interaction="ps", option="a")
            viewer.ok("vote", interaction="pm", options=["a", "b"])
            viewer.ok("vote", interaction="pr", ranking=["b", "a", "c"])
            viewer.ok("vote", interaction="pt", rating=4)
            viewer.ok("vote", interaction="px", text="好吃 burger")
            viewer.ok("vote", interaction="ph", option="b")
            viewer.ok("answer", interaction="qz", question="q1", option="a")
            viewer.ok("pick", interaction="burger", slot="bun", option="sesame")
            viewer.ok("enter", interaction="prize")
            asked = viewer.ok("ask", interaction="ask", text="Is it spicy?")
            viewer.ok("checkin")
            first = viewer.ok("post", text="hello wall")
            viewer.ok("post", text="second post")
            viewer.ws.send(json.dumps({"op": "react", "emoji": "🔥"}))
        questions = http.get(f"/api/v1/rooms/{room}/interactions/ask").json()["questions"]
        assert questions, asked
        act("ask", "answer", question=questions[0]["id"], text="Very")
        act("ask", "pin", question=questions[0]["id"])
        act("wall", "approve", post=first["post"])
        act("pr", "close")
        act("qz", "close")
        act("qz", "reveal", question="q1")
        act("burger", "lock_all")
        act("burger", "reveal")
        act("prize", "run")
        r = http.post(
            f"/api/v1/rooms/{room}/tokens",
            json={"role": "viewer", "user_id": "v-types", "name": "V"},
        )
        assert r.status_code == 201, r.text
        viewer_token = r.json()["token"]
        staff = http.get(f"/api/v1/rooms/{room}/interactions").json()["interactions"]
    with node.http(viewer_token) as http:
        public = http.get(f"/api/v1/rooms/{room}/interactions").json()["interactions"]
    return [(view["kind"], view) for view in [*staff, *public]]


def test_views_from_a_live_node_with_votes_type_check():
    _npm_ready()
    node = start_node(
        free_port(),
        name="types-node",
        HUDONG_LIMITS_VIEWER_COMMANDS_PER_S="100",
        HUDONG_LIMITS_VIEWER_COMMAND_BURST="100",
    )
    try:
        views = _live_scenario(node)
    finally:
        stop_node(node)
    kinds = {kind for kind, _ in views}
    assert kinds == {k.name for k in Registry()}, kinds
    seen = json.dumps(views, ensure_ascii=False)
    for state in ('"irv": {', '"claims"', '"leaderboard": [{', '"final"', '"hidden": true'):
        assert state in seen, f"the scenario no longer reaches {state}"
    for state in ('"questions": [{', '"posts": [{', '"terms": [{', '"mean": 4'):
        assert state in seen, f"the scenario no longer reaches {state}"
    lines = ['import type { ViewsByKind } from "../protocol.js";']
    for i, (kind, view) in enumerate(views):
        lines.append(f"export const live{i} = {json.dumps(view)} satisfies ViewsByKind[{kind!r}];")
    done = _tsc_over("\n".join(lines) + "\n")
    assert done.returncode == 0, done.stdout + done.stderr


# --- the package --------------------------------------------------------------------------


def _package() -> dict[str, Any]:
    return dict(json.loads((JS / "package.json").read_text("utf-8")))


def test_package_json_names_only_what_exists():
    package = _package()
    for field in ("homepage", "repository", "bugs"):
        assert field not in package, f"{field}: no public home exists for the client"
    assert not re.search(r"https?://", json.dumps(package)), "a URL in package.json"
    assert package["types"] == "./hudong.d.ts"
    files = set(package["files"])
    for name in MODULES:
        assert {f"{name}.js", f"{name}.d.ts"} <= files
    assert {"protocol.d.ts", "README.md", "CHANGELOG.md"} <= files
    for name in files:
        assert (JS / name).is_file(), f"files names {name}, which does not exist"
    for target in package["exports"].values():
        for path in [target] if isinstance(target, str) else target.values():
            assert (JS / path).is_file(), f"exports names {path}, which does not exist"
    readme = (JS / "README.md").read_text("utf-8")
    assert "npm install @hudong/client" not in readme
    assert "github.com/hudong-live" not in readme


def test_the_client_s_readmes_and_changelog_link_only_to_what_exists():
    examples = sorted(p.relative_to(JS) for p in (JS / "examples").glob("**/README.md"))
    examples = [p for p in examples if "node_modules" not in p.parts]
    assert len(examples) >= 5, examples  # the examples' folder and each example
    for doc in (Path("README.md"), Path("CHANGELOG.md"), *examples):
        text = (JS / doc).read_text("utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"https?://", target):
                pytest.fail(f"{doc} links to {target}, outside the repository")
            there = (JS / doc).parent / target
            assert there.resolve().exists(), f"{doc} links to {target}: no such file"
        hosts = set(re.findall(r"\bhttps?://([^/\s`\"'<>)&?#]+)", text))
        # a node on this machine, or a documentation-only name (RFC 2606)
        loopback = {"127.0.0.1:8000", "localhost:8080"}
        assert all(h in loopback or re.search(r"(^|\.)example\.com$", h) for h in hosts), hosts


NODE_SCRIPT = """\
import WebSocket from {ws};
import {{ HudongClient, PROTOCOL_VERSION }} from "@hudong/client";

const client = new HudongClient({url}, {{ protocol: "msgpack", WebSocket }});
const hello = await client.connect();
const joined = await client.join("pack", {{ name: "node" }});
const said = {{ protocol: hello.protocol, mine: PROTOCOL_VERSION, you: joined.you.name }};
console.log(JSON.stringify(said));
await client.close();
"""

CONSUMER_TS = """\
import { HudongClient, type HelloMessage } from "@hudong/client";
import type { InteractionView } from "@hudong/client/protocol";

const client = new HudongClient("ws://127.0.0.1/ws");
client.on("hello", (hello: HelloMessage) => console.log(hello.protocol));
client.on("interaction", (view: InteractionView) => console.log(view.kind));
"""

PAGE = """\
<!doctype html>
<meta charset="utf-8">
<script type="importmap">
  {{ "imports": {{ "@msgpack/msgpack": "/node_modules/@msgpack/msgpack/dist.esm/index.mjs" }} }}
</script>
<script type="module">
  import {{ HudongClient }} from "/node_modules/@hudong/client/hudong.js";
  const client = new HudongClient({url}, {{ protocol: "msgpack" }});
  const hello = await client.connect();
  const joined = await client.join("pack", {{ name: "chromium" }});
  document.title = `${{hello.protocol}} ${{joined.you.name}}`;
</script>
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    """A static file server for the scratch project that does not log each request."""

    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
    }

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_packed_tarball_installs_offline_and_works_in_node_and_chromium(tmp_path):
    npm, node_bin = _npm_ready()
    chromium = _chromium()
    pack = subprocess.run(
        [npm, "pack", "--json", "--pack-destination", str(tmp_path)],
        cwd=JS,
        capture_output=True,
        text=True,
        check=True,
        timeout=120 * UNIT,
    )
    packed = json.loads(pack.stdout)[0]
    inside = {f["path"] for f in packed["files"]}
    assert {"hudong.js", "hudong.d.ts", "protocol.d.ts", "CHANGELOG.md"} <= inside, inside
    tarball = tmp_path / packed["filename"]
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "scratch", "private": true, "type": "module"}')
    # No registry: the msgpack dependency comes from the client's own node_modules.
    subprocess.run(
        [
            *(npm, "install", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"),
            *("--install-links", str(JS / "node_modules" / "@msgpack" / "msgpack"), str(tarball)),
        ],
        cwd=app,
        check=True,
        capture_output=True,
        timeout=300 * UNIT,
    )
    installed = app / "node_modules" / "@hudong" / "client"
    assert (installed / "hudong.d.ts").is_file()

    (app / "consumer.ts").write_text(CONSUMER_TS)
    done = tsc(*STRICT, "consumer.ts", cwd=app)
    assert done.returncode == 0, done.stdout + done.stderr

    static = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(app))
    )
    threading.Thread(target=static.serve_forever, daemon=True).start()
    page_origin = f"http://127.0.0.1:{static.server_address[1]}"
    node = start_node(free_port(), name="pack-node", HUDONG_ALLOWED_ORIGINS=page_origin)
    try:
        url = node.base.replace("http", "ws", 1) + "/ws"
        with node.http() as http_client:
            r = http_client.post("/api/v1/rooms", json={"id": "pack", "title": "Pack"})
            assert r.status_code == 201, r.text
        ws = json.dumps((JS / "node_modules" / "ws" / "wrapper.mjs").as_uri())
        (app / "watch.mjs").write_text(NODE_SCRIPT.format(ws=ws, url=json.dumps(url)))
        run = subprocess.run(
            [node_bin, "watch.mjs"], cwd=app, capture_output=True, text=True, timeout=60 * UNIT
        )
        assert run.returncode == 0, run.stdout + run.stderr
        said = json.loads(run.stdout.strip().splitlines()[-1])
        assert said == {"protocol": "hudong.v1", "mine": "hudong.v1", "you": "node"}

        (app / "index.html").write_text(PAGE.format(url=json.dumps(url)))
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"{page_origin}/index.html")
                page.wait_for_function(
                    "() => document.title === 'hudong.v1 chromium'", timeout=WAIT_MS
                )
                assert not errors, errors
            finally:
                browser.close()
    finally:
        stop_node(node)
        static.shutdown()
        static.server_close()
