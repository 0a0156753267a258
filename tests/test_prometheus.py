"""promtool on hudong's monitoring files (issue 16, acceptance 1): a live node's
``/metrics`` passes ``promtool check metrics``; config/prometheus/'s scrape
configuration and alert rules pass ``check config`` and ``check rules``; and the
rules' unit tests (one or more per alert) pass ``test rules``.

promtool comes from Debian's ``prometheus`` package: without it these tests skip
loudly, but fail in CI (CI=true), where .ci/run installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.test_metrics_docs import busy_node

CONFIG = Path(__file__).resolve().parent.parent / "config" / "prometheus"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed: the Prometheus checks cannot run"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(f"!!! {message} (apt-get install prometheus; they run in CI)")
    return path


def run(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [promtool(), *args], input=stdin, capture_output=True, text=True, cwd=CONFIG, timeout=60
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    return out


async def test_a_live_nodes_metrics_pass_promtool(live):
    text = await busy_node(live)
    out = run("check", "metrics", stdin=text)
    # promtool's lint: no problem named at all (it prints nothing when all is well)
    assert out.strip() == "", out


def test_the_scrape_config_and_rules_pass_promtool():
    assert "SUCCESS" in run("check", "config", "prometheus.yml")
    assert "SUCCESS: 7 rules found" in run("check", "rules", "alerts.yml")


def test_every_alert_has_a_unit_test_and_they_pass():
    rules = yaml.safe_load((CONFIG / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    cases = yaml.safe_load((CONFIG / "alerts_test.yml").read_text())["tests"]
    fired = {
        test["alertname"]
        for case in cases
        for test in case["alert_rule_test"]
        if test["exp_alerts"]
    }
    silent = {
        test["alertname"]
        for case in cases
        for test in case["alert_rule_test"]
        if not test["exp_alerts"]
    }
    assert alerts == fired == silent, (alerts, fired, silent)
    assert {
        "HudongNodeDown",
        "HudongDegraded",
        "HudongDeliveryLagHigh",
        "HudongStoreErrors",
        "HudongEventLoopLag",
        "HudongRedisUnreachable",
        "HudongKeywordAlertSpike",
    } == alerts
    assert "SUCCESS" in run("test", "rules", "alerts_test.yml")


def test_a_broken_rule_test_fails(tmp_path):
    """The rule tests can fail: one that expects a silent node down to fire does."""
    broken = (
        (CONFIG / "alerts_test.yml")
        .read_text()
        .replace('values: "1 1 0 0 0 0 0 0"', 'values: "1 1 1 1 1 1 1 1"')
    )
    (tmp_path / "alerts.yml").write_text((CONFIG / "alerts.yml").read_text())
    (tmp_path / "alerts_test.yml").write_text(broken)
    done = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode != 0 and "HudongNodeDown" in done.stdout + done.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path):
    """Each Grafana query, as a recording rule (Grafana's $__rate_interval as 1m), passes
    ``promtool check rules``: a typo in a query fails here, not on an operator's screen."""
    from tests.test_metrics_docs import dashboard, queries

    rules = [
        {"record": f"hudong:dashboard:{i}", "expr": expr.replace("$__rate_interval", "1m")}
        for i, (_title, expr) in enumerate(queries(dashboard()))
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in run("check", "rules", str(path))
