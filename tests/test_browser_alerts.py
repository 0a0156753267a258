"""Keyword alerts in the console (issue 15, acceptance 3), in headless Chromium against
`hudong serve`: the host adds a watch list in /console, viewers send watch-listed
danmaku, and within 5 s both the host's and a moderator's consoles show the alert with
its sample danmaku; the moderator acknowledges it and the host's banner goes too. The
metric moves on /metrics."""

from __future__ import annotations

import time

import pytest

from tests.browser_kit import shot, viewer_ws
from tests.conftest import UNIT

pytestmark = pytest.mark.slow

ROOM = "crisis"


def metric(node, name: str) -> float:
    with node.http() as http:
        for line in http.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} is not on /metrics")


def test_a_spike_of_watch_listed_words_shows_on_the_console_and_is_acknowledged(pages, node):
    tokens = node.room(ROOM)
    with node.http() as http:
        r = http.post(
            f"/api/v1/rooms/{ROOM}/tokens",
            json={"role": "moderator", "user_id": "mod-1", "name": "Mod Lin"},
        )
        moderator_token = r.json()["token"]
    host = pages(f"/console#room={ROOM}&token={tokens['host']}", width=1366, height=900)
    host.wait_for_selector("#conn[data-state='connected']")
    moderator = pages(f"/console#room={ROOM}&token={moderator_token}", width=1366, height=900)
    moderator.wait_for_selector("#conn[data-state='connected']")

    # The host adds a watch list in the console: 退款 or 投诉, three in a minute.
    host.click("[data-tab='danmaku']")
    host.click("#watchlist-form >> xpath=.. >> summary")
    host.fill("#wl-name", "Refunds")
    host.fill("#wl-terms", "退款\n投诉")
    host.fill("#wl-pairs", "BrandX + 差")
    host.fill("#wl-threshold", "3")
    host.fill("#wl-window", "60")
    host.click("#watchlist-form button[type=submit]")
    host.wait_for_selector("#watchlists [data-watchlist] >> text=Refunds")
    assert host.locator("#alert-banner").is_hidden()
    before = metric(node, "hudong_keyword_alerts_total")

    texts = ["我要退款", "客服在吗 投诉", "brandx 太差了"]
    with viewer_ws(node.base, ROOM, "Fan A") as a, viewer_ws(node.base, ROOM, "Fan B") as b:
        a.ok("danmaku", text="主播好棒 666")  # not on the list
        a.ok("danmaku", text=texts[0])
        b.ok("danmaku", text=texts[1])
        sent = time.monotonic()
        a.ok("danmaku", text=texts[2])
        for console in (host, moderator):
            console.wait_for_selector("#alert-banner .alert-open", timeout=5000 * UNIT)
        shown_within = time.monotonic() - sent
    assert shown_within < 5 * UNIT, shown_within
    for console in (host, moderator):
        banner = console.locator("#alert-banner")
        assert banner.is_visible()
        assert "Refunds" in banner.inner_text()
        samples = banner.locator(".alert-samples li").all_inner_texts()
        assert samples == ["Fan A: 我要退款", "Fan B: 客服在吗 投诉", "Fan A: brandx 太差了"]
        assert "主播好棒" not in banner.inner_text()
    shot(host, "console-keyword-alert", full_page=True)
    assert metric(node, "hudong_keyword_alerts_total") == before + 1
    assert metric(node, "hudong_keyword_alerts_active") >= 1

    # The moderator acknowledges it: the banner goes on both consoles; the record stays.
    moderator.click("#alert-banner button[data-action='ack-alert']")
    for console in (moderator, host):
        console.wait_for_selector("#alert-banner", state="hidden", timeout=5000 * UNIT)
        console.wait_for_selector("#alert-list .alert-acked >> text=Mod Lin", state="attached")
    assert metric(node, "hudong_keyword_alerts_active") == 0
    with node.http(tokens["host"]) as http:
        [alert] = http.get(f"/api/v1/rooms/{ROOM}/alerts").json()["alerts"]
    assert alert["acked"]["user"] == "mod-1"

    # The console speaks Chinese too.
    host.click("#lang")
    host.wait_for_selector("#alerts-heading >> text=关键词预警")
    host.wait_for_selector("#alert-list .alert-acked >> text=已于")
