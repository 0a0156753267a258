"""Range checks at start (issue 17): a setting of the right type but a senseless value
stops `hudong serve` with a message naming the setting, its variable and why, before
anything is written or bound."""

from __future__ import annotations

import pytest

from server.cli import main
from server.config import ConfigError, Settings, load_settings
from server.startup import prepare
from tests.conftest import free_port

LONG_ADMIN = "an-admin-token-long-enough"


def _prepare(env: dict[str, str], tmp_path) -> None:
    base = {"HUDONG_DATA_DIR": str(tmp_path / "data"), "HUDONG_ADMIN_TOKEN": LONG_ADMIN}
    prepare(load_settings(environ=base | env), environ={})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # negative numbers: never meaningful
        (
            {"HUDONG_HUB_TICK_MS": "-1"},
            "hub.tick_ms (HUDONG_HUB_TICK_MS) is -1; it must be more than 0",
        ),
        (
            {"HUDONG_HUB_RELAY_MS": "-5"},
            "hub.relay_ms (HUDONG_HUB_RELAY_MS) is -5; it must be 0 or more",
        ),
        ({"HUDONG_LIMITS_DUPLICATE_WINDOW_S": "-0.5"}, "limits.duplicate_window_s"),
        # zero where zero makes no sense
        (
            {"HUDONG_HUB_TICK_MS": "0"},
            "hub.tick_ms (HUDONG_HUB_TICK_MS) is 0; it must be more than 0",
        ),
        ({"HUDONG_LIMITS_MAX_FRAME_BYTES": "0"}, "limits.max_frame_bytes"),
        ({"HUDONG_LIMITS_VIEWER_COMMANDS_PER_S": "0"}, "limits.viewer_commands_per_s"),
        ({"HUDONG_HUB_HEARTBEAT_S": "0"}, "hub.heartbeat_s"),
        # not a number at all, or over the top
        ({"HUDONG_LIMITS_JOIN_TIMEOUT_S": "nan"}, "is nan; it must be a number more than 0"),
        ({"HUDONG_HUB_SLOW_TIMEOUT_S": "inf"}, "hub.slow_timeout_s"),
        (
            {"HUDONG_HUB_DEGRADE_FLOOR": "4"},
            "hub.degrade_floor (HUDONG_HUB_DEGRADE_FLOOR) is 4; it must be 0 or more, at most 3",
        ),
        ({"HUDONG_PORT": "70000"}, "server.port"),
        # secrets and names
        ({"HUDONG_SECRET": "x" * 31}, "server.secret (HUDONG_SECRET) is 31 bytes"),
        ({"HUDONG_LOG_LEVEL": "loud"}, "server.log_level (HUDONG_LOG_LEVEL) is 'loud'"),
        # settings that must agree
        (
            {"HUDONG_HUB_WRITE_BUFFER_LOW_BYTES": "300000"},
            "hub.write_buffer_low_bytes (HUDONG_HUB_WRITE_BUFFER_LOW_BYTES) is 300000, over",
        ),
        (
            {"HUDONG_HUB_HEARTBEAT_TIMEOUT_S": "25"},
            "hub.heartbeat_timeout_s (HUDONG_HUB_HEARTBEAT_TIMEOUT_S) is 25, not over hub.heart",
        ),
        (
            {"HUDONG_BRIDGES_LEASE_S": "8"},
            "bridges.lease_s (HUDONG_BRIDGES_LEASE_S) is 8, under twice bridges.renew_s (5)",
        ),
        (
            {"HUDONG_BRIDGES_RENEW_S": "0"},
            "bridges.renew_s (HUDONG_BRIDGES_RENEW_S) is 0.0; it must be more than 0",
        ),
    ],
)
def test_a_value_out_of_range_stops_the_start_and_writes_nothing(env, message, tmp_path):
    with pytest.raises(ConfigError) as caught:
        _prepare(env, tmp_path)
    assert message in str(caught.value)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HUDONG_LIMITS_MAX_ROOMS": "0"},
        {"HUDONG_LIMITS_INTERACTIONS_PER_ROOM": "0"},
        {"HUDONG_LIMITS_MAX_JOINED_BYTES": "0"},
        {"HUDONG_LIMITS_CONNECTIONS_PER_ADDRESS": "0"},
        {"HUDONG_LIMITS_PUBLIC_REQUESTS_PER_S": "0"},
        {"HUDONG_LIMITS_DUPLICATE_WINDOW_S": "0"},
        {"HUDONG_HUB_RELAY_MS": "0"},
        {"HUDONG_HUB_DEGRADE_FLOOR": "3"},
        {"HUDONG_SECRET": "x" * 32},
    ],
)
def test_zero_where_it_means_off_and_edge_values_are_accepted(env, tmp_path):
    _prepare(env, tmp_path)


def test_every_built_in_default_is_in_range(tmp_path):
    from server.config_checks import check

    check(Settings())


def test_serve_reports_the_setting_and_why_and_exits_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HUDONG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HUDONG_HUB_TICK_MS", "-10")
    code = main(["serve", "--port", str(free_port())])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("hudong: configuration error: hub.tick_ms (HUDONG_HUB_TICK_MS) is -10")
    assert not (tmp_path / "data").exists()


def test_a_short_secret_in_a_config_file_is_refused_with_its_name(monkeypatch, capsys, tmp_path):
    path = tmp_path / "h.toml"
    path.write_text('[server]\nsecret = "too-short"\n')
    for name in ("HUDONG_SECRET", "HUDONG_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HUDONG_DATA_DIR", str(tmp_path / "data"))
    code = main(["serve", "--config", str(path), "--port", str(free_port())])
    assert code == 2
    err = capsys.readouterr().err
    assert "server.secret (HUDONG_SECRET) is 9 bytes" in err and "at least 32" in err
