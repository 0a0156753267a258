"""Who may reach what (issue 15): the Origin allow-list for /ws and CORS, the metrics
token, per-address rate limits on the routes that need no token, and wrong tokens
slowed per address while other addresses and valid room tokens go on."""

from __future__ import annotations

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from server.app import create_app
from server.config import Settings
from tests.conftest import ADMIN, SECRET, UNIT

EVIL = "https://evil.example.net"


async def _ws_status(live, origin: str | None) -> int:
    """101 when the node accepts the handshake, else the HTTP status it refused with."""
    headers = {"Origin": origin} if origin else {}
    try:
        async with connect(
            live.ws_url,
            subprotocols=["hudong.v1.json"],
            additional_headers=headers,
            open_timeout=10 * UNIT,
            ping_interval=None,
        ) as ws:
            await ws.recv()  # hello
            return 101
    except InvalidStatus as exc:
        assert exc.response.status_code != 101
        if exc.response.status_code == 403:
            assert b"server.allowed_origins" in exc.response.body
        return exc.response.status_code


async def test_pages_of_other_sites_may_not_open_a_websocket_by_default(live):
    assert await _ws_status(live, EVIL) == 403
    assert await _ws_status(live, "null") == 403
    # the node's own pages (the overlay in OBS too), and clients that are no browser
    assert await _ws_status(live, live.base) == 101
    assert await _ws_status(live, f"http://localhost:{live.port}") == 403
    assert await _ws_status(live, None) == 101


async def test_listed_origins_and_the_public_url_may_open_a_websocket(server_factory):
    server = {
        "allowed_origins": "https://app.example.com, http://partner.example.org:8080",
        "public_url": "https://live.example.com/",
    }
    async with server_factory(server=server) as live:
        for origin in (
            "https://app.example.com",
            "http://partner.example.org:8080",
            "https://live.example.com",
            "https://LIVE.example.com:443",
        ):
            assert await _ws_status(live, origin) == 101, origin
        assert await _ws_status(live, EVIL) == 403
        assert await _ws_status(live, "http://partner.example.org") == 403


async def test_a_star_allows_every_origin(server_factory):
    async with server_factory(server={"allowed_origins": "*"}) as live:
        assert await _ws_status(live, EVIL) == 101


async def test_cors_answers_listed_origins_only(server_factory):
    async with server_factory(server={"allowed_origins": "https://app.example.com"}) as live:
        token = await live.mint(await _room(live), "host")
        async with httpx.AsyncClient(base_url=live.base) as http:
            preflight = await http.options(
                "/api/v1/rooms/r",
                headers={
                    "Origin": "https://app.example.com",
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
            assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
            auth = {"Authorization": f"Bearer {token}"}
            listed = await http.get(
                "/api/v1/rooms/r", headers={**auth, "Origin": "https://app.example.com"}
            )
            assert listed.headers["access-control-allow-origin"] == "https://app.example.com"
            other = await http.get("/api/v1/rooms/r", headers={**auth, "Origin": EVIL})
            assert "access-control-allow-origin" not in other.headers
            refused = await http.options(
                "/api/v1/rooms/r",
                headers={"Origin": EVIL, "Access-Control-Request-Method": "GET"},
            )
            assert refused.status_code == 400


async def test_without_listed_origins_no_cors_headers_are_sent(live):
    async with httpx.AsyncClient(base_url=live.base) as http:
        r = await http.get("/healthz", headers={"Origin": EVIL})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


async def _room(live) -> str:
    await live.create_room("r")
    return "r"


async def test_metrics_are_open_by_default_and_closed_with_a_token(server_factory):
    async with server_factory() as live:
        async with httpx.AsyncClient(base_url=live.base) as http:
            assert (await http.get("/metrics")).status_code == 200
    async with server_factory(server={"metrics_token": "scrape-me-0123456789"}) as live:
        async with httpx.AsyncClient(base_url=live.base) as http:
            bare = await http.get("/metrics")
            assert bare.status_code == 401 and "metrics_token" in bare.json()["error"]["message"]
            wrong = await http.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
            assert wrong.status_code == 401
            right = await http.get(
                "/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"}
            )
            assert right.status_code == 200 and "hudong_" in right.text


@pytest.fixture
async def app_with():
    """An app served in process, asked from any client address (ASGITransport)."""
    made = []

    async def make(**sections):
        settings = Settings().replace(server={"admin_token": ADMIN, "secret": SECRET})
        if sections:
            settings = settings.replace(**sections)
        app = create_app(settings)
        context = app.router.lifespan_context(app)
        await context.__aenter__()
        made.append(context)

        def client(address: str, token: str | None = None) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 5000))
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return httpx.AsyncClient(
                transport=transport, base_url="http://testserver", headers=headers
            )

        return client

    yield make
    for context in made:
        await context.__aexit__(None, None, None)


async def test_wrong_admin_tokens_are_slowed_per_address(app_with):
    client = await app_with(limits={"failed_logins_allowed": 5})
    async with client("198.51.100.20", ADMIN) as admin:
        assert (await admin.post("/api/v1/rooms", json={"id": "r"})).status_code == 201
        r = await admin.post("/api/v1/rooms/r/tokens", json={"role": "viewer"})
        viewer = r.json()["token"]
    async with client("203.0.113.9") as attacker:
        guesses = [
            await attacker.get("/api/v1/rooms", headers={"Authorization": f"Bearer guess-{i}"})
            for i in range(6)
        ]
        assert [g.status_code for g in guesses] == [401] * 6
        waits = []
        for i in range(3):
            r = await attacker.get("/api/v1/rooms", headers={"Authorization": f"Bearer more-{i}"})
            assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
            waits.append(int(r.headers["Retry-After"]))
        assert waits == sorted(waits) and waits[0] < waits[-1], waits  # it grows
        # the right admin token from that address waits too: guessing gains nothing
        right = await attacker.get("/api/v1/rooms", headers={"Authorization": f"Bearer {ADMIN}"})
        assert right.status_code == 429
        # a valid room token from it still works (it cannot be guessed)
        mine = await attacker.get(
            "/api/v1/rooms/r/interactions", headers={"Authorization": f"Bearer {viewer}"}
        )
        assert mine.status_code == 200
    # other addresses are not affected
    async with client("198.51.100.20", ADMIN) as admin:
        assert (await admin.get("/api/v1/rooms")).status_code == 200


async def test_routes_that_need_no_token_are_rate_limited_per_address(app_with):
    client = await app_with(limits={"public_requests_per_s": 1.0, "public_request_burst": 3})
    async with client("203.0.113.50") as crowd:
        codes = [(await crowd.get(path)).status_code for path in ["/healthz"] * 3 + ["/console"]]
        assert codes == [200, 200, 200, 429]
        late = await crowd.get("/static/style.css")
        assert late.status_code == 429 and int(late.headers["Retry-After"]) >= 1
        assert late.json()["error"]["code"] == "rate_limited"
    async with client("203.0.113.51") as other:
        assert (await other.get("/healthz")).status_code == 200
    async with client("203.0.113.50", ADMIN) as admin:  # routes with a token: not this limit
        assert (await admin.get("/api/v1/rooms")).status_code == 200
