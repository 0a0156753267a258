"""The viewer's phone in Chromium at 390×844 (issue 13, items 5, 11 and 13):

- nothing scrolls the page but the viewer: danmaku arriving leave scrollY where it was,
  and what is open now stays on top while ended interactions fold away below it;
- a phone in a zh-CN browser reads its errors in Chinese, with the details filled in,
  and is called by a Chinese default name, on its own page and on everyone else's;
- a draw winner's phone shows its claim code, and the console lists it and marks the
  prize claimed.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.browser_kit import WAIT_MS, Node, action, console_for, create, shot, viewers

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844, "mobile": True}
OPTIONS = [{"id": f"o{i}", "label": f"Option number {i}"} for i in range(1, 5)]


def phone(pages: Any, room: str) -> Any:
    page = pages(f"/live/{room}", **PHONE)
    page.wait_for_selector("#conn[data-state='connected']")
    return page


def poll(http: Any, room: str, pid: str, question: str, **extra: Any) -> None:
    spec = {"id": pid, "question": question, "kind": "single", "options": OPTIONS, **extra}
    r = http.post(f"/api/v1/rooms/{room}/interactions", json={"kind": "poll", "spec": spec})
    assert r.status_code == 201, r.text


def act(http: Any, room: str, iid: str, name: str) -> None:
    r = http.post(f"/api/v1/rooms/{room}/interactions/{iid}/actions", json={"action": name})
    assert r.status_code == 200, r.text


def send_danmaku(sender: Any, text: str) -> None:
    sender.fill("#text", text)
    sender.click("#send")


def test_danmaku_never_scroll_the_phone_and_the_open_poll_stays_on_top(pages, node: Node):
    tokens = node.room("calm")
    with node.http(tokens["host"]) as http:
        poll(http, "calm", "earlier", "Which one did you like? (ended)")
        act(http, "calm", "earlier", "open")
        act(http, "calm", "earlier", "close")
        for i in range(3):  # enough open cards for the page to scroll
            poll(http, "calm", f"now-{i}", f"Open question {i}?")
            act(http, "calm", f"now-{i}", "open")
    viewer = phone(pages, "calm")
    [sender] = viewers(pages, "calm", 1)
    viewer.wait_for_selector("[data-interaction='now-2']")
    viewer.wait_for_selector("[data-fold='earlier']", state="attached")
    # What is open is on top; the ended poll is folded below it (closed, openable).
    fold = viewer.locator("[data-fold='earlier']")
    assert fold.get_attribute("open") is None
    assert not viewer.locator("[data-interaction='earlier'] form").is_visible()
    tops = viewer.evaluate(
        """ids => ids.map(s => document.querySelector(s).getBoundingClientRect())
                    .map(r => [r.top + window.scrollY, r.bottom + window.scrollY])""",
        [f"[data-interaction='now-{i}']" for i in range(3)] + ["[data-fold='earlier']"],
    )
    assert all(bottom <= tops[-1][0] for _, bottom in tops[:-1]), tops
    viewer.evaluate("window.scrollTo(0, 0)")
    assert viewer.evaluate("window.scrollY") == 0
    assert viewer.evaluate("document.documentElement.scrollHeight") > 844  # it can scroll
    # Danmaku arrive: the page stays at the top.
    for i in range(6):
        send_danmaku(sender, f"hello {i}")
        viewer.wait_for_selector(f"#feed .feed-item:has-text('hello {i}')", state="attached")
        assert viewer.evaluate("window.scrollY") == 0, f"the page moved after danmaku {i}"
    shot(viewer, "phone-calm-top")
    # The viewer scrolls a little (into the open polls): it stays there too.
    viewer.evaluate("window.scrollTo(0, 200)")
    where = viewer.evaluate("window.scrollY")
    assert where == 200
    for i in range(6, 10):
        send_danmaku(sender, f"hello {i}")
        viewer.wait_for_selector(f"#feed .feed-item:has-text('hello {i}')", state="attached")
        assert viewer.evaluate("window.scrollY") == where, f"the page moved after danmaku {i}"
    # The feed keeps following the newest inside its own box.
    feed = viewer.evaluate(
        "(() => { const f = document.getElementById('feed');"
        " return f.scrollHeight - f.scrollTop - f.clientHeight; })()"
    )
    assert feed < 24, feed
    # The viewer opens the folded poll and reads its results.
    fold.locator("summary").click()
    assert fold.get_attribute("open") is not None
    viewer.locator("[data-interaction='earlier']").wait_for(state="visible")
    shot(viewer, "phone-calm-ended-opened", full_page=True)


def zh_phone(browser: Any, node: Node, room: str) -> tuple[Any, Any, list[str]]:
    """A phone whose browser speaks Chinese: its context, its page, its notices."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{node.base}/live/{room}")
    page.wait_for_selector("#conn[data-state='connected']")
    return context, page, errors


