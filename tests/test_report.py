"""The post-event report (issue 16, acceptance 3): after a scripted event (poll, quiz,
co-design, keyword draw, Q&A, check-in, wall), `hudong report` writes report.html,
report.json and one CSV per interaction, and every figure and row in them is what the
script did; the HTML is self-contained and its draw commitment verifies the draw."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import UNIT, LiveServer
from tests.report_event import (
    ANSWERS,
    APPROVED,
    CHECKED_IN,
    FANS,
    PICKS,
    POSTS,
    QUESTIONS,
    ROOM,
    UPVOTES,
    VOTES,
    play,
)


async def hudong(*args: str) -> subprocess.CompletedProcess[str]:
    """The ``hudong`` command, as an operator runs it (in a thread: the node serves meanwhile)."""
    command = [sys.executable, "-m", "server", *args]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60 * UNIT
    )


def rows_of(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text("utf-8"))))


def section_of(page: str, iid: str) -> str:
    found = re.search(rf'<section class="interaction" id="i-{iid}".*?</section>', page, re.S)
    assert found, f"no section for {iid}"
    return found.group(0)


def data_links(part: str) -> dict[str, bytes]:
    """The downloads a part of the page carries, by file name."""
    links = re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', part)
    return {name: base64.b64decode(data) for name, data in links}


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s["section"] for s in report["interactions"]}


async def test_the_report_files_hold_exactly_what_the_event_did(live: LiveServer, tmp_path):
    played = await play(live)
    ids = played["ids"]
    names = {ids[sub]: name for sub, name in FANS.items()}
    token = await live.mint(ROOM, "host")
    out = tmp_path / "report"
    done = await hudong("report", ROOM, "--url", live.base, "--token", token, "--out", str(out))
    assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in out.iterdir())
    report = json.loads((out / "report.json").read_text("utf-8"))
    sections = by_id(report)
    csvs = [f"{iid}.csv" for iid in sections]
    assert files == sorted(["report.html", "report.json", *csvs])
    # The room's minutes so far (written every 2 s): never more than happened.
    for point in report["timeline"]:
        assert {"at", "viewers", "participants", "danmaku"} <= set(point), point
    # ("votes": every contribution, PROTOCOL.md "Stats"; the draw's one keyword entry too)
    contributions = [VOTES, ANSWERS, PICKS, QUESTIONS, UPVOTES, CHECKED_IN]
    assert sum(p.get("votes", 0) for p in report["timeline"]) <= sum(map(len, contributions)) + 1

    # The figures of report.json.
    poll = sections["poll"]["results"]
    assert poll["voters"] == len(VOTES)
    assert {o["id"]: o["count"] for o in poll["options"]} == {
        o: list(VOTES.values()).count(o) for o in ("classic", "spicy", "veggie")
    }
    quiz = sections["quiz"]
    right = {ids[s] for s, a in ANSWERS.items() if a == "b"}
    assert quiz["players"] == len(ANSWERS)
    assert {r["viewer"] for r in quiz["leaderboard"] if r["correct"] == 1} == right
    assert {r["viewer"]: r["name"] for r in quiz["leaderboard"]} == {
        ids[s]: FANS[s] for s in ANSWERS
    }
    final = sections["burger"]["final"]["slots"]
    assert [(s["slot"], s["option"], s["count"]) for s in final] == [("bun", "sesame", 2)]
    draw = sections["draw"]
    assert draw["entrants"] == 1 and draw["state"]["winners"] == [ids["fan0"]] == played["winners"]
    qa = sections["qa"]["questions"]
    assert [(q["text"], q["votes"]) for q in qa] == [
        (QUESTIONS["fan0"], len(UPVOTES)),
        (QUESTIONS["fan1"], 0),
    ]
    assert sections["checkin"]["count"] == len(CHECKED_IN)
    wall = sections["wall"]
    assert [p["text"] for p in wall["posts"]] == [POSTS[APPROVED]]
    assert [p["text"] for p in wall["queue"]] == [t for s, t in POSTS.items() if s != APPROVED]
    moderation = report["moderation"]
    assert moderation["muted"] == 1 and moderation["banned"] == 0
    actions = {a["action"]: (a["ok"], a["refused"]) for a in moderation["actions"]}
    assert actions["moderation.mute"] == (1, 0)
    assert actions["interaction.approve"] == (1, 0)
    assert actions["interaction.run"] == (1, 0)

    # Every row of every CSV.
    def rows(iid: str, *columns: str) -> set[tuple[str, ...]]:
        return {tuple(r[c] for c in columns) for r in rows_of(out / f"{iid}.csv")}

    assert rows("poll", "viewer", "name", "choice") == {
        (ids[s], FANS[s], option) for s, option in VOTES.items()
    }
    assert rows("quiz", "viewer", "name", "correct") == {
        (ids[s], FANS[s], "1" if a == "b" else "0") for s, a in ANSWERS.items()
    }
    assert rows("burger", "viewer", "slot", "option") == {
        (ids[s], "bun", option) for s, option in PICKS.items()
    }
    assert rows("draw", "viewer", "name", "won") == {(ids["fan0"], FANS["fan0"], "True")}
    assert rows("qa", "viewer_id", "name", "text", "votes") == {
        (ids[s], FANS[s], text, str(len(UPVOTES) if s == "fan0" else 0))
        for s, text in QUESTIONS.items()
    }
    assert rows("checkin", "viewer", "name") == {(ids[s], FANS[s]) for s in CHECKED_IN}
    assert rows("wall", "viewer_id", "name", "text") == {
        (ids[s], FANS[s], text) for s, text in POSTS.items()
    }
    assert len(rows_of(out / "reactions.csv")) == len(sections["reactions"]["counts"])
    assert set(names) >= {r["viewer"] for r in rows_of(out / "poll.csv")}

    # The HTML: the same figures, the same exports, a draw anyone can verify.
    page = (out / "report.html").read_text("utf-8")
    assert "活动报告" in page and 'lang="zh-CN"' in page
    assert "http://" not in page and "https://" not in page and " src=" not in page
    polled = section_of(page, "poll")
    for label, count, share in (("经典", 2, "50.0"), ("香辣", 1, "25.0"), ("蔬菜", 1, "25.0")):
        assert f">{label}</text>" in polled and f">{count} ({share}%)</text>" in polled
    assert "<dd>3</dd>" in section_of(page, "checkin")  # the check-in count
    for text in (*QUESTIONS.values(), *POSTS.values()):
        assert text in page
    assert "Ann &lt;i&gt;" in page and "Ann <i>" not in page  # names are text, never markup
    assert "<td>bun</td><td>Bun</td><td>sesame</td><td>Sesame</td>" in section_of(page, "burger")
    quizzed = section_of(page, "quiz")
    for row in quiz["leaderboard"]:  # the leaderboard, with each viewer's points
        assert f"<td>{row['rank']}</td><td>{row['viewer']}</td>" in quizzed
        assert f"</td><td>{row['points']}</td><td>{row['correct']}</td>" in quizzed
    async with live.http(token) as http:
        for iid in sections:  # the page's downloads are the exports, byte for byte
            links = data_links(section_of(page, iid))
            assert links[f"{iid}.csv"] == (out / f"{iid}.csv").read_bytes(), iid
            exported = await http.get(f"/api/v1/rooms/{ROOM}/interactions/{iid}/export")
            assert json.loads(links[f"{iid}.json"]) == exported.json(), iid
    whole = data_links(page.split("<nav>")[0])[f"{ROOM}-report.json"]
    assert by_id(json.loads(whole)) == sections
    drawn = section_of(page, "draw")
    commitment = re.search(r"--commitment ([0-9a-f]{64})", drawn)
    assert commitment and commitment.group(1) == draw["state"]["commitment"]
    assert "hudong verify-draw draw-audit.json" in drawn
    async with live.http(token) as http:
        audit = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/draw/audit")).content
    (tmp_path / "draw-audit.json").write_bytes(audit)
    verified = await hudong(
        "verify-draw", str(tmp_path / "draw-audit.json"), "--commitment", commitment.group(1)
    )
    assert verified.returncode == 0 and verified.stdout.startswith("OK"), verified.stdout
    moderated = page.split('<section id="moderation">')[1]
    assert "<td>moderation.mute</td><td>1</td><td>0</td>" in moderated


async def test_the_report_in_english_by_accept_and_its_bad_requests(live: LiveServer):
    await live.create_room("r2")
    host, viewer = await live.mint("r2", "host"), await live.mint("r2", "viewer")
    path = "/api/v1/rooms/r2/report"
    async with live.http(host) as http:
        english = await http.get(path, params={"lang": "en"}, headers={"Accept": "text/html"})
        assert english.headers["content-type"].startswith("text/html")
        assert "Event report" in english.text and "活动报告" not in english.text
        as_json = await http.get(path, params={"format": "json"}, headers={"Accept": "text/html"})
        assert as_json.json()["room"]["id"] == "r2" and as_json.json()["moderation"]["muted"] == 0
        for params in ({"format": "pdf"}, {"lang": "fr"}, {"format": "html", "lang": ""}):
            refused = await http.get(path, params=params)
            assert (refused.status_code, refused.json()["error"]["code"]) == (
                400,
                "invalid_field",
            ), params
        log = (await http.get("/api/v1/rooms/r2/audit-log")).json()["entries"]
        assert [e["detail"] for e in log if e["action"] == "room.report"] == [
            {"format": "html", "exports": len(by_id(as_json.json()))}
        ]
    async with live.http(viewer) as http:
        assert (await http.get(path, params={"format": "html"})).status_code == 403


async def test_hudong_report_says_what_went_wrong(live: LiveServer, tmp_path):
    await live.create_room("r3")
    viewer = await live.mint("r3", "viewer")
    out = tmp_path / "out"
    done = await hudong("report", "r3", "--url", live.base, "--token", viewer, "--out", str(out))
    assert done.returncode == 1 and "HTTP 403" in done.stderr, done.stderr
    assert not out.exists()


def test_the_page_draws_every_shape_of_result_a_kind_writes():
    """Ranked points, a rating's histogram, a text poll's terms and a word count become
    bars with their figures; odd shapes (nested lists, nulls) still render, as text."""
    from server.report_page import render

    def poll(iid: str, results: dict[str, Any]) -> dict[str, Any]:
        section = {"spec": {"id": iid, "question": f"Q {iid}?"}, "results": results}
        return {"id": iid, "kind": "k", "section": section}

    options = [{"id": "a", "label": "Alpha", "points": 7, "first": 3}]
    options.append({"id": "b", "label": "<Beta>", "points": 2, "first": 1})
    report = {
        "room": {"id": "r", "title": "R & D", "created_at": 1_700_000_000_000, "settings": {}},
        "at": 1_700_000_100_000,
        "interactions": [
            poll("ranked", {"voters": 4, "options": options, "irv": None, "order": ["a", "b"]}),
            poll(
                "rating",
                {"mean": 4.5, "histogram": [{"rating": 4, "count": 1}, {"rating": 5, "count": 1}]},
            ),
            poll("text", {"terms": [{"term": "汉堡", "count": 3}, {"term": "fries", "count": 1}]}),
            poll("odd", {"nested": [[1, 2], {"x": None}], "none": None, "empty": [], "flag": True}),
        ],
        "moderation": {"actions": [], "muted": 0, "banned": 0},
    }
    page = render(report, {}, set(), "en")

    def bars(iid: str) -> list[str]:
        found = re.search(rf'id="i-{iid}".*?</section>', page, re.S)
        assert found, iid
        return re.findall(r"<text[^>]*>([^<]*)</text>", found.group(0))

    assert bars("ranked") == ["Alpha", "7", "&lt;Beta&gt;", "2"]
    assert bars("rating") == ["4", "1", "5", "1"]
    assert bars("text") == ["汉堡", "3", "fries", "1"]
    assert bars("odd") == [] and "<dd>4.5</dd>" in page and "R &amp; D" in page
    assert 'id="i-odd"' in page and "<dd>✓</dd>" in page


def test_a_timeline_in_the_report_becomes_lines_with_their_peaks():
    from server.report_page import render

    minute = 60_000
    timeline = [
        {"at": 1_700_000_000_000 + i * minute, "viewers": v, "participants": p}
        for i, (v, p) in enumerate(((10, 0), (120, 30), (80, 45), (5, None)))
    ]
    room = {"id": "r", "title": "R", "created_at": 1_700_000_000_000, "settings": {}}
    page = render({"room": room, "at": 0, "interactions": [], "timeline": timeline}, {}, set())
    chart = re.search(r'<svg class="timeline".*?</svg>', page, re.S)
    assert chart and chart.group(0).count("<polyline") == 2
    assert "在线观众 (峰值 120)" in chart.group(0) and "参与人数 (峰值 45)" in chart.group(0)
    first = re.search(r'<polyline points="([^"]+)"', chart.group(0))
    assert first and len(first.group(1).split()) == len(timeline)
    plain = render({"room": room, "at": 0, "interactions": []}, {}, set())
    assert 'class="timeline"' not in plain  # no series kept: no chart


def test_the_timeline_legend_stays_inside_the_chart_with_many_lines():
    """Seven lines (viewers, unique viewers, participants, danmaku, votes, posts, …) each
    get their own legend place inside the 720-pixel chart, in rows of three."""
    import re

    from server.report_page import timeline_chart

    names = ["viewers", "unique_viewers", "participants", "danmaku", "votes", "posts", "x"]
    points = [{"at": 60_000 * m, **{k: m + i for i, k in enumerate(names)}} for m in range(3)]
    svg = timeline_chart(points, "en")
    width = int(re.search(r'<svg[^>]* width="(\d+)"', svg)[1])
    height = int(re.search(r'<svg[^>]* height="(\d+)"', svg)[1])
    legend = re.findall(r'<text x="(\d+)" y="(\d+)" fill="[^"]+">([^<]+)</text>', svg)
    assert len(legend) == len(names)
    places = {(int(x), int(y)) for x, y, _ in legend}
    assert len(places) == len(names)  # no two names on one place
    for x, y, _ in legend:
        assert int(x) + 200 <= width and int(y) + 4 <= height  # 224 px each, all inside
