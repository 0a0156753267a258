"""The cockpit (issue 16, acceptance 2 in a smaller form), in headless Chromium against
`hudong serve`: viewers send danmaku and votes, and /cockpit at 1920x1080 shows the
figures the test sent, the same as GET …/stats and …/timeline, the live poll's results,
and charts of the per-minute history; then the same with two nodes on Redis, viewers on
both and the cockpit on one."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser_kit import WAIT_MS, count_of, shot, start_node, stop_node, viewer_ws, wait_count
from tests.conftest import ADMIN, free_port

pytestmark = pytest.mark.slow

ROOM = "cockpit"
POLL = {
    "id": "p",
    "question": "Encore?",
    "kind": "single",
    "options": [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}],
}


# The sum of a series' points on the charts (the whole event's minutes).
CHARTED = """(want) => want.every(([name, n]) =>
  [...document.querySelectorAll(`circle[data-series=${name}]`)]
    .reduce((sum, c) => sum + Number(c.dataset.value), 0) === n)"""


def charted(page: Any, want: list[list[Any]], *nodes: Any, token: str = ADMIN) -> None:
    """Wait until the charts hold ``want`` (series, sum of its points); else fail with
    what the charts and each node's timeline held (a miss once seen only under the whole
    suite's load)."""
    try:
        page.wait_for_function(CHARTED, arg=want, timeout=2 * WAIT_MS)
    except PlaywrightTimeout:
        points = page.evaluate(
            "() => [...document.querySelectorAll('circle[data-series]')]"
            ".map((c) => [c.dataset.series, Number(c.dataset.value)])"
        )
        held = []
        for node in nodes:
            with node.http(token) as http:
                held.append(http.get(f"/api/v1/rooms/{ROOM}/timeline").json())
        raise AssertionError(f"charts {points}, timelines {held}") from None


def figure(page: Any, name: str) -> str:
    return str(page.locator(f"[data-figure='{name}']").inner_text()).strip()


def test_the_cockpit_shows_what_viewers_sent(pages, node):
    tokens = node.room(ROOM)
    with node.http(tokens["host"]) as http:
        r = http.post(f"/api/v1/rooms/{ROOM}/interactions", json={"kind": "poll", "spec": POLL})
        assert r.status_code == 201, r.text
        r = http.post(f"/api/v1/rooms/{ROOM}/interactions/p/actions", json={"action": "open"})
        assert r.status_code == 200, r.text
        watch = {"id": "refund", "name": "Refunds", "terms": ["退款"], "threshold": 1}
        r = http.put(f"/api/v1/rooms/{ROOM}/alerts/watchlists", json={"watchlists": [watch]})
        assert r.status_code == 200, r.text
    cockpit = pages(f"/cockpit#room={ROOM}&token={tokens['host']}", width=1920, height=1080)
    cockpit.wait_for_selector("#conn[data-state='connected']")
    with (
        viewer_ws(node.base, ROOM, "Fan A") as a,
        viewer_ws(node.base, ROOM, "Fan B") as b,
        viewer_ws(node.base, ROOM, "Fan C") as c,
    ):
        for text in ("好看", "666", "好看 666 番茄酱"):
            a.ok("danmaku", text=text)
        b.ok("danmaku", text="hello 退款")  # on the watch list
        a.ok("vote", interaction="p", option="yes")
        b.ok("vote", interaction="p", option="yes")
        # c only watches: 2 participants of 3 viewers
        cockpit.wait_for_function(
            "() => document.querySelector('[data-figure=danmaku]').textContent === '4'"
            " && document.querySelector('[data-figure=votes]').textContent === '2'"
            " && document.querySelector('[data-figure=online]').textContent === '3'"
        )
        wait_count(cockpit, "[data-poll='p'] [data-option='yes'] .count", 2)
        # The charts come from the timeline, written every 2 s, read every 5 s (up to 7 s;
        # more on a busy machine).
        cockpit.wait_for_function(
            "() => document.querySelector('[data-figure=peak]').textContent === '3'"
        )
        charted(cockpit, [["danmaku", 4], ["votes", 2]], node, token=tokens["host"])
        cockpit.wait_for_selector("#alerts li[data-acked='false'] >> text=Refunds")
        shot(cockpit, "cockpit-1920")
        with node.http(tokens["host"]) as http:
            stats = http.get(f"/api/v1/rooms/{ROOM}/stats").json()
            timeline = http.get(f"/api/v1/rooms/{ROOM}/timeline").json()
        assert (stats["online"], stats["participants"]) == (3, 2), stats
        assert stats["unique_viewers"] == 3, stats
        assert (stats["danmaku_per_min"], stats["votes_per_min"]) == (4, 2), stats
        assert figure(cockpit, "online") == str(stats["online"])
        assert figure(cockpit, "participants") == str(stats["participants"]) == "2"
        assert figure(cockpit, "unique") == "3"
        assert figure(cockpit, "rate") == "67 %"  # 2 of 3 unique viewers
        assert figure(cockpit, "danmaku") == str(stats["danmaku_per_min"])
        assert figure(cockpit, "votes") == str(stats["votes_per_min"])
        assert count_of(cockpit, "[data-poll='p'] [data-option='yes'] .count") == 2
        # Over every minute of the event (the test may straddle a minute's end).
        minutes = timeline["minutes"]
        assert sum(m["danmaku"] for m in minutes) == 4, minutes
        assert sum(m["votes"] for m in minutes) == 2, minutes
        assert timeline["peak_online"] == 3, timeline
        # Top words (GET …/top-words, the node's jieba): each danmaku's words, once each.
        cockpit.wait_for_selector("#words [data-word='好看'][data-count='2']")
        cockpit.wait_for_selector("#words [data-word='666'][data-count='2']")
        cockpit.wait_for_selector("#words [data-word='hello'][data-count='1']")
        cockpit.wait_for_selector("#words [data-word='番茄酱'][data-count='1']")  # jieba: a word
        assert cockpit.locator("#words [data-word='番']").count() == 0
        # The admin token opens it too (its live results through a screen token it mints).
        admin = pages(f"/cockpit#room={ROOM}&token={ADMIN}", width=1920, height=1080)
        wait_count(admin, "[data-poll='p'] [data-option='yes'] .count", 2)
        admin.wait_for_function(
            "() => document.querySelector('[data-figure=participants]').textContent === '2'"
        )
        admin.wait_for_selector("#words [data-word='好看'][data-count='2']")  # the recent ones
        assert figure(admin, "online") == "3"  # staff and screens are not viewers
        # In Chinese: the labels, the charts' legends and the words of the results.
        cockpit.click("#lang")
        cockpit.wait_for_selector(".kpi-label >> text=当前观众")
        cockpit.wait_for_selector("#chart-activity .legend >> text=弹幕")
        assert figure(cockpit, "danmaku") == "4"
        shot(cockpit, "cockpit-1920-zh")
        assert c is not None


