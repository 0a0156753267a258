"""A whole event, played from the console's run-sheet (issue 13, acceptance): a poll, a
quiz with its leaderboard, Q&A with upvotes, a keyword draw with claim codes, and wall
posts; three phones, the overlay and the wall follow it, and every figure each page
shows equals the REST API's."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from tests.browser_kit import Node, action, console_for, create, shot, viewers, wait_count
from tests.conftest import UNIT

pytestmark = pytest.mark.slow

ROOM = "launch"


def user_of(page: Any) -> str:
    """A phone's guest id, from the token the server gave it."""
    token = page.evaluate(f"localStorage.getItem('hudong.guest.{ROOM}')")
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


def next_item(console: Any, iid: str) -> None:
    """The host's "Next": the run-sheet pushes ``iid`` to the screens."""
    console.click("#run-next")
    console.wait_for_selector(f".run-status[data-on-screen='{iid}']")


def shown(page: Any, selector: str, script: str) -> Any:
    return page.eval_on_selector_all(selector, script)


def test_a_whole_event_runs_from_the_run_sheet_and_every_page_agrees(pages, node: Node):
    tokens = node.room(ROOM, wall_moderation="post")
    console = console_for(pages, ROOM, tokens)
    overlay = pages(f"/overlay/{ROOM}#token={tokens['screen']}", width=1280, height=720)
    wall = pages(f"/wall/{ROOM}#token={tokens['screen']}", width=1920, height=1080)
    phones = viewers(pages, ROOM, 3)
    users = [user_of(page) for page in phones]

    # The run-sheet, prepared before the doors open.
    poll = create(console, "poll", question="先尝哪款？", type="single", options="经典\n香辣\n蔬菜")
    quiz = create(console, "quiz", title="汉堡知识", questions="一个汉堡几块肉饼？ | 1, 2, 3 | 2")
    qa = create(console, "qa", title="问主厨")
    draw = create(console, "draw", title="金汉堡", winners="1", source="keyword", keyword="汉堡")
    card = lambda iid: f"[data-interaction='{iid}']"  # noqa: E731

    # 1. The poll: Next opens it on every screen; three phones vote.
    next_item(console, poll)
    for page, option in zip(phones, ("o1", "o1", "o2"), strict=True):
        page.locator(f"{card(poll)} input[value='{option}']").check()
        page.click(f"{card(poll)} button[type=submit]")
        page.wait_for_selector(f"{card(poll)} [role=status]:has-text('✓')")
    counts = {o["id"]: o["count"] for o in node.view(ROOM, poll)["results"]["options"]}
    assert counts == {"o1": 2, "o2": 1, "o3": 0}
    for page in (overlay, wall, console, *phones):
        for option, count in counts.items():
            wait_count(page, f"[data-poll='{poll}'] [data-option='{option}'] .count", count)
        wait_count(page, f"[data-poll='{poll}'] .voters", 3)
    shot(wall, "event-1-poll")

    # 2. The quiz: Next asks its question; the host closes and reveals it.
    next_item(console, quiz)
    for page, option in zip(phones, ("o2", "o2", "o1"), strict=True):
        page.click(f"{card(quiz)} button[data-option='{option}']")
        page.wait_for_selector(f"{card(quiz)} button[data-option='{option}'][aria-pressed='true']")
    action(console, quiz, "close")
    action(console, quiz, "reveal")
    board = node.view(ROOM, quiz)["leaderboard"]
    assert sorted(row["viewer"] for row in board) == sorted(users)
    leaders = "es => es.map(e => [e.dataset.viewer, +e.dataset.rank, +e.dataset.points])"
    want = [[row["viewer"], row["rank"], row["points"]] for row in board]
    for page, where in ((overlay, ".widget-quiz"), (wall, "#reveal"), (console, card(quiz))):
        page.wait_for_selector(f"{where} .leader")
        assert shown(page, f"{where} .leader", leaders) == want, where
    rank_of = {row["viewer"]: (row["rank"], row["points"]) for row in board}
    for page, user in zip(phones, users, strict=True):
        standing = page.locator(f"{card(quiz)} .standing")
        standing.wait_for()
        got = (int(standing.get_attribute("data-rank")), int(standing.get_attribute("data-points")))
        assert got == rank_of[user]
    shot(wall, "event-2-quiz")

    # 3. Q&A: each phone asks; upvotes order the board on every page.
    next_item(console, qa)
    asked = ("辣度可以选吗？", "有素食面包吗？", "几点开门？")
    for page, text in zip(phones, asked, strict=True):
        page.locator(f"{card(qa)} textarea").fill(text)
        page.click(f"{card(qa)} button[type=submit]")
        page.wait_for_selector(f"{card(qa)} [data-question]:has-text('{text}')")
    ids = {q["text"]: q["id"] for q in node.view(ROOM, qa)["questions"]}
    for page in phones:
        item = f"{card(qa)} [data-question='{ids['有素食面包吗？']}']"
        page.wait_for_selector(item)
        page.click(f"{item} button.votes")
        page.wait_for_selector(f"{item} button.votes[aria-pressed='true']")
    questions = node.view(ROOM, qa)["questions"]
    assert (questions[0]["text"], questions[0]["votes"]) == ("有素食面包吗？", 3)
    for page in (console, *phones):
        for q in questions:
            wait_count(page, f"{card(qa)} [data-question='{q['id']}'] .votes", q["votes"])
    for page in (overlay, wall):
        page.wait_for_selector(f"[data-question='{ids['有素食面包吗？']}']")
        for q in questions:
            wait_count(page, f"[data-question='{q['id']}'] .votes", q["votes"])
    shot(wall, "event-3-qa")

    # 4. The keyword draw: whoever sends 汉堡 is in; the winner gets a claim code.
    next_item(console, draw)
    for i, page in enumerate(phones):
        page.fill("#text", f"我要金汉堡 {i}")
        page.click("#send")
    deadline = time.monotonic() + 15 * UNIT
    while node.view(ROOM, draw)["entrants"] != 3:
        assert time.monotonic() < deadline, node.view(ROOM, draw)
        time.sleep(0.1)
    console.click(f"{card(draw)} .card-open")
    console.wait_for_selector(f"{card(draw)} :text('3 entrants')")
    action(console, draw, "run")
    [claim] = node.view(ROOM, draw)["claims"]
    winner = phones[users.index(claim["winner"])]
    code = winner.locator(f"{card(draw)} .claim-code")
    code.wait_for()
    assert code.get_attribute("data-code") == claim["code"]
    wall.wait_for_selector(f".winner[data-winner='{claim['winner']}']")
    row = console.locator(f"{card(draw)} li.claim[data-winner='{claim['winner']}']")
    assert row.locator(".claim-code").inner_text() == claim["code"]
    row.locator("button[data-action='claim']").click()
    console.wait_for_selector(f"{card(draw)} li.claim[data-claimed='yes']")
    assert node.view(ROOM, draw)["claims"][0]["claimed_at"] is not None
    shot(winner, "event-4-claim-code")
    shot(wall, "event-4-draw")

    # 5. Wall posts: back to automatic, the wall shows what the phones post.
    console.click("button[data-run='auto']")
    for i, page in enumerate(phones):
        page.fill("#post-text", f"第一次来，好吃！#{i}")
        page.click("#post-form button[type=submit]")
        page.wait_for_selector("#post-status:not(:empty)")
    with node.http(tokens["host"]) as http:
        posts = http.get(f"/api/v1/rooms/{ROOM}/interactions/wall").json()
    assert posts["count"] == 3, posts
    for post in posts["posts"]:
        wall.wait_for_selector(f".post:has-text('{post['text']}')")
    assert wall.locator(".post").count() == posts["count"]
    shot(wall, "event-5-posts")
    shot(console, "event-console", full_page=True)
    for i, page in enumerate(phones):
        shot(page, f"event-phone-{i}", full_page=True)
