import tomllib
from pathlib import Path

import pytest

from server.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_reference_file_matches_built_in_defaults():
    documented = load_settings(ROOT / "config" / "hudong.toml", environ={})
    assert documented == Settings()
    data = tomllib.loads((ROOT / "config" / "hudong.toml").read_text())
    defaults = Settings()
    for section, values in data.items():
        for key in values:
            assert hasattr(getattr(defaults, section), key)
    # and every setting is documented
    for section in ("server", "limits", "hub"):
        fields = getattr(defaults, section).__dataclass_fields__
        assert set(fields) == set(data[section]), section


def test_precedence_file_then_environment_then_flags(tmp_path):
    path = tmp_path / "h.toml"
    path.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n[hub]\ntick_ms = 50\n')
    env = {"HUDONG_PORT": "9100", "HUDONG_HUB_TICK_MS": "20", "HUDONG_ADMIN_TOKEN": "t"}
    settings = load_settings(path, environ=env, flags={"port": 9200, "host": None})
    assert settings.server.port == 9200
    assert settings.server.host == "0.0.0.0"
    assert settings.hub.tick_ms == 20
    assert settings.server.admin_token == "t"
    assert load_settings(path, environ={}).server.port == 9000
    assert load_settings(path, environ={"HUDONG_PORT": "9100"}).server.port == 9100


def test_config_file_from_environment(tmp_path):
    path = tmp_path / "h.toml"
    path.write_text("[limits]\nmax_text_chars = 20\n")
    assert load_settings(environ={"HUDONG_CONFIG": str(path)}).limits.max_text_chars == 20


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[server]\nprot = 1\n", {}, "unknown setting server.prot"),
        ("[srv]\nport = 1\n", {}, "unknown section [srv]"),
        ('[server]\nport = "x"\n', {}, "server.port: expected int"),
        ("[hub]\ntick_ms = \n", {}, "invalid TOML"),
        ("", {"HUDONG_HUB_TICK_MS": "fast"}, "environment: hub.tick_ms: expected int"),
    ],
)
def test_bad_settings_say_what_is_wrong(tmp_path, text, env, message):
    path = tmp_path / "h.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(path, environ=env)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings("/nonexistent/hudong.toml", environ={})


def test_a_section_and_the_sections_inside_it_come_from_one_file_and_the_environment(tmp_path):
    path = tmp_path / "hudong.toml"
    path.write_text(
        "[bridges]\nbackoff_min_s = 2\n[bridges.twitch]\nlogin = 'bot'\n"
        "[bridges.webhook]\nmax_skew_s = 60\n"
    )
    settings = load_settings(path, environ={"HUDONG_BRIDGES_TWITCH_TOKEN": "oauth:x"})
    assert settings.bridges.backoff_min_s == 2.0
    assert (settings.bridges.twitch.login, settings.bridges.twitch.token) == ("bot", "oauth:x")
    assert settings.bridges.webhook.max_skew_s == 60.0
    path.write_text("[bridges]\ntwitch = 'x'\n")
    with pytest.raises(ConfigError, match=r"\[bridges.twitch\] must be a table"):
        load_settings(path, environ={})