def test_the_cockpit_counts_every_node_of_a_cluster(pages, shared_redis):
    redis = ("--redis", shared_redis.url)
    prefix = {"HUDONG_REDIS_PREFIX": f"cockpit-{free_port()}:"}
    a = start_node(free_port(), *redis, name="cockpit-a", **prefix)
    b = cockpit = None
    try:
        b = start_node(free_port(), *redis, name="cockpit-b", **prefix)
        tokens = a.room(ROOM)
        with a.http(tokens["host"]) as http:
            body = {"kind": "poll", "spec": POLL}
            assert http.post(f"/api/v1/rooms/{ROOM}/interactions", json=body).status_code == 201
            r = http.post(f"/api/v1/rooms/{ROOM}/interactions/p/actions", json={"action": "open"})
            assert r.status_code == 200, r.text
        cockpit = pages(
            f"/cockpit#room={ROOM}&token={tokens['host']}", width=1920, height=1080, base=a.base
        )
        cockpit.wait_for_selector("#conn[data-state='connected']")
        with (
            viewer_ws(a.base, ROOM, "On A 1") as a1,
            viewer_ws(a.base, ROOM, "On A 2") as a2,
            viewer_ws(b.base, ROOM, "On B 1") as b1,
            viewer_ws(b.base, ROOM, "On B 2") as b2,
        ):
            for viewer, text in ((a1, "上车"), (b1, "来了"), (b1, "好听"), (b2, "666")):
                viewer.ok("danmaku", text=text)
            for viewer, option in ((a1, "yes"), (b1, "no"), (b2, "yes")):
                viewer.ok("vote", interaction="p", option=option)
            # a2 only watches: 3 participants of 4 viewers, over two nodes
            cockpit.wait_for_function(
                "() => document.querySelector('[data-figure=danmaku]').textContent === '4'"
                " && document.querySelector('[data-figure=votes]').textContent === '3'"
                " && document.querySelector('[data-figure=online]').textContent === '4'"
                " && document.querySelector('[data-figure=participants]').textContent === '3'"
            )
            wait_count(cockpit, "[data-poll='p'] [data-option='yes'] .count", 2)
            charted(cockpit, [["danmaku", 4], ["votes", 3]], a, b, token=tokens["host"])
            shot(cockpit, "cockpit-cluster-1920")
            with b.http(tokens["host"]) as http:  # the other node answers the same
                stats = http.get(f"/api/v1/rooms/{ROOM}/stats").json()
                timeline = http.get(f"/api/v1/rooms/{ROOM}/timeline").json()
            assert (stats["online"], stats["participants"]) == (4, 3), stats
            assert (stats["danmaku_per_min"], stats["votes_per_min"]) == (4, 3), stats
            assert figure(cockpit, "rate") == "75 %"  # 3 of 4 unique viewers
            assert count_of(cockpit, "[data-poll='p'] [data-option='no'] .count") == 1
            minutes = timeline["minutes"]
            assert sum(m["danmaku"] for m in minutes) == 4, minutes
            assert sum(m["votes"] for m in minutes) == 3, minutes
            assert timeline["peak_online"] == 4, timeline
            # Node health: both nodes, each with its own viewers.
            nodes = {n["node"]: n["online"] for n in timeline["nodes"]}
            assert sorted(nodes.values()) == [2, 2], timeline
            assert cockpit.locator("#nodes li[data-stale='false']").count() == 2
            # One viewer on node a, then on node b: one more unique viewer, not two.
            with a.http() as http:
                body = {"role": "viewer", "user_id": "mover", "name": "Mover"}
                r = http.post(f"/api/v1/rooms/{ROOM}/tokens", json=body)
                assert r.status_code == 201, r.text
                mover = r.json()["token"]
            for base in (a.base, b.base, a.base):
                with viewer_ws(base, ROOM, token=mover):
                    pass
            cockpit.wait_for_function(
                "() => document.querySelector('[data-figure=unique]').textContent === '5'"
            )
            cockpit.wait_for_timeout(2500)  # one more round of reports: still 5
            assert figure(cockpit, "unique") == "5"
            assert figure(cockpit, "rate") == "60 %"  # 3 of 5
            with b.http(tokens["host"]) as http:
                stats = http.get(f"/api/v1/rooms/{ROOM}/stats").json()
            assert stats["unique_viewers"] == 5, stats
            assert a2 is not None
    finally:
        if cockpit is not None:
            cockpit.close()  # before its node goes: no failed polls or sockets
        for node in (a, b):
            if node is not None:
                stop_node(node)
