"""The event report as one HTML page (``GET /api/v1/rooms/{id}/report?format=html``,
``hudong report``): self-contained (inline CSS, inline SVG bars, exports as ``data:``
links; it fetches nothing), in Chinese or English, and laid out to print.

A ``timeline`` in the report (``[{"at": ms, "viewers": n, "participants": n, …}]``, one
point a minute, from whatever keeps the room's per-minute series) becomes line charts.
It renders each interaction's report section generically, as its kind wrote it: a list
of options with counts becomes a bar chart, any other list of records a table, numbers
and words a list of figures. No kind is named here; a kind that wants more shapes its
section. An audited interaction (a draw) gets its commitment and how to verify it.
Pure: the caller gathers the report, the audit log and the exports."""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from server.interactions.kind import to_csv

LANGS = ("zh", "en")
JSON_TYPE = "application/json"
TEXT: dict[str, dict[str, str]] = {
    "report": {"zh": "活动报告", "en": "Event report"},
    "room": {"zh": "房间", "en": "Room"},
    "made": {"zh": "生成时间", "en": "Made at"},
    "created": {"zh": "创建时间", "en": "Created"},
    "contents": {"zh": "目录", "en": "Contents"},
    "interactions": {"zh": "互动结果", "en": "Interactions"},
    "moderation": {"zh": "管理与审核摘要", "en": "Moderation and host actions"},
    "action": {"zh": "操作", "en": "Action"},
    "ok": {"zh": "成功", "en": "Done"},
    "refused": {"zh": "被拒绝", "en": "Refused"},
    "muted": {"zh": "禁言中", "en": "Muted now"},
    "banned": {"zh": "已封禁", "en": "Banned"},
    "none": {"zh": "无", "en": "none"},
    "exports": {"zh": "导出", "en": "Exports"},
    "all_json": {"zh": "整份报告 (JSON)", "en": "Whole report (JSON)"},
    "verify": {"zh": "抽奖验证", "en": "Verify the draw"},
    "verify_how": {
        "zh": "开奖前公布的承诺值是种子的 SHA-256。下载审计记录，运行以下命令重新计算：",
        "en": "The commitment published before the draw is the SHA-256 of its seed. "
        "Download the audit record and recompute the draw with:",
    },
    "commitment": {"zh": "承诺值", "en": "Commitment"},
    "rows": {"zh": "行", "en": "rows"},
    "phase": {"zh": "状态", "en": "Phase"},
    "kind": {"zh": "类型", "en": "Kind"},
    # keys of the sections, where a plain word reads better than the key
    "count": {"zh": "数量", "en": "Count"},
    "total": {"zh": "总数", "en": "Total"},
    "voters": {"zh": "投票人数", "en": "Voters"},
    "players": {"zh": "参与人数", "en": "Players"},
    "entrants": {"zh": "参与抽奖人数", "en": "Entrants"},
    "answers": {"zh": "回答数", "en": "Answers"},
    "picks": {"zh": "选择数", "en": "Picks"},
    "pending": {"zh": "待审", "en": "Pending"},
    "rejected": {"zh": "已拒绝", "en": "Rejected"},
    "winners": {"zh": "中奖者", "en": "Winners"},
    "leaderboard": {"zh": "排行榜", "en": "Leaderboard"},
    "questions": {"zh": "问题", "en": "Questions"},
    "posts": {"zh": "上墙内容", "en": "Posts"},
    "queue": {"zh": "审核队列", "en": "Moderation queue"},
    "results": {"zh": "结果", "en": "Results"},
    "final": {"zh": "最终方案", "en": "Final design"},
    "claims": {"zh": "领奖码", "en": "Claim codes"},
    "name": {"zh": "昵称", "en": "Name"},
    "text": {"zh": "内容", "en": "Text"},
    "votes": {"zh": "票数", "en": "Votes"},
    "points": {"zh": "得分", "en": "Points"},
    "rank": {"zh": "名次", "en": "Rank"},
    "seed": {"zh": "种子", "en": "Seed"},
    "status": {"zh": "进度", "en": "Progress"},
    "state": {"zh": "进度", "en": "Progress"},
    "options": {"zh": "选项", "en": "Options"},
    "slots": {"zh": "组件", "en": "Slots"},
    "names": {"zh": "昵称", "en": "Names"},
    "counts": {"zh": "计数", "en": "Counts"},
    "opened_at": {"zh": "开始", "en": "Opened"},
    "closes_at": {"zh": "计划结束", "en": "Closes"},
    "closed_at": {"zh": "结束", "en": "Closed"},
    "revealed_at": {"zh": "揭晓", "en": "Revealed"},
    "asked_at": {"zh": "提问时间", "en": "Asked"},
    "posted_at": {"zh": "发布时间", "en": "Posted"},
    "approved_at": {"zh": "通过时间", "en": "Approved"},
    "drawn_at": {"zh": "开奖时间", "en": "Drawn"},
    "pinned_at": {"zh": "置顶时间", "en": "Pinned"},
    "answered_at": {"zh": "回答时间", "en": "Answered"},
    "option": {"zh": "选项", "en": "Option"},
    "option_label": {"zh": "选项名", "en": "Option name"},
    "slot": {"zh": "组件", "en": "Slot"},
    "viewer": {"zh": "观众", "en": "Viewer"},
    "viewer_id": {"zh": "观众", "en": "Viewer"},
    "winner": {"zh": "中奖者", "en": "Winner"},
    "correct": {"zh": "正确", "en": "Correct"},
    "leader": {"zh": "领先", "en": "Leading"},
    "locked": {"zh": "已锁定", "en": "Locked"},
    "answer": {"zh": "回答", "en": "Answer"},
    "code": {"zh": "领奖码", "en": "Code"},
    "claimed_at": {"zh": "领取时间", "en": "Claimed"},
    "time": {"zh": "用时 (秒)", "en": "Time (s)"},
    "share": {"zh": "占比", "en": "Share"},
    "label": {"zh": "名称", "en": "Label"},
    "timeline": {"zh": "时间线", "en": "Timeline"},
    "peak": {"zh": "峰值", "en": "peak"},
    "viewers": {"zh": "在线观众", "en": "Viewers"},
    "participants": {"zh": "参与人数", "en": "Participants"},
    "unique_viewers": {"zh": "独立观众", "en": "Unique viewers"},
}
# Keys that only repeat what the heading says, or that are no result.
SKIPPED = {"spec", "id", "hidden", "image_url", "more", "round", "previous"}
LONG_FIGURE = 24  # characters: a longer figure is set small, on a line of its own
MEASURES = ("count", "points")  # what a bar's length shows
NAMES = ("label", "term", "rating", "id")  # what names a bar
TITLE_KEYS = ("title", "question", "text", "label")
PALETTE = ("#e4007f", "#ffc400", "#2b7de9", "#1aa260", "#8e44ad", "#e67e22")

