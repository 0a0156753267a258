"""Draw winners claim their prize with a code (issue 13, item 13; PROTOCOL.md, "Prizes
are claimed with a code"): the code reaches the winner and the hosts only, a claim
happens once, and a wrong code is refused without changing anything."""

from __future__ import annotations

import re
from typing import Any

import orjson

from server.draw_verification import verify_audit
from tests.conftest import Client, LiveServer

ROOM = "prizes"
CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")
PEOPLE = ("ann", "bob", "cai")


async def drawn(live: LiveServer) -> tuple[Client, dict[str, str], list[str]]:
    """A room whose draw ``prize`` (one winner of three entrants) was run: the host's
    connection, everyone's token, and the winners."""
    await live.create_room(ROOM)
    tokens = {who: await live.mint(ROOM, "viewer", user_id=who, name=who) for who in PEOPLE}
    tokens["host"] = await live.mint(ROOM, "host", user_id="host")
    tokens["screen"] = await live.mint(ROOM, "screen", user_id="screen")
    host = await live.connect()
    await host.join(ROOM, token=tokens["host"])
    spec = {"id": "prize", "title": "Prize", "winners": 1}
    created = await host.command("host", action="create", kind="draw", spec=spec)
    assert created["type"] == "ack", created
    for who in PEOPLE:
        viewer = await live.connect()
        await viewer.join(ROOM, token=tokens[who])
        ack = await viewer.command("enter", interaction="prize", key="k1")
        assert ack["type"] == "ack", ack
        await viewer.close()
    ran = await host.command("host", action="run", interaction="prize")
    assert ran["type"] == "ack", ran
    # The winners by their names: their ids are the pseudonyms (PROTOCOL.md, "Privacy").
    named = {live.viewer_id(who): who for who in PEOPLE}
    return host, tokens, [named[w] for w in ran["winners"]]


async def get(live: LiveServer, token: str, path: str, expect: int = 200) -> dict[str, Any]:
    async with live.http(token) as http:
        r = await http.get(f"/api/v1/rooms/{ROOM}/interactions/prize{path}")
    assert r.status_code == expect, r.text
    data: dict[str, Any] = r.json()
    return data


async def act(live: LiveServer, token: str, body: dict[str, Any], expect: int = 200) -> Any:
    async with live.http(token) as http:
        r = await http.post(f"/api/v1/rooms/{ROOM}/interactions/prize/actions", json=body)
    assert r.status_code == expect, r.text
    return r.json()


async def test_the_claim_code_reaches_the_winner_and_the_hosts_only(live: LiveServer):
    host, tokens, [name] = await drawn(live)
    winner = live.viewer_id(name)
    mine = await get(live, tokens[name], "/mine")
    code = mine["claim"]["code"]
    assert CODE.match(code), mine
    assert mine == {
        "interaction": "prize",
        "claim": {"winner": winner, "code": code, "claimed_at": None},
    }
    for loser in set(PEOPLE) - {name}:
        assert await get(live, tokens[loser], "/mine") == {"interaction": "prize"}
    # The host: in its view over REST and over the WebSocket, with the winner's name.
    staff = await get(live, tokens["host"], "")
    assert staff["claims"] == [{"winner": winner, "name": name, "code": code, "claimed_at": None}]
    again = await host.command("host", action="lookup", interaction="prize", code=code)
    assert again["view"]["claims"][0]["code"] == code
    # No one else: viewers' and screens' views (REST, a fresh snapshot), the audit record.
    for who in (*PEOPLE, "screen"):
        public = await get(live, tokens[who], "")
        assert "claims" not in public and code not in orjson.dumps(public).decode(), who
        assert public["state"]["winners"] == [winner] and public["state"]["claimed"] == []
        late = await live.connect()
        joined = await late.join(ROOM, token=tokens[who])
        assert code not in orjson.dumps(joined).decode(), who
        await late.close()
    audit = await get(live, tokens[name], "/audit")
    assert code not in orjson.dumps(audit).decode()
    assert verify_audit(audit).ok  # hudong verify-draw still holds


async def test_a_claim_happens_once_and_a_wrong_code_changes_nothing(live: LiveServer):
    _, tokens, [name] = await drawn(live)
    winner = live.viewer_id(name)
    code = (await get(live, tokens[name], "/mine"))["claim"]["code"]
    host = tokens["host"]
    before = await get(live, host, "")
    wrong = "0000-0000" if code != "0000-0000" else "1111-1111"
    refused = await act(live, host, {"action": "claim", "code": wrong}, expect=404)
    assert refused["error"]["code"] == "unknown_target"
    assert wrong in refused["error"]["message"] and "claim code" in refused["error"]["message"]
    empty = await act(live, host, {"action": "claim"}, expect=400)
    assert empty["error"]["code"] == "invalid_field"
    assert await get(live, host, "") == before  # nothing changed
    # Typed as a person reads it off a phone: lower case, no dash.
    first = await act(live, host, {"action": "claim", "code": code.lower().replace("-", " ")})
    claimed_at = first["claim"]["claimed_at"]
    assert first["claim"] == {
        "winner": winner,
        "name": name,
        "code": code,
        "claimed_at": claimed_at,
    }
    assert first["duplicate"] is False and isinstance(claimed_at, float)
    second = await act(live, host, {"action": "claim", "code": code})
    assert second["duplicate"] is True and second["claim"]["claimed_at"] == claimed_at
    assert second["version"] == first["version"]  # the repeat wrote nothing
    looked = await act(live, host, {"action": "lookup", "code": code})
    assert looked["claim"]["claimed_at"] == claimed_at and "duplicate" not in looked
    assert (await get(live, host, ""))["claims"][0]["claimed_at"] == claimed_at
    assert (await get(live, tokens[name], ""))["state"]["claimed"] == [winner]
    assert (await get(live, tokens[name], "/mine"))["claim"]["claimed_at"] == claimed_at
    rows = (await get(live, host, "/export"))["rows"]
    assert [(r["viewer"], r["code"], r["claimed_at"]) for r in rows if r["won"]] == [
        (winner, code, claimed_at)
    ]
    assert all(r["code"] is None for r in rows if not r["won"]) and len(rows) == 3
    # Viewers may not claim, even with the code.
    forbidden = await act(live, tokens[name], {"action": "claim", "code": code}, expect=403)
    assert forbidden["error"]["code"] == "forbidden"


async def test_a_draw_not_yet_run_has_no_claims(live: LiveServer):
    await live.create_room(ROOM)
    host = await live.mint(ROOM, "host", user_id="host")
    async with live.http(host) as http:
        r = await http.post(
            f"/api/v1/rooms/{ROOM}/interactions",
            json={"kind": "draw", "spec": {"id": "prize", "title": "Prize"}},
        )
        assert r.status_code == 201, r.text
    refused = await act(live, host, {"action": "lookup", "code": "ABCD-EFGH"}, expect=409)
    assert refused["error"]["code"] == "not_open"
