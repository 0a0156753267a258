"""The console's Audit log tab (issue 15): a host sees who did what in the room, newest
first, filters it, exports it, and reads it in Chinese too. On a `hudong serve` node
(the embedded store) in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_kit import action, console_for, create, shot

pytestmark = pytest.mark.slow


def test_the_console_shows_the_room_s_audit_log(pages, node):
    tokens = node.room("audited")
    console = console_for(pages, "audited", tokens)
    iid = create(console, "poll", question="Lunch?", type="single", options="Noodles\nRice")
    action(console, iid, "open")
    console.wait_for_selector(f"[data-interaction='{iid}'] button[data-action='close']")
    with node.http() as http:  # the admin, over REST
        r = http.post("/api/v1/rooms/audited/moderation", json={"action": "ban", "user": "troll"})
        assert r.status_code == 200, r.text

    console.click("[data-tab='audit']")
    newest = console.locator("#audit-rows .audit-entry").first
    newest.wait_for()
    assert newest.get_attribute("data-action") == "moderation.ban"
    assert "troll" in newest.inner_text() and "admin" in newest.inner_text()
    opened = console.locator(".audit-entry[data-action='interaction.open']")
    assert opened.count() == 1 and "Host (host)" in opened.inner_text()
    assert iid in opened.inner_text()

    console.fill("#audit-actor", "host-1")
    console.click("#audit-filter button[type=submit]")
    console.wait_for_selector(".audit-entry[data-action='moderation.ban']", state="detached")
    actors = console.eval_on_selector_all(".audit-entry", "es => es.map(e => e.dataset.actor)")
    assert actors and set(actors) == {"host-1"}

    with console.expect_download() as download:
        console.click("#audit-csv")
    text = Path(download.value.path()).read_text("utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("id,at,time,node,actor_id") and len(lines) == len(actors) + 1

    console.click("#lang")
    console.wait_for_selector("[data-tab='audit']:has-text('操作日志')")
    assert console.locator("#audit-csv").inner_text() == "导出 CSV"
    shot(console, "console-audit-log", full_page=True)
    assert not pages.watch.errors, pages.watch.errors