CSS = """
:root { --brand: %(brand)s; --ink: #1b1b1f; --muted: #666; }
* { box-sizing: border-box; }
body { font: 14px/1.5 system-ui, "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei",
  "WenQuanYi Micro Hei", sans-serif;
  color: var(--ink); margin: 0 auto; max-width: 960px; padding: 24px; }
h1 { border-bottom: 4px solid var(--brand); padding-bottom: 8px; margin: 0 0 4px; }
h2 { margin: 32px 0 8px; color: var(--brand); }
h3 { margin: 16px 0 6px; font-size: 15px; }
.meta, .kind { color: var(--muted); }
section.interaction { border: 1px solid #ddd; border-radius: 8px; padding: 12px 16px;
  margin: 16px 0; break-inside: avoid-page; }
dl.figures { display: flex; flex-wrap: wrap; gap: 8px 24px; margin: 8px 0; }
dl.figures div { min-width: 100px; }
dl.figures dt { color: var(--muted); font-size: 12px; }
dl.figures dd { margin: 0; font-size: 20px; font-weight: 600; overflow-wrap: anywhere; }
dl.figures dd.long { font: 12px/1.4 ui-monospace, monospace; }
dl.figures div.long { flex-basis: 100%%; }
table { border-collapse: collapse; width: 100%%; margin: 6px 0 12px; font-size: 12px; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 3px 6px; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
th { background: #f6f6f8; white-space: nowrap; }
svg.bars { display: block; margin: 4px 0 12px; }
svg.bars text, svg.timeline text { font-size: 12px; fill: var(--ink); }
svg.timeline { display: block; margin: 4px 0 12px; }
.verify { background: #fff8e1; border-left: 4px solid #ffc400; padding: 8px 12px; }
code, pre { font: 12px/1.4 ui-monospace, monospace; overflow-wrap: anywhere; }
pre { white-space: pre-wrap; margin: 4px 0; }
a.export { margin-right: 12px; }
@media print {
  body { max-width: none; padding: 0; }
  a.export { color: var(--ink); text-decoration: none; }
  nav { display: none; }
  h2 { break-after: avoid-page; }
  tr, svg { break-inside: avoid; }
}
@page { size: A4; margin: 14mm; }
"""


