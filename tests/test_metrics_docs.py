"""The metrics table (docs/metrics.md), the Grafana dashboard's queries and a live
node's ``/metrics`` agree (issue 16, acceptance 4); and what the new metrics say is
what happened: rooms that exist, delivery lag, contributions by kind."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import Metrics
from tests.conftest import UNIT, running_server
from tests.redis_fixtures import redis_server

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "metrics.md"
DASHBOARDS = ROOT / "config" / "grafana" / "dashboards"
PROVISIONING = ROOT / "config" / "grafana" / "provisioning"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def documented() -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (type, labels), from the table's rows."""
    rows = {}
    for line in TABLE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`hudong_"):
            continue
        name, type_, labels, _meaning = cells
        assert name not in rows, f"{name} is in the table twice"
        rows[name.strip("`")] = (type_, frozenset(re.findall(r"`(\w+)`", labels)))
    return rows


def scraped(text: str) -> dict[str, tuple[str, set[str]]]:
    """name (as a query names it: counters with ``_total``) -> (type, sample labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {key for sample in family.samples for key in sample.labels} - {"le"}
        found[name] = (family.type, labels)
    return found


def series_names(name: str, type_: str) -> set[str]:
    """What a query may name for a documented metric: its samples' names."""
    if type_ == "histogram":
        return {name + suffix for suffix in SUFFIXES["histogram"]}
    return {name}


async def scrape(live) -> str:
    async with live.http(token=None) as http:
        reply = await http.get("/metrics")
    assert reply.status_code == 200, reply.text
    return reply.text


async def busy_node(live) -> str:
    """A node that served a room, a danmaku and a vote; its /metrics once it counted
    both rooms (one without viewers) and delivered the danmaku."""
    await live.create_room("m1")
    await live.create_room("m2")
    host = await live.connect()
    await host.join("m1", token=await live.mint("m1", "host"))
    options = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]
    poll = {"id": "p", "question": "Which?", "kind": "single", "options": options}
    for action, fields in (("create", {"kind": "poll", "spec": poll}), ("open", {})):
        reply = await host.command("host", action=action, interaction="p", **fields)
        assert reply["type"] == "ack", reply
    viewer = await live.connect()
    await viewer.join("m1", token=await live.mint("m1", "viewer", user_id="fan"))
    assert (await viewer.command("vote", key="v", interaction="p", option="a"))["type"] == "ack"
    assert (await viewer.command("danmaku", text="你好"))["type"] == "ack"
    text = ""
    for _ in range(int(100 * UNIT)):  # presence counts the rooms every 2 s
        text = await scrape(live)
        if "hudong_rooms 2.0" in text and "hudong_delivery_lag_seconds_count 0.0" not in text:
            break
        await asyncio.sleep(0.1)
    return text


async def test_the_table_and_metrics_agree_both_ways(live):
    text = await busy_node(live)
    table = documented()
    found = scraped(text)
    assert sorted(set(found) - set(table)) == [], "on /metrics but not in docs/metrics.md"
    assert sorted(set(table) - set(found)) == [], "in docs/metrics.md but not on /metrics"
    registry = live.app.state.metrics.registry
    declared = {
        collector._name + ("_total" if collector._type == "counter" else ""): set(
            collector._labelnames
        )
        for collector in registry._collector_to_names
    }
    for name, (type_, labels) in table.items():
        assert found[name][0] == type_, f"{name}: the table says {type_}, /metrics {found[name]}"
        assert declared[name] == labels, f"{name}: the table's labels {sorted(labels)}"
        assert found[name][1] <= labels, f"{name}: /metrics has labels {found[name][1]}"
    assert not re.search(r"^hudong_\w+_created", text, re.M), "the _created samples are on"


async def test_the_new_metrics_count_what_happened(live):
    """Rooms that exist (not only those with viewers), the danmaku's delivery lag, and the
    vote counted for its kind, every other kind of the registry shown at 0."""
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(await busy_node(live))
        for sample in family.samples
    }
    assert samples[("hudong_rooms", ())] == 2
    assert samples[("hudong_rooms_active", ())] == 1
    assert samples[("hudong_delivery_lag_seconds_count", ())] >= 1
    assert samples[("hudong_store_up", ())] == 1
    kinds = {
        dict(labels)["kind"]: value
        for (name, labels), value in samples.items()
        if name == "hudong_contributions_total"
    }
    assert kinds["poll"] == 1
    assert set(kinds) == {kind.name for kind in live.rooms.registry}
    assert sum(kinds.values()) == 1, kinds


