"""Config: precedence flag > env > file > default; errors name the key, the value, what is allowed and where."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

import pytest

from footsort.system import config, configfile, paths
from footsort.system.config import Config, ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert config.load(tmp_path / "nope.toml", environ={}) == Config()


def test_default_path_is_in_the_config_dir() -> None:
    assert paths.config_file() == paths.config_dir() / "config.toml"
    assert config.load() == Config()


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    p = write(tmp_path, "[sort]\nthreshold = 0.7\nbatch_size = 4\n")
    assert config.load(p, environ={}).sort.threshold == 0.7
    env = {"FOOTSORT_SORT_THRESHOLD": "0.9"}
    cfg = config.load(p, environ=env)
    assert (cfg.sort.threshold, cfg.sort.batch_size) == (0.9, 4)
    cfg = config.load(p, environ=env, overrides={"sort": {"threshold": 0.95, "batch_size": None}})
    assert (cfg.sort.threshold, cfg.sort.batch_size) == (0.95, 4)  # None: flag not given


def test_env_text_is_parsed(tmp_path: Path) -> None:
    env = {"FOOTSORT_LOG_FILE": "no", "FOOTSORT_PLUGINS_ENABLED": "xmp, export", "FOOTSORT_SORT_BATCH_SIZE": "16"}
    cfg = config.load(tmp_path / "none.toml", environ=env)
    assert cfg.log.file is False
    assert cfg.plugins.enabled == ("xmp", "export")
    assert cfg.sort.batch_size == 16


def test_unknown_key_names_dotted_key_file_and_allowed(tmp_path: Path) -> None:
    p = write(tmp_path, "[sort]\nthreshhold = 0.5\n")
    with pytest.raises(ConfigError) as exc:
        config.load(p, environ={})
    msg = str(exc.value)
    assert "sort.threshhold" in msg and str(p) in msg
    assert "did you mean threshold?" in msg and "batch_size" in msg


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[sort]\nthreshold = 1.5\n", ["sort.threshold = 1.5", "a number from 0 to 1"]),
        ("[sort]\nthreshold = 'high'\n", ["sort.threshold = 'high'", "a number from 0 to 1"]),
        ("[sort]\nbatch_size = 0\n", ["sort.batch_size = 0", "a whole number of 1 or more"]),
        ("[sort]\nbatch_size = 2.5\n", ["sort.batch_size = 2.5", "whole number"]),
        ("[watch]\npoll = -1\n", ["watch.poll = -1", "0 or more"]),
        ("[sort]\nthreshold = nan\n", ["sort.threshold = nan"]),
        ("[model]\ndevice = 'gpu'\n", ["model.device = 'gpu'", "'auto', 'cpu', 'cuda', 'mps'"]),
        ("[log]\nlevel = 'debug'\n", ["log.level = 'debug'", "'DEBUG'"]),
        ("[log]\njson = 'yes'\n", ["log.json = 'yes'", "true or false"]),
        ("[plugins]\nenabled = 'xmp'\n", ["plugins.enabled = 'xmp'", "a list of strings"]),
    ],
)
def test_bad_values_are_rejected(tmp_path: Path, text: str, expected: list[str]) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        config.load(p, environ={})
    for part in expected + [str(p)]:
        assert part in str(exc.value)


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable FOOTSORT_SORT_THRESHOLD.*from 0 to 1"):
        config.load(tmp_path / "none.toml", environ={"FOOTSORT_SORT_THRESHOLD": "abc"})
    with pytest.raises(ConfigError, match="FOOTSORT_LOG_JSON"):
        config.load(tmp_path / "none.toml", environ={"FOOTSORT_LOG_JSON": "maybe"})


def test_bad_flag_value_names_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sort.threshold = 2.0 in the command line"):
        config.load(tmp_path / "none.toml", environ={}, overrides={"sort": {"threshold": 2.0}})


def test_key_outside_section_and_unknown_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"threshold .* outside any section: put it under \[sort\]"):
        config.load(write(tmp_path, "threshold = 0.9\n"), environ={})
    with pytest.raises(ConfigError, match=r"unknown config section \[sorting\].*allowed sections are \[model\]"):
        config.load(write(tmp_path, "[sorting]\nthreshold = 0.9\n"), environ={})


def test_invalid_toml_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML.*config init --force"):
        config.load(write(tmp_path, "[sort\n"), environ={})


def test_plugin_tables_become_settings(tmp_path: Path) -> None:
    p = write(tmp_path, '[plugins]\nenabled = ["xmp"]\n[plugins.xmp]\nsidecar = "photo.xmp"\n')
    cfg = config.load(p, environ={})
    assert cfg.plugins.enabled == ("xmp",)
    assert cfg.plugins.settings == {"xmp": {"sidecar": "photo.xmp"}}
    with pytest.raises(ConfigError, match="plugins.colour"):
        config.load(write(tmp_path, "[plugins]\ncolour = 3\n"), environ={})


@dataclass(frozen=True)
class _PluginSettings:
    mode: Literal["a", "b"] = "a"
    retries: int = 3


def test_parse_section_for_plugin_settings() -> None:
    assert config.parse_section(_PluginSettings, {"mode": "b"}, "plugins.demo", "here") == _PluginSettings("b", 3)
    with pytest.raises(ConfigError, match=r"unknown config key plugins.demo.mood in here \(did you mean mode\?\)"):
        config.parse_section(_PluginSettings, {"mood": "b"}, "plugins.demo", "here")
    with pytest.raises(ConfigError, match="plugins.demo.retries = -1 in here .*0 or more"):
        config.parse_section(_PluginSettings, {"retries": -1}, "plugins.demo", "here")


def test_init_template_lists_every_key_and_round_trips(tmp_path: Path) -> None:
    text = configfile.render(Config(), commented=True)
    for name, section_type in config.section_types().items():
        assert f"[{name}]" in text
        for f in fields(section_type):
            if f.name != "settings":
                assert f"\n{f.name} = " in text
                assert config.env_var(f"{name}.{f.name}") in text
    assert "# calibrated top-class probability" in text  # the field's source comment
    assert config.load(write(tmp_path, text), environ={}) == Config()


def test_init_template_with_plugin_settings_round_trips(tmp_path: Path) -> None:
    text = configfile.render(Config(), commented=True, plugin_settings={"demo": _PluginSettings()})
    assert "[plugins.demo]" in text and 'mode = "a"' in text
    cfg = config.load(write(tmp_path, text), environ={})
    assert cfg.plugins.settings == {"demo": {"mode": "a", "retries": 3}}


def test_edited_threshold_is_read_back(tmp_path: Path) -> None:
    text = configfile.render(Config()).replace("threshold = 0.885\n", "threshold = 0.93\n")
    assert config.load(write(tmp_path, text), environ={}).sort.threshold == 0.93


def test_show_writes_effective_values(tmp_path: Path) -> None:
    cfg = config.load(tmp_path / "none.toml", environ={"FOOTSORT_PLUGINS_ENABLED": "xmp"})
    text = configfile.render(cfg, commented=False)
    assert 'enabled = ["xmp"]' in text and "#" not in text
    assert config.load(write(tmp_path, text), environ={}) == cfg


def test_toml_value_escapes_strings() -> None:
    import tomllib

    tricky = 'C:\\photos "new"\nline'
    assert tomllib.loads(f"k = {configfile.toml_value(tricky)}")["k"] == tricky