def _t(key: str, lang: str) -> str:
    words = TEXT.get(key)
    return words[lang] if words else key.replace("_", " ")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _time(value: float) -> str:
    seconds = value / 1000 if value > 1e11 else value  # ms or s since the epoch
    at = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "✓" if value else "—"
    if value is None:
        return "—"
    is_time = key == "at" or key.endswith("_at")
    if isinstance(value, (int, float)) and is_time and not isinstance(value, bool):
        return _time(value) if value > 1e9 else "—"  # 0: since the room began
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _title(record: Mapping[str, Any], fallback: str) -> str:
    for key in TITLE_KEYS:
        if isinstance(record.get(key), str) and record[key]:
            return str(record[key])
    return fallback


def _bars(items: list[tuple[str, float, str]]) -> str:
    """A horizontal bar chart: one bar per (label, count, note)."""
    top = max((count for _, count, _ in items), default=0) or 1
    row, label_w, bar_w = 24, 200, 420
    height = row * len(items) + 4
    parts = [
        f'<svg class="bars" role="img" width="{label_w + bar_w + 120}" height="{height}" '
        f'viewBox="0 0 {label_w + bar_w + 120} {height}">'
    ]
    for i, (label, count, note) in enumerate(items):
        y = i * row + 2
        width = bar_w * count / top
        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_e(label[:28])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{width:.1f}" height="{row - 8}" '
            f'rx="3" fill="{colour}"/>'
            f'<text x="{label_w + width + 6:.1f}" y="{y + 15}">{_e(note)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _measure(items: Any) -> tuple[str, str] | None:
    """The (measure, name) keys when ``items`` are things with a number each (options
    with counts or points, terms, ratings): a bar chart; else None."""
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        return None
    for measure in MEASURES:
        if all(_number(i.get(measure)) for i in items):
            for name in NAMES:
                if all(name in i for i in items):
                    return measure, name
    return None


def _value(point: Mapping[str, Any], key: str) -> float:
    value: Any = point.get(key)
    return float(value) if _number(value) else 0.0