async def test_two_nodes_on_redis_measure_the_store_the_broker_and_the_lag(shared_redis):
    """A danmaku sent on node a reaches a viewer on node b: a timed its relay flush, b the
    danmaku's lag from acceptance; both pinged Redis and count the one room."""
    prefix = f"mt{uuid.uuid4().hex[:8]}:"
    server = {"redis_url": shared_redis.url, "redis_prefix": prefix}
    async with (
        running_server(server={**server, "node_id": "a"}) as a,
        running_server(server={**server, "node_id": "b"}) as b,
    ):
        await a.create_room("r")
        watcher = await b.connect()
        await watcher.join("r", token=await b.mint("r", "viewer", user_id="w"))
        sender = await a.connect()
        await sender.join("r", token=await a.mint("r", "viewer", user_id="s"))
        assert (await sender.command("danmaku", text="跨节点"))["type"] == "ack"
        for _ in range(int(100 * UNIT)):
            message = await watcher.recv_type("batch")
            if any(event.get("text") == "跨节点" for event in message["events"]):
                break
        for _ in range(int(100 * UNIT)):
            if a.metric("hudong_rooms") == b.metric("hudong_rooms") == 1 and min(
                node.metric("hudong_store_ping_seconds_count") for node in (a, b)
            ):
                break
            await asyncio.sleep(0.1)
        assert a.metric("hudong_broker_relay_seconds_count") >= 1
        assert b.metric("hudong_delivery_lag_seconds_count") >= 1
        assert b.metric("hudong_relay_messages_total", direction="in") >= 1
        for node in (a, b):
            assert node.metric("hudong_rooms") == 1
            assert node.metric("hudong_rooms_active") == 1
            assert node.metric("hudong_store_up") == 1
            assert node.metric("hudong_store_ping_seconds_count") >= 1
            assert node.metric("hudong_broker_errors_total") == 0


async def until(predicate, what: str) -> None:
    for _ in range(int(100 * UNIT)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


async def test_redis_going_away_shows_as_store_down_and_broker_errors():
    """What HudongRedisUnreachable and HudongStoreErrors watch: Redis stops, the node's
    hudong_store_up falls to 0 and a danmaku's relay flush counts a broker error; Redis
    back, hudong_store_up is 1 again."""
    with redis_server() as redis:
        server = {"redis_url": redis.url, "redis_prefix": "down:", "node_id": "a"}
        async with running_server(server=server) as node:
            await node.create_room("r")
            viewer = await node.connect()
            await viewer.join("r", token=await node.mint("r", "viewer", user_id="v"))
            await until(lambda: node.metric("hudong_store_ping_seconds_count") >= 1, "a ping")
            assert node.metric("hudong_store_up") == 1
            assert node.metric("hudong_broker_errors_total") == 0
            redis.stop()
            try:
                await until(lambda: node.metric("hudong_store_up") == 0, "store down")
                await viewer.send({"op": "danmaku", "text": "还在吗"})
                await until(lambda: node.metric("hudong_broker_errors_total") >= 1, "an error")
            finally:
                redis.start()
            await until(lambda: node.metric("hudong_store_up") == 1, "store up again")


def dashboard() -> dict[str, Any]:
    files = sorted(DASHBOARDS.glob("*.json"))
    assert len(files) == 1, files
    return dict(json.loads(files[0].read_text()))


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", ())
    ]


def test_the_dashboard_has_an_operations_row_and_an_audience_row():
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    rows: dict[str, list[str]] = {}
    current = None
    for panel in board["panels"]:
        if panel["type"] == "row":
            current = rows.setdefault(panel["title"], [])
            continue
        assert current is not None, f"{panel['title']} is above the first row"
        assert panel["targets"], f"{panel['title']} has no query"
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]
        current.append(panel["title"].lower())
    assert list(rows) == ["Operations", "Audience"]
    for row, wanted in {
        "Operations": ("nodes", "connections", "delivery lag", "tick", "degrade", "redis"),
        "Audience": ("viewers", "participation", "danmaku", "by kind"),
    }.items():
        for word in wanted:
            assert any(word in title for title in rows[row]), f"{row} has no {word} panel"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"


