"""Requests that cost CPU are held to a rate per client address (server/api/limits.py):
a flood of QR codes or reports from one address gets 429s that cost nothing, while
other addresses and the rest of the API are served."""

import httpx
import pytest

from server.api.limits import HeavyRequests
from server.app import create_app
from server.config import ServerSettings, Settings
from tests.conftest import ADMIN, SECRET


def test_a_client_over_its_rate_waits_and_others_do_not():
    now = [100.0]
    heavy = HeavyRequests(2.0, 3, clock=lambda: now[0], kept=2)
    assert [heavy.wait("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert heavy.wait("a") == pytest.approx(0.5)
    assert heavy.wait("b") == 0.0  # another address has its own bucket
    now[0] += 0.5
    assert heavy.wait("a") == 0.0  # one token back after 1 / rate
    heavy.wait("c")  # a third address: the least recently seen ("b") is forgotten
    assert set(heavy._buckets) == {"a", "c"}


async def test_a_qr_and_report_flood_gets_429_with_retry_after(live_app):
    app, base = live_app
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url=base) as http:
        auth = {"Authorization": f"Bearer {ADMIN}"}
        assert (await http.post("/api/v1/rooms", json={"id": "r"}, headers=auth)).status_code == 201
        codes = [(await http.get("/qr/r.svg")).status_code for _ in range(25)]
        assert codes[:20] == [200] * 20 and set(codes[20:]) == {429}, codes
        late = await http.get("/api/v1/rooms/r/report", headers=auth)
        assert late.status_code == 429
        assert late.json()["error"]["code"] == "rate_limited"
        assert "at most 5/s, bursts of 20" in late.json()["error"]["message"]
        assert int(late.headers["Retry-After"]) >= 1
        # the rest of the API is not held to it
        assert (await http.get("/api/v1/rooms/r", headers=auth)).status_code == 200
    other = httpx.ASGITransport(app=app, client=("203.0.113.8", 5000))
    async with httpx.AsyncClient(transport=other, base_url=base) as http:
        assert (await http.get("/qr/r.svg")).status_code == 200


@pytest.fixture
async def live_app():
    app = create_app(Settings(server=ServerSettings(admin_token=ADMIN, secret=SECRET)))
    async with app.router.lifespan_context(app):
        yield app, "http://testserver"


def test_wrong_tokens_make_an_address_wait_longer_each_time_then_are_forgiven():
    from server.api.limits import FORGIVE_AFTER_S, LOCKOUT_MAX_S, FailedLogins

    now = [0.0]
    logins = FailedLogins(3, clock=lambda: now[0])
    for _ in range(3):
        logins.failed("a")
    assert logins.wait("a") == 0.0  # three are allowed
    waits = []
    for _ in range(12):
        logins.failed("a")
        waits.append(logins.wait("a"))
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0] and waits[-1] == LOCKOUT_MAX_S
    assert logins.wait("b") == 0.0  # another address is not affected
    now[0] += LOCKOUT_MAX_S + 1
    assert logins.wait("a") == 0.0
    logins.failed("a")  # still remembered: the next wrong one waits at once
    assert logins.wait("a") == LOCKOUT_MAX_S
    now[0] += FORGIVE_AFTER_S + 1
    assert logins.wait("a") == 0.0
    logins.failed("a")
    assert logins.wait("a") == 0.0  # forgiven: counting starts again
    logins.succeeded("a")
    assert "a" not in logins._failures