def timeline_points(minutes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The room's per-minute timeline (server/rooms/timeline.py) as the report's points:
    viewers, participants and each activity per minute (the degrade level is the
    cockpit's, on another scale)."""
    skip = {"minute", "online", "degrade"}
    return [
        {"at": m["minute"], "viewers": m["online"]} | {k: v for k, v in m.items() if k not in skip}
        for m in minutes
    ]


def timeline_chart(points: Any, lang: str) -> str:
    """Lines over the event: ``points`` is ``[{"at": ms, "viewers": n, …}]``, one per
    minute; each other number is a line, named in the legend with its peak."""
    if not isinstance(points, list):
        return ""
    points = [p for p in points if isinstance(p, dict) and _number(p.get("at"))]
    series = list(
        dict.fromkeys(k for p in points for k, v in p.items() if k != "at" and _number(v))
    )
    if len(points) < 2 or not series:
        return ""
    width, height, left, top = 720, 220, 48, 12
    first, last = points[0]["at"], points[-1]["at"]
    span = (last - first) or 1
    peak = max(_value(p, k) for p in points for k in series) or 1
    # The legend: three names a row, as many rows as the lines need.
    per_row, row_height = 3, 18
    tall = top + height + 40 + row_height * ((len(series) - 1) // per_row)
    parts = [
        f'<svg class="timeline" role="img" width="{width}" height="{tall}" '
        f'viewBox="0 0 {width} {tall}">',
        f'<line x1="{left}" y1="{top + height}" x2="{width}" y2="{top + height}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 10}" text-anchor="end">{peak:g}</text>',
        f'<text x="{left - 4}" y="{top + height}" text-anchor="end">0</text>',
        f'<text x="{left}" y="{top + height + 14}">{_e(_time(first)[11:16])}</text>',
        f'<text x="{width}" y="{top + height + 14}" text-anchor="end">'
        f"{_e(_time(last)[11:16])}</text>",
    ]
    for i, key in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        xy = " ".join(
            f"{left + (width - left) * (p['at'] - first) / span:.1f},"
            f"{top + height - height * _value(p, key) / peak:.1f}"
            for p in points
        )
        most = max(_value(p, key) for p in points)
        parts.append(f'<polyline points="{xy}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(
            f'<text x="{left + (i % per_row) * (width - left) // per_row}" '
            f'y="{top + height + 34 + (i // per_row) * row_height}" fill="{colour}">'
            f"{_e(_t(key, lang))} ({_e(_t('peak', lang))} {most:g})</text>"
        )
    parts.append("</svg>")
    return f"<h2>{_e(_t('timeline', lang))}</h2>" + "".join(parts)


def _chartable(items: Any) -> bool:
    return _measure(items) is not None


def _option_chart(items: list[dict[str, Any]]) -> str:
    measure, name = _measure(items) or ("count", "id")
    bars = []
    for item in items:
        label = str(item.get("label") or item.get(name))
        note = f"{item[measure]:g}"
        if _number(item.get("share")):
            note += f" ({item['share'] * 100:.1f}%)"
        bars.append((label, float(item[measure]), note))
    return _bars(bars)


def _table(items: list[dict[str, Any]], lang: str) -> str:
    columns: dict[str, None] = {}
    for item in items:
        columns.update(dict.fromkeys(k for k in item if k not in SKIPPED))
    head = "".join(f"<th>{_e(_t(c, lang))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(_scalar(c, item.get(c)))}</td>" for c in columns) + "</tr>"
        for item in items
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _block(key: str, value: Any, lang: str, depth: int) -> str:
    """A non-scalar part of a section: a chart, a table, or a nested part."""
    heading = f"<h3>{_e(_t(key, lang))}</h3>" if key else ""
    if isinstance(value, dict):
        if value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()
        ):  # {word: count}
            return heading + _bars([(str(k), float(v), f"{v:g}") for k, v in value.items()])
        return heading + _render(value, lang, depth + 1)
    if not value:
        return ""
    if _chartable(value):
        named = any(
            isinstance(v, str) and k not in NAMES for item in value for k, v in item.items()
        )  # more words than a label (a final design's chosen options): a table as well
        return heading + _option_chart(value) + (_table(value, lang) if named else "")
    if all(isinstance(v, dict) for v in value):
        nested = [k for v in value for k, x in v.items() if _chartable(x) if k not in SKIPPED]
        if nested and depth < 3:  # records that each hold a chart (a quiz's questions)
            return heading + "".join(
                f"<h3>{_e(_title(v, str(v.get('id', ''))))}</h3>" + _render(v, lang, depth + 1)
                for v in value
            )
        return heading + _table(value, lang)
    return heading + f"<p>{_e(_scalar(key, value))}</p>"


def _render(part: Mapping[str, Any], lang: str, depth: int = 0) -> str:
    figures, blocks = [], []
    for key, value in part.items():
        if key in SKIPPED or key in TITLE_KEYS:
            continue
        if _is_scalar(value) or (isinstance(value, list) and all(map(_is_scalar, value))):
            text = _scalar(key, value)
            long = ' class="long"' if len(text) > LONG_FIGURE else ""  # a hash, a list of ids
            figures.append(
                f"<div{long}><dt>{_e(_t(key, lang))}</dt><dd{long}>{_e(text)}</dd></div>"
            )
        else:
            blocks.append(_block(key, value, lang, depth))
    dl = f'<dl class="figures">{"".join(figures)}</dl>' if figures else ""
    return dl + "".join(blocks)


def _find(value: Any, key: str) -> Any:
    """The first value under ``key`` anywhere in ``value`` (a draw's commitment)."""
    if isinstance(value, dict):
        if key in value:
            return value[key]
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = _find(item, key)
            if found is not None:
                return found
    return None


def data_link(name: str, media_type: str, content: bytes, label: str) -> str:
    """A link that downloads ``content`` as ``name`` with nothing fetched."""
    encoded = base64.b64encode(content).decode()
    return (
        f'<a class="export" download="{_e(name)}" '
        f'href="data:{media_type};base64,{encoded}">{_e(label)}</a>'
    )


def _verify(room_id: str, iid: str, section: Mapping[str, Any], lang: str) -> str:
    commitment = _find(section, "commitment")
    audit = f"/api/v1/rooms/{room_id}/interactions/{iid}/audit"
    command = (
        f'curl -s -H "Authorization: Bearer $TOKEN" "$HUDONG_URL{audit}" > {iid}-audit.json\n'
        f"hudong verify-draw {iid}-audit.json"
        + (f" --commitment {commitment}" if commitment else "")
    )
    return (
        f'<div class="verify"><h3>{_e(_t("verify", lang))}</h3>'
        f"<p>{_e(_t('commitment', lang))}: <code>{_e(commitment or '—')}</code></p>"
        f"<p>{_e(_t('verify_how', lang))}</p><pre>{_e(command)}</pre></div>"
    )


def moderation_summary(
    entries: Iterable[Mapping[str, Any]], listing: Mapping[str, Any]
) -> dict[str, Any]:
    """What the room's staff did, from its audit log: each action with how many times it
    was done and refused, and who is muted or banned now."""
    done: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for entry in entries:
        action = str(entry.get("action", ""))
        (done if entry.get("result") == "ok" else refused)[action] += 1
    actions = [{"action": a, "ok": done[a], "refused": refused[a]} for a in sorted(done | refused)]
    return {
        "actions": actions,
        "muted": len(listing.get("muted", [])),
        "banned": len(listing.get("banned", [])),
    }


def render(
    report: Mapping[str, Any],
    exports: Mapping[str, list[dict[str, Any]]],
    audited: set[str],
    lang: str = "zh",
) -> str:
    """The report page. ``exports``: each interaction's export rows by id; ``audited``:
    the ids of interactions that keep an audit record (draws)."""
    lang = lang if lang in LANGS else "zh"
    room = report["room"]
    room_id = str(room["id"])
    brand = str(room.get("settings", {}).get("brand_color") or "#e4007f")
    if not (brand.startswith("#") and brand[1:].isalnum() and len(brand) <= 9):
        brand = "#e4007f"
    whole = orjson.dumps(report, option=orjson.OPT_INDENT_2)
    out = [
        f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{_e(_t('report', lang))} · {_e(room.get('title') or room_id)}</title>"
        f"<style>{CSS % {'brand': brand}}</style></head><body>",
        f"<h1>{_e(_t('report', lang))} · {_e(room.get('title') or room_id)}</h1>",
        f'<p class="meta">{_e(_t("room", lang))} <code>{_e(room_id)}</code> · '
        f"{_e(_t('created', lang))} {_e(_time(room.get('created_at', 0)))} · "
        f"{_e(_t('made', lang))} {_e(_time(report.get('at', 0)))}</p>",
        f"<p>{data_link(f'{room_id}-report.json', JSON_TYPE, whole, _t('all_json', lang))}</p>",
        f"<nav><h2>{_e(_t('contents', lang))}</h2><ol>",
    ]
    sections = report.get("interactions", [])
    for s in sections:
        title = _title(s["section"].get("spec", {}), s["id"])
        out.append(f'<li><a href="#i-{_e(s["id"])}">{_e(title)}</a></li>')
    out.append("</ol></nav>" + timeline_chart(report.get("timeline"), lang))
    out.append(f"<h2>{_e(_t('interactions', lang))}</h2>")
    for s in sections:
        iid, section = str(s["id"]), s["section"]
        title = _title(section.get("spec", {}), iid)
        rows = exports.get(iid, [])
        links = (
            data_link(f"{iid}.csv", "text/csv", to_csv(rows).encode(), "CSV")
            + data_link(f"{iid}.json", "application/json", orjson.dumps({"rows": rows}), "JSON")
            + f'<span class="meta">{len(rows)} {_e(_t("rows", lang))}</span>'
        )
        out.append(
            f'<section class="interaction" id="i-{_e(iid)}" data-kind="{_e(s["kind"])}">'
            f'<h2>{_e(title)}</h2><p class="kind">{_e(_t("kind", lang))}: {_e(s["kind"])} · '
            f"<code>{_e(iid)}</code></p>"
            + _render(section, lang)
            + (_verify(room_id, iid, section, lang) if iid in audited else "")
            + f'<p class="exports">{_e(_t("exports", lang))}: {links}</p></section>'
        )
    moderation = report.get("moderation")
    if isinstance(moderation, dict):
        out.append(f'<section id="moderation"><h2>{_e(_t("moderation", lang))}</h2>')
        out.append(
            '<dl class="figures">'
            f"<div><dt>{_e(_t('muted', lang))}</dt><dd>{moderation.get('muted', 0)}</dd></div>"
            f"<div><dt>{_e(_t('banned', lang))}</dt><dd>{moderation.get('banned', 0)}</dd></div>"
            "</dl>"
        )
        actions = moderation.get("actions") or []
        if actions:
            head = "".join(f"<th>{_e(_t(k, lang))}</th>" for k in ("action", "ok", "refused"))
            body = "".join(
                f"<tr><td>{_e(a['action'])}</td><td>{a['ok']}</td><td>{a['refused']}</td></tr>"
                for a in actions
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        else:
            out.append(f"<p>{_e(_t('none', lang))}</p>")
        out.append("</section>")
    out.append("</body></html>")
    return "".join(out)