async def test_every_dashboard_query_names_a_metric_on_metrics(live):
    text = await busy_node(live)
    found = scraped(text)
    names = set()
    for name, (type_, _labels) in found.items():
        names |= series_names(name, type_)
    for title, expr in queries(dashboard()):
        named = set(re.findall(r"\bhudong_\w+", expr))
        assert named, f"{title}: {expr} names no hudong metric"
        assert named <= names, f"{title}: {sorted(named - names)} are not on /metrics"
    table = documented()
    for name in {
        n for _title, expr in queries(dashboard()) for n in re.findall(r"\bhudong_\w+", expr)
    }:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in table or base in table, f"{name} is not in docs/metrics.md"


def test_grafana_provisioning_points_at_the_dashboards():
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "hudong.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].endswith("dashboards")
    sources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["url"].startswith("http")


async def test_per_room_labels_are_off_by_default(live):
    """Declared (the table lists them) but with no samples: nothing by room."""
    text = await busy_node(live)
    assert "# TYPE hudong_room_viewers gauge" in text
    assert not re.search(r"^hudong_room_\w+\{room=", text, re.M), "labelled by room"


async def test_per_room_labels_with_a_cap_fold_the_rest_into_other():
    """With the setting on and a cap of 2 rooms, three rooms with 1, 2 and 3 viewers who
    each send a danmaku and vote: two rooms have their own series, the third is
    ``_other``, and the sums are the node's; the table still equals /metrics."""
    settings = {"metrics_room_labels": True, "metrics_room_labels_max": 2}
    async with running_server(server=settings) as node:
        sizes = {"x": 1, "y": 2, "z": 3}
        options = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]
        for room, n in sizes.items():
            await node.create_room(room)
            host = await node.connect()
            await host.join(room, token=await node.mint(room, "host"))
            poll = {"id": "p", "question": "Which?", "kind": "single", "options": options}
            for action, fields in (("create", {"kind": "poll", "spec": poll}), ("open", {})):
                reply = await host.command("host", action=action, interaction="p", **fields)
                assert reply["type"] == "ack", reply
            for i in range(n):
                viewer = await node.connect()
                await viewer.join(room, token=await node.mint(room, "viewer", user_id=f"v{i}"))
                assert (await viewer.command("danmaku", text="你好"))["type"] == "ack"
                vote = await viewer.command("vote", key="k", interaction="p", option="a")
                assert vote["type"] == "ack", vote

        def by_room(name: str) -> dict[str, float]:
            text = live_text[0]
            return {
                sample.labels["room"]: sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == name
            }

        live_text = [""]
        for _ in range(int(100 * UNIT)):  # viewers by room every 2 s
            live_text[0] = await scrape(node)
            if sum(by_room("hudong_room_viewers").values()) == 6:
                break
            await asyncio.sleep(0.1)
        viewers = by_room("hudong_room_viewers")
        danmaku = by_room("hudong_room_danmaku_total")
        votes = by_room("hudong_room_contributions_total")
        labelled = set(viewers) - {"_other"}
        assert len(labelled) == 2 and labelled < set(sizes) and "_other" in viewers, viewers
        (folded,) = set(sizes) - labelled
        for counts in (viewers, danmaku, votes):
            assert counts == {**{r: sizes[r] for r in labelled}, "_other": sizes[folded]}
        table = documented()
        found = scraped(live_text[0])
        assert set(found) == set(table)
        for name in ("hudong_room_viewers", "hudong_room_danmaku_total"):
            assert found[name][1] == table[name][1] == {"room"}


def test_a_room_no_longer_served_gives_its_label_back():
    metrics = Metrics(room_labels=1)
    value = metrics.registry.get_sample_value
    metrics.danmaku_in("a")
    metrics.danmaku_in("b")  # past the cap of 1
    assert value("hudong_room_danmaku_total", {"room": "a"}) == 1
    assert value("hudong_room_danmaku_total", {"room": "_other"}) == 1
    metrics.viewers_by_room({"b": 2})  # a is no longer served here: its series go
    assert value("hudong_room_danmaku_total", {"room": "a"}) is None
    assert value("hudong_room_viewers", {"room": "b"}) == 2
    assert value("hudong_room_viewers", {"room": "_other"}) == 0
    metrics.danmaku_in("b")
    assert value("hudong_room_danmaku_total", {"room": "b"}) == 1
    off = Metrics()
    off.danmaku_in("a")
    off.viewers_by_room({"a": 1})
    assert off.registry.get_sample_value("hudong_room_viewers", {"room": "a"}) is None