def test_a_chinese_phone_reads_errors_in_chinese_and_has_a_chinese_name(browser, pages, node):
    tokens = node.room("zhong")
    with node.http(tokens["host"]) as http:
        poll(http, "zhong", "pick2", "选两个", kind="multiple", max_picks=2)
        act(http, "zhong", "pick2", "open")
    context, page, errors = zh_phone(browser, node, "zhong")
    try:
        assert page.evaluate("document.documentElement.lang").startswith("zh")
        page.locator("#you:has-text('观众 ')").wait_for()  # once joined
        you = page.locator("#you").inner_text()
        assert "观众 " in you and "guest" not in you, you
        name = you.split("观众 ", 1)[1].strip()
        assert len(name) == 4, you
        # Too many picks: the server refuses, the phone says so in Chinese, with the limit.
        card = page.locator("[data-interaction='pick2']")
        for option in ("o1", "o2", "o3"):
            card.locator(f"input[value='{option}']").check()
        card.locator("button[type=submit]").click()
        page.wait_for_selector("#notices :text('最多只能选择 2 项')")
        notices = page.locator("#notices").inner_text()
        assert "option(s)" not in notices and "pick at most" not in notices, notices
        shot(page, "phone-zh-error")
        # Everyone else sees the Chinese name next to its danmaku.
        [other] = viewers(pages, "zhong", 1)
        send_danmaku(page, "大家好")
        other.wait_for_selector(f"#feed .feed-item:has-text('大家好') .who:text('观众 {name}')")
        shot(other, "phone-en-sees-zh-name")
        assert not errors, errors
    finally:
        context.close()


def user_of(page: Any, room: str) -> str:
    """The guest id of a phone, from the token the server gave it (kept per room)."""
    token = page.evaluate(f"localStorage.getItem('hudong.guest.{room}')")
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


def test_a_winner_s_phone_shows_its_claim_code_and_the_console_marks_it_claimed(pages, node):
    tokens = node.room("desk")
    console = console_for(pages, "desk", tokens)
    phones = [phone(pages, "desk") for _ in range(3)]
    iid = create(console, "draw", title="Golden ticket", winners="1", source="entry")
    for page in phones:
        page.click(f"[data-interaction='{iid}'] button")
        page.wait_for_selector(f"[data-interaction='{iid}'] button:disabled")
    console.wait_for_selector(f"[data-interaction='{iid}'] :text('3')")
    action(console, iid, "run")
    [claim] = node.view("desk", iid)["claims"]
    code = claim["code"]
    by_user = {user_of(page, "desk"): page for page in phones}
    winner = by_user.pop(claim["winner"])
    # The winner's phone shows its code, on top; the others never get it.
    shown = winner.locator(f"[data-interaction='{iid}'] .claim-code")
    shown.wait_for()
    assert shown.inner_text() == code and shown.get_attribute("data-code") == code
    for loser in by_user.values():
        loser.wait_for_selector(f"[data-interaction='{iid}'] .winner", state="attached")
        assert loser.locator(".claim-code").count() == 0
        assert code not in loser.content()
    shot(winner, "phone-claim-code")
    # The console lists the winner with the code; a wrong code at the desk is refused.
    row = console.locator(f"[data-interaction='{iid}'] li.claim[data-winner='{claim['winner']}']")
    assert row.locator(".claim-code").inner_text() == code
    desk = console.locator(f"[data-interaction='{iid}'] .prize-desk")
    desk.locator("input").fill("ZZZZ-ZZZZ" if code != "ZZZZ-ZZZZ" else "YYYY-YYYY")
    desk.locator("button[data-desk='claim']").click()
    console.wait_for_selector("#notices :text('Nothing has that id or code')")
    assert node.view("desk", iid)["claims"][0]["claimed_at"] is None
    # Chromium logs the refused call's 404; that one was asked for.
    errors = pages.watch.errors
    errors[:] = [e for e in errors if not ("/console" in e and "status of 404" in e)]
    # Looked up, then marked claimed from the winner's row.
    desk.locator("input").fill(code.lower())
    desk.locator("button[data-desk='lookup']").click()
    console.wait_for_selector(f"[data-interaction='{iid}'] .desk-answer:text('not claimed yet')")
    row.locator("button[data-action='claim']").click()
    console.wait_for_selector(
        f"[data-interaction='{iid}'] li.claim[data-claimed='yes'][data-winner='{claim['winner']}']"
    )
    assert node.view("desk", iid)["claims"][0]["claimed_at"] is not None
    # Handed over, the prize is over: its card joins the ended ones (unfolded while
    # nothing else is open).
    winner.wait_for_selector(
        f"[data-fold='{iid}'] [data-interaction='{iid}'] .claim[data-claimed='yes']"
    )
    shot(console, "console-claims", full_page=True)
    shot(winner, "phone-claimed")
