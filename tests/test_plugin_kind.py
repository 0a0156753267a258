"""A kind added as a plug-in that lives only under tests/ (tests/plugin_kind.py and its
page module), registered with the setting ``server.kinds``, and driven end to end over
WebSocket and REST like any built-in kind (issue: "the registry is the only place that
names the kinds")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import LiveServer, running_server
from tests.plugin_kind import NAME

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "tests.plugin_kind:KIND"


@pytest.fixture
async def live():
    async with running_server(server={"kinds": PLUGIN}) as server:
        yield server


async def state_with(client, iid, check):
    while True:
        message = await client.recv_type("state")
        view = message["interactions"].get(iid)
        if view is not None and check(view):
            return view


async def test_a_plugin_kind_is_created_driven_and_seen_over_rest_and_websocket(live: LiveServer):
    await live.create_room("jar")
    spec = {"id": "beans", "question": "How many beans?", "answer": 120}
    async with live.http() as http:
        created = await http.post(
            "/api/v1/rooms/jar/interactions", json={"kind": NAME, "spec": spec}
        )
        assert created.status_code == 201, created.text
        assert created.json()["view"]["spec"]["answer"] == 120  # the host sees it
        opened = await http.post(
            "/api/v1/rooms/jar/interactions/beans/actions", json={"action": "open"}
        )
        assert opened.json()["view"]["status"]["phase"] == "open"
    viewers = []
    for name, value in (("ann", 100), ("bo", 118), ("cy", 200)):
        client = await live.connect()
        joined = await client.join("jar", token=await live.mint("jar", "viewer", user_id=name))
        view = joined["snapshot"]["interactions"]["beans"]
        assert view["kind"] == NAME and "answer" not in view["spec"]  # hidden from viewers
        ack = await client.command("guess", interaction="beans", key="g1", value=value)
        assert ack["type"] == "ack" and ack["duplicate"] is False, ack
        viewers.append(client)
    refused = await viewers[0].command("guess", interaction="beans", key="g2", value="many")
    assert refused["code"] == "invalid_vote"
    view = await state_with(viewers[0], "beans", lambda v: v["guesses"] == 3)
    assert view["mean"] == pytest.approx(139.333)
    async with live.http() as http:
        for action in ("close", "reveal"):
            r = await http.post(
                "/api/v1/rooms/jar/interactions/beans/actions", json={"action": action}
            )
            assert r.status_code == 200, r.text
        listed = (await http.get("/api/v1/rooms/jar/interactions")).json()["interactions"]
    assert NAME in {v["kind"] for v in listed}
    view = await state_with(viewers[1], "beans", lambda v: v["status"]["phase"] == "revealed")
    assert view["spec"]["answer"] == 120
    closest = [live.viewer_id(who) for who in ("bo", "ann", "cy")]  # their pseudonyms
    assert [c["viewer"] for c in view["closest"]] == closest


async def test_the_pages_get_the_plugin_s_page_module_from_the_registry(live: LiveServer):
    async with live.http(token=None) as http:
        index = await http.get("/static/kinds/index.js")
        module = await http.get(f"/static/kinds/{NAME}.js")
    assert index.status_code == 200 and f'"/static/kinds/{NAME}.js"' in index.text
    assert module.status_code == 200
    assert module.headers["content-type"].startswith("text/javascript")
    assert module.text == (ROOT / "tests" / "plugin_kind.js").read_text("utf-8")


async def test_without_the_setting_the_kind_does_not_exist():
    async with running_server() as server:
        await server.create_room("jar")
        async with server.http() as http:
            r = await http.post(
                "/api/v1/rooms/jar/interactions",
                json={"kind": NAME, "spec": {"id": "b", "question": "?", "answer": 1}},
            )
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_field"
        client = await server.connect()
        await client.join("jar")
        reply = await client.command("guess", interaction="b", key="k", value=1)
        assert reply["code"] == "unknown_op"


def test_nothing_outside_tests_names_the_plugin_kind():
    named = []
    for folder in ("server", "protocol", "clients", "loadtest"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".js", ".html", ".md", ".json"):
                if "node_modules" not in path.parts and NAME in path.read_text("utf-8", "replace"):
                    named.append(str(path.relative_to(ROOT)))
    assert named == []
