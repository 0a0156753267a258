"""The REST API over real HTTP (PROTOCOL.md, "REST API"): every route's answer and every
documented error status and code, plus health, readiness and metrics."""

import time

import jwt
import pytest

from protocol.messages import ROOM_ID_RE
from server.room_settings import ROOM_SETTING_DEFAULTS
from tests.carry_on import ROOM, SUBPROTOCOLS, close_code_of, sender_carries_on
from tests.conftest import ADMIN, SECRET

ROOM_FIELDS = {"id", "title", "created_at", "version", "settings", "online"}
TOKEN_FIELDS = {"token", "room", "role", "user_id", "sub", "name", "jti", "expires_at"}
ROOMS = "/api/v1/rooms"


def assert_api_error(r, status, code):
    """``{"error": {"code": …, "message": …}}`` with ``status``."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body


def _expired_token(room):
    now = int(time.time())
    claims = {"iss": "hudong", "room": room, "role": "host", "sub": "h", "name": "H"}
    return jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, SECRET, algorithm="HS256")


async def _room(live, room_id=ROOM, **settings):
    return await live.create_room(room_id, **settings)


# --- authentication: every route, without a token, with a wrong one -------------------------

ROUTES = [
    ("GET", ROOMS, None),
    ("POST", ROOMS, {"id": "new"}),
    ("GET", f"{ROOMS}/{ROOM}", None),
    ("PATCH", f"{ROOMS}/{ROOM}", {"title": "t"}),
    ("DELETE", f"{ROOMS}/{ROOM}", None),
    ("POST", f"{ROOMS}/{ROOM}/tokens", {"role": "viewer"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=lambda v: str(v))
@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param("Bearer wrong-token", id="wrong-token"),
        pytest.param("Bearer", id="empty-bearer"),
        pytest.param(f"Basic {ADMIN}", id="not-bearer"),
        pytest.param(f"{ADMIN}", id="no-scheme"),
    ],
)
async def test_every_route_needs_a_valid_token(live, method, path, body, authorization):
    await _room(live)
    headers = {"Authorization": authorization} if authorization else {}
    async with live.http(None) as http:
        r = await http.request(method, path, json=body, headers=headers)
    assert_api_error(r, 401, "unauthorized")
    async with live.http() as http:  # nothing changed
        assert (await http.get(f"{ROOMS}/{ROOM}")).json()["version"] == 1
        assert {room["id"] for room in (await http.get(ROOMS)).json()["rooms"]} == {ROOM}


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"title": "t"}),
        ("POST", "/tokens", {"role": "viewer"}),
    ],
)
@pytest.mark.parametrize("token_kind", ["other-room", "expired", "wrong-secret"])
async def test_room_token_must_be_valid_for_the_room(live, method, suffix, body, token_kind):
    await _room(live)
    await _room(live, "elsewhere")
    if token_kind == "other-room":
        token = await live.mint("elsewhere", "host")
    elif token_kind == "expired":
        token = _expired_token(ROOM)
    else:
        claims = {"room": ROOM, "role": "host", "sub": "h", "exp": int(time.time()) + 60}
        token = jwt.encode(claims, "another-secret-of-at-least-32-bytes!", algorithm="HS256")
    async with live.http(token) as http:
        r = await http.request(method, f"{ROOMS}/{ROOM}{suffix}", json=body)
    assert_api_error(r, 401, "unauthorized")


# --- GET /api/v1/rooms --------------------------------------------------------------------


async def test_list_rooms(live):
    async with live.http() as http:
        r = await http.get(ROOMS)
        assert r.status_code == 200 and r.json() == {"rooms": []}
    a = await _room(live, "a")
    b = await _room(live, "b", allow_anonymous=False)
    viewer = await live.connect()
    await viewer.join("a")
    async with live.http() as http:
        r = await http.get(ROOMS)
    assert r.status_code == 200, r.text
    rooms = {room["id"]: room for room in r.json()["rooms"]}
    assert set(rooms) == {"a", "b"}
    assert rooms["a"] == {**a, "online": 1}
    assert rooms["b"] == b and rooms["b"]["settings"] == {
        **ROOM_SETTING_DEFAULTS,
        "allow_anonymous": False,
    }


@pytest.mark.parametrize("role", ["host", "moderator", "viewer", "screen"])
async def test_list_rooms_is_for_the_admin_only(live, role):
    await _room(live)
    async with live.http(await live.mint(ROOM, role)) as http:
        r = await http.get(ROOMS)
    # "who: admin". A room token carries no right over the list of all rooms; the spec
    # does not say whether that is 401 (not the admin token) or 403 (a role that may not).
    expected = {401: "unauthorized", 403: "forbidden"}
    assert r.status_code in expected, r.text
    assert_api_error(r, r.status_code, expected[r.status_code])


# --- POST /api/v1/rooms -------------------------------------------------------------------


async def test_create_room(live):
    before = time.time()
    async with live.http() as http:
        r = await http.post(ROOMS, json={"id": "r-1_A", "title": "Launch night"})
    assert r.status_code == 201, r.text
    room = r.json()
    assert set(room) == ROOM_FIELDS
    assert room["id"] == "r-1_A" and room["title"] == "Launch night"
    assert room["version"] == 1 and room["online"] == 0
    assert room["settings"] == ROOM_SETTING_DEFAULTS
    assert room["settings"]["allow_anonymous"] is True and room["settings"]["degrade_floor"] == 0
    # created_at: an integer of milliseconds since the epoch ("Subprotocols and codecs").
    assert type(room["created_at"]) is int
    assert int(before * 1000) - 1000 <= room["created_at"] <= int(time.time() * 1000)
    async with live.http() as http:
        assert (await http.get(f"{ROOMS}/r-1_A")).json() == room


@pytest.mark.parametrize("body", [None, {}, {"title": "untitled"}], ids=["no-body", "{}", "title"])
async def test_create_room_without_id_gets_a_fresh_id(live, body):
    async with live.http() as http:
        first = await http.post(ROOMS, json=body) if body is not None else await http.post(ROOMS)
        second = await http.post(ROOMS, json=body) if body is not None else await http.post(ROOMS)
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    ids = [first.json()["id"], second.json()["id"]]
    assert all(ROOM_ID_RE.match(i) for i in ids) and ids[0] != ids[1]


async def test_create_room_with_settings(live):
    room = await _room(live, allow_anonymous=False)
    assert room["settings"] == {**ROOM_SETTING_DEFAULTS, "allow_anonymous": False}


async def test_create_existing_room_gets_409(live):
    async with live.http() as http:
        r = await http.post(ROOMS, json={"id": ROOM, "title": "first"})
        assert r.status_code == 201, r.text
        r = await http.post(ROOMS, json={"id": ROOM, "title": "second"})
        assert_api_error(r, 409, "room_exists")
        assert (await http.get(f"{ROOMS}/{ROOM}")).json()["title"] == "first"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"id": "bad id"}, id="id-space"),
        pytest.param({"id": "bad/id"}, id="id-slash"),
        pytest.param({"id": ""}, id="id-empty"),
        pytest.param({"id": "r" * 65}, id="id-65"),
        pytest.param({"id": 5}, id="id-int"),
        pytest.param({"id": ["r"]}, id="id-list"),
        pytest.param({"id": "r", "title": 5}, id="title-int"),
        pytest.param({"id": "r", "settings": {"nope": True}}, id="settings-unknown-key"),
        pytest.param({"id": "r", "settings": {"allow_anonymous": "yes"}}, id="settings-str"),
        pytest.param({"id": "r", "settings": {"allow_anonymous": 1}}, id="settings-int"),
        pytest.param({"id": "r", "settings": ["allow_anonymous"]}, id="settings-list"),
        pytest.param({"id": "r", "settings": True}, id="settings-bool"),
        pytest.param({"id": "r", "settings": {"mode": "loud"}}, id="mode-unknown"),
        pytest.param({"id": "r", "settings": {"slow_mode_s": 0}}, id="slow-mode-0"),
        pytest.param({"id": "r", "settings": {"wall_moderation": None}}, id="wall-moderation"),
        pytest.param({"id": "r", "settings": {"brand_color": "red"}}, id="brand-color"),
        pytest.param(
            {"id": "r", "settings": {"logo_url": "https://cdn.example.com/l.png"}},
            id="logo-other-host",
        ),
        pytest.param({"id": "r", "settings": {"logo_url": "//cdn/l.png"}}, id="logo-protocol-rel"),
    ],
)
async def test_create_room_with_invalid_field_gets_400(live, body):
    async with live.http() as http:
        r = await http.post(ROOMS, json=body)
        assert_api_error(r, 400, "invalid_field")
        assert (await http.get(ROOMS)).json() == {"rooms": []}


@pytest.mark.parametrize(
    "content",
    [b"{", b"not json", b"[1, 2]", b'"room"', b"42", b"null", b"\xff\xfe"],
    ids=["truncated", "text", "array", "string", "number", "null", "bad-utf8"],
)
async def test_create_room_with_malformed_body_gets_400(live, content):
    async with live.http() as http:
        r = await http.post(ROOMS, content=content, headers={"content-type": "application/json"})
        assert_api_error(r, 400, "malformed")
        assert (await http.get(ROOMS)).json() == {"rooms": []}


async def test_body_over_64_kib_gets_413(live):
    big = b'{"id": "big", "title": "' + b"x" * 65536 + b'"}'
    async with live.http() as http:
        r = await http.post(ROOMS, content=big, headers={"content-type": "application/json"})
        assert_api_error(r, 413, "body_too_large")
        assert (await http.get(ROOMS)).json() == {"rooms": []}


@pytest.mark.parametrize(
    ("method", "suffix"), [("PATCH", ""), ("POST", "/tokens")], ids=["patch", "tokens"]
)
async def test_body_over_64_kib_gets_413_on_every_route_with_a_body(live, method, suffix):
    await _room(live)
    big = b'{"title": "' + b"x" * 65536 + b'", "role": "viewer"}'
    async with live.http() as http:
        r = await http.request(
            method,
            f"{ROOMS}/{ROOM}{suffix}",
            content=big,
            headers={"content-type": "application/json"},
        )
        assert_api_error(r, 413, "body_too_large")
        assert (await http.get(f"{ROOMS}/{ROOM}")).json()["version"] == 1


# --- GET /api/v1/rooms/{id} -----------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "host", "moderator"])
async def test_get_room(live, who):
    room = await _room(live)
    token = ADMIN if who == "admin" else await live.mint(ROOM, who)
    async with live.http(token) as http:
        r = await http.get(f"{ROOMS}/{ROOM}")
    assert r.status_code == 200, r.text
    assert r.json() == room


@pytest.mark.parametrize("role", ["viewer", "screen"])
async def test_get_room_with_a_watching_role_gets_403(live, role):
    await _room(live)
    async with live.http(await live.mint(ROOM, role)) as http:
        r = await http.get(f"{ROOMS}/{ROOM}")
    assert_api_error(r, 403, "forbidden")


async def test_get_missing_room_gets_404(live):
    async with live.http() as http:
        r = await http.get(f"{ROOMS}/nowhere")
    assert_api_error(r, 404, "room_not_found")


async def test_host_token_of_a_deleted_room_gets_404(live):
    await _room(live)
    host = await live.mint(ROOM, "host")
    async with live.http() as http:
        assert (await http.delete(f"{ROOMS}/{ROOM}")).status_code == 204
    async with live.http(host) as http:
        assert_api_error(await http.get(f"{ROOMS}/{ROOM}"), 404, "room_not_found")
        assert_api_error(
            await http.patch(f"{ROOMS}/{ROOM}", json={"title": "t"}), 404, "room_not_found"
        )
        assert_api_error(
            await http.post(f"{ROOMS}/{ROOM}/tokens", json={"role": "viewer"}),
            404,
            "room_not_found",
        )


# --- PATCH /api/v1/rooms/{id} ---------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "host"])
async def test_patch_room(live, who):
    await _room(live)
    token = ADMIN if who == "admin" else await live.mint(ROOM, "host")
    async with live.http(token) as http:
        r = await http.patch(f"{ROOMS}/{ROOM}", json={"title": "New title"})
        assert r.status_code == 200, r.text
        room = r.json()
        assert set(room) == ROOM_FIELDS
        assert (room["title"], room["version"]) == ("New title", 2)
        r = await http.patch(f"{ROOMS}/{ROOM}", json={"settings": {"allow_anonymous": False}})
        assert r.status_code == 200, r.text
        room = r.json()
        assert room["settings"] == {**ROOM_SETTING_DEFAULTS, "allow_anonymous": False}
        assert (room["title"], room["version"]) == ("New title", 3)
    async with live.http() as http:
        assert (await http.get(f"{ROOMS}/{ROOM}")).json() == room


async def test_patch_sends_members_a_snapshot_with_the_new_version(live):
    await _room(live)
    members = []
    for subprotocol in SUBPROTOCOLS:
        member = await live.connect(subprotocol)
        joined = await member.join(ROOM)
        assert joined["snapshot"]["version"] == 1
        members.append(member)
    async with live.http() as http:
        r = await http.patch(
            f"{ROOMS}/{ROOM}", json={"title": "Encore", "settings": {"allow_anonymous": False}}
        )
        assert r.status_code == 200, r.text
    version = r.json()["version"]
    assert version == 2
    for member in members:
        message = await member.recv()
        assert set(message) == {"type", "snapshot"}, message
        assert message["type"] == "snapshot", message
        snapshot = message["snapshot"]
        assert snapshot["version"] == version
        assert snapshot["room"]["version"] == version
        assert snapshot["room"]["title"] == "Encore"
        assert snapshot["room"]["settings"] == {**ROOM_SETTING_DEFAULTS, "allow_anonymous": False}
        assert snapshot["online"] == 2
    # The new setting holds for new joins; the members stay and carry on.
    late = await live.connect()
    await late.send({"op": "join", "id": 1, "room": ROOM})
    reply = await late.recv()
    assert (reply["type"], reply["code"]) == ("error", "anonymous_not_allowed"), reply
    await sender_carries_on(members[0], members[1:])


@pytest.mark.parametrize("role", ["moderator", "viewer", "screen"])
async def test_patch_by_a_role_that_may_not_change_the_room_gets_403(live, role):
    await _room(live)
    async with live.http(await live.mint(ROOM, role)) as http:
        r = await http.patch(f"{ROOMS}/{ROOM}", json={"title": "mine now"})
    assert_api_error(r, 403, "forbidden")
    async with live.http() as http:
        assert (await http.get(f"{ROOMS}/{ROOM}")).json()["title"] == ROOM


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"id": "other"}, id="id"),
        pytest.param({"version": 9}, id="version"),
        pytest.param({"title": 5}, id="title-int"),
        pytest.param({"settings": {"nope": True}}, id="settings-unknown-key"),
        pytest.param({"settings": {"allow_anonymous": "no"}}, id="settings-str"),
        pytest.param({"settings": {"allow_anonymous": 0}}, id="settings-int"),
        pytest.param({"settings": "allow_anonymous"}, id="settings-str-not-map"),
        pytest.param({"settings": {"danmaku_merge_s": -1}}, id="merge-negative"),
        pytest.param({"settings": {"danmaku_merge_s": 31}}, id="merge-over-30"),
        pytest.param({"settings": {"danmaku_merge_s": 1.5}}, id="merge-float"),
        pytest.param({"settings": {"wall_danmaku": "yes"}}, id="wall-danmaku-str"),
    ],
)
async def test_patch_with_invalid_field_gets_400(live, body):
    await _room(live)
    async with live.http() as http:
        r = await http.patch(f"{ROOMS}/{ROOM}", json=body)
        assert_api_error(r, 400, "invalid_field")
        assert (await http.get(f"{ROOMS}/{ROOM}")).json()["version"] == 1


@pytest.mark.parametrize("content", [b"{", b"[]", b"true"], ids=["truncated", "array", "bool"])
async def test_patch_with_malformed_body_gets_400(live, content):
    await _room(live)
    async with live.http() as http:
        r = await http.patch(
            f"{ROOMS}/{ROOM}", content=content, headers={"content-type": "application/json"}
        )
        assert_api_error(r, 400, "malformed")
        assert (await http.get(f"{ROOMS}/{ROOM}")).json()["version"] == 1


async def test_patch_missing_room_gets_404(live):
    async with live.http() as http:
        r = await http.patch(f"{ROOMS}/nowhere", json={"title": "t"})
    assert_api_error(r, 404, "room_not_found")


# --- DELETE /api/v1/rooms/{id} --------------------------------------------------------------


async def test_delete_room(live):
    await _room(live)
    await _room(live, "kept")
    members = []
    for subprotocol in SUBPROTOCOLS:
        member = await live.connect(subprotocol)
        await member.join(ROOM)
        members.append(member)
    async with live.http() as http:
        r = await http.delete(f"{ROOMS}/{ROOM}")
        assert r.status_code == 204 and r.content == b"", r.text
        for member in members:
            assert await close_code_of(member) == 4004
        assert_api_error(await http.get(f"{ROOMS}/{ROOM}"), 404, "room_not_found")
        assert [room["id"] for room in (await http.get(ROOMS)).json()["rooms"]] == ["kept"]
        assert_api_error(await http.delete(f"{ROOMS}/{ROOM}"), 404, "room_not_found")
        # The id is free again.
        assert (await http.post(ROOMS, json={"id": ROOM})).status_code == 201


async def test_delete_missing_room_gets_404(live):
    async with live.http() as http:
        assert_api_error(await http.delete(f"{ROOMS}/nowhere"), 404, "room_not_found")


@pytest.mark.parametrize("role", ["host", "moderator", "viewer", "screen"])
async def test_delete_by_a_room_role_gets_403(live, role):
    """Only the admin deletes rooms; a valid token of the room with another role is
    refused as forbidden (403: the role may not), not as unauthorized."""
    await _room(live)
    async with live.http(await live.mint(ROOM, role)) as http:
        r = await http.delete(f"{ROOMS}/{ROOM}")
    assert_api_error(r, 403, "forbidden")
    async with live.http() as http:
        assert (await http.get(f"{ROOMS}/{ROOM}")).status_code == 200


# --- POST /api/v1/rooms/{id}/tokens ---------------------------------------------------------


@pytest.mark.parametrize(
    ("minter", "role"),
    [
        ("admin", "host"),
        ("admin", "moderator"),
        ("admin", "screen"),
        ("admin", "viewer"),
        ("host", "moderator"),
        ("host", "screen"),
        ("host", "viewer"),
    ],
)
async def test_mint_token(live, minter, role):
    await _room(live)
    token = ADMIN if minter == "admin" else await live.mint(ROOM, "host")
    before = int(time.time())
    async with live.http(token) as http:
        r = await http.post(
            f"{ROOMS}/{ROOM}/tokens",
            json={"role": role, "user_id": "u-42", "name": "Kim", "ttl_s": 600},
        )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == TOKEN_FIELDS
    assert body["room"] == ROOM and body["role"] == role
    # A viewer's id from outside is held as its pseudonym (PROTOCOL.md, "Privacy").
    held_as = live.viewer_id("u-42") if role == "viewer" else "u-42"
    assert held_as.startswith("p-") == (role == "viewer")
    assert (body["user_id"], body["sub"], body["name"]) == (held_as, "u-42", "Kim")
    assert type(body["expires_at"]) is int
    assert before + 600 <= body["expires_at"] <= int(time.time()) + 600
    # The token joins the room with that identity.
    client = await live.connect()
    joined = await client.join(ROOM, token=body["token"], name="ignored with a token")
    assert joined["you"] == {"id": held_as, "name": "Kim", "role": role}


async def test_mint_token_with_defaults(live):
    await _room(live)
    async with live.http() as http:
        r = await http.post(f"{ROOMS}/{ROOM}/tokens", json={"role": "viewer"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user_id"] and body["name"] and body["expires_at"] > time.time()
    client = await live.connect()
    joined = await client.join(ROOM, token=body["token"])
    assert joined["you"]["id"] == body["user_id"] and joined["you"]["role"] == "viewer"


@pytest.mark.parametrize(
    ("minter", "role"),
    [
        ("host", "host"),
        ("moderator", "viewer"),
        ("moderator", "moderator"),
        ("viewer", "viewer"),
        ("screen", "screen"),
    ],
)
async def test_mint_token_beyond_the_callers_role_gets_403(live, minter, role):
    await _room(live)
    async with live.http(await live.mint(ROOM, minter)) as http:
        r = await http.post(f"{ROOMS}/{ROOM}/tokens", json={"role": role})
    assert_api_error(r, 403, "forbidden")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="role-missing"),
        pytest.param({"role": "admin"}, id="role-admin"),
        pytest.param({"role": "Viewer"}, id="role-case"),
        pytest.param({"role": 1}, id="role-int"),
        pytest.param({"role": "viewer", "ttl_s": 0}, id="ttl-0"),
        pytest.param({"role": "viewer", "ttl_s": -5}, id="ttl-negative"),
        pytest.param({"role": "viewer", "ttl_s": "600"}, id="ttl-string"),
        pytest.param({"role": "viewer", "ttl_s": 1.5}, id="ttl-float"),
        pytest.param({"role": "viewer", "ttl_s": True}, id="ttl-bool"),
        pytest.param({"role": "viewer", "ttl_s": 400 * 24 * 3600 + 1}, id="ttl-over-400-days"),
        pytest.param({"role": "viewer", "user_id": "has space"}, id="user-id-space"),
        pytest.param({"role": "viewer", "user_id": 5}, id="user-id-int"),
        pytest.param({"role": "viewer", "name": 5}, id="name-int"),
    ],
)
async def test_mint_token_with_invalid_field_gets_400(live, body):
    await _room(live)
    async with live.http() as http:
        r = await http.post(f"{ROOMS}/{ROOM}/tokens", json=body)
    assert_api_error(r, 400, "invalid_field")


async def test_mint_token_with_malformed_body_gets_400(live):
    await _room(live)
    async with live.http() as http:
        r = await http.post(
            f"{ROOMS}/{ROOM}/tokens",
            content=b"role=viewer",
            headers={"content-type": "application/json"},
        )
    assert_api_error(r, 400, "malformed")


async def test_mint_token_for_missing_room_gets_404(live):
    async with live.http() as http:
        r = await http.post(f"{ROOMS}/nowhere/tokens", json={"role": "viewer"})
    assert_api_error(r, 404, "room_not_found")


# --- other paths and methods ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", ROOMS),
        ("DELETE", ROOMS),
        ("PUT", f"{ROOMS}/{ROOM}"),
        ("GET", f"{ROOMS}/{ROOM}/tokens"),
    ],
)
async def test_wrong_method_gets_405(live, method, path):
    await _room(live)
    async with live.http() as http:
        r = await http.request(method, path)
    assert_api_error(r, 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v2/rooms", f"{ROOMS}/{ROOM}/x"])
async def test_unknown_path_gets_404(live, path):
    async with live.http() as http:
        r = await http.get(path)
    assert_api_error(r, 404, "not_found")


async def test_healthz(live):
    async with live.http(None) as http:
        r = await http.get("/healthz")
    assert r.status_code == 200, r.text


async def test_readyz(live):
    async with live.http(None) as http:
        r = await http.get("/readyz")
    assert r.status_code == 200, r.text


async def test_metrics(live):
    await _room(live)
    client = await live.connect()
    await client.join(ROOM)
    async with live.http(None) as http:
        r = await http.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    assert "hudong_connections" in r.text
