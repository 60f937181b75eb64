"""Typed configuration: defaults < config.toml < FOOTSORT_* environment < command-line flags.

Every key lives in a section dataclass below. The environment variable for `section.key` is
`FOOTSORT_SECTION_KEY` (e.g. `FOOTSORT_SORT_THRESHOLD=0.9`). Unknown keys and bad values raise
ConfigError naming the dotted key, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, Mapping, get_args, get_origin

from footsort import paths
from footsort.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Device = Literal["auto", "cpu", "cuda", "mps"]
DuplicatePolicy = Literal["skip", "sort", "review"]


@dataclass(frozen=True)
class ModelSection:
    """Which model to use and where it runs."""

    path: str = ""  # a model file; empty: the model in use (`footsort models use`), else the shipped one
    backbone_weights: str = ""  # local MobileNetV2 state_dict for training; empty: torchvision's download
    device: Device = "auto"


@dataclass(frozen=True)
class SortSection:
    """How files are decided and moved."""

    threshold: float = 0.80  # calibrated top-class probability needed to auto-sort; else review/
    output: str = ""  # library root for class folders; empty: inside each inbox
    review_folder: str = "review"
    failed_folder: str = "failed"
    duplicates: DuplicatePolicy = "skip"  # skip: leave a copy of already-sorted content where it is
    recursive: bool = False
    batch_size: int = 8


@dataclass(frozen=True)
class WatchSection:
    """How inboxes are watched."""

    settle_seconds: float = 1.0
    poll: float = 0.0  # seconds between polls; 0: native events (inotify/FSEvents)
    rescan_seconds: float = 60.0


@dataclass(frozen=True)
class LogSection:
    """Logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json: bool = False
    file: bool = True


@dataclass(frozen=True)
class PluginsSection:
    """Plugins: which are enabled, extra folders to look in, and per-plugin settings."""

    enabled: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # [plugins.<name>] tables


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    model: ModelSection = field(default_factory=ModelSection)
    sort: SortSection = field(default_factory=SortSection)
    watch: WatchSection = field(default_factory=WatchSection)
    log: LogSection = field(default_factory=LogSection)
    plugins: PluginsSection = field(default_factory=PluginsSection)


_SECTIONS: dict[str, type] = {f.name: f.type for f in fields(Config)}  # type: ignore[misc]


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {name: hints[name] for name in _SECTIONS}


def _describe(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) is list:
        return "a list of strings"
    return {float: "a number", int: "a whole number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _coerce(key: str, value: Any, tp: Any, from_text: bool) -> Any:
    """Check (and, for env/flag text, parse) one value against its annotated type."""
    bad = ConfigError(f"config key {key} = {value!r} is not valid: expected {_describe(tp)}")
    origin = get_origin(tp)
    if origin is Literal:
        if value not in get_args(tp):
            raise bad
        return value
    if origin is list:
        if from_text and isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad
        return list(value)
    if tp is bool:
        if from_text and isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise bad
        if not isinstance(value, bool):
            raise bad
        return value
    if tp in (int, float):
        if from_text and isinstance(value, str):
            try:
                value = tp(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if tp is int and not float(value).is_integer():
            raise bad
        if value < 0:
            raise ConfigError(f"config key {key} = {value!r} is not valid: it must not be negative")
        return tp(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    return value


def _validate_ranges(cfg: Config) -> None:
    if not 0.0 <= cfg.sort.threshold <= 1.0:
        raise ConfigError(f"config key sort.threshold = {cfg.sort.threshold} is not valid: expected a number from 0 to 1")
    if cfg.sort.batch_size < 1:
        raise ConfigError(f"config key sort.batch_size = {cfg.sort.batch_size} is not valid: expected 1 or more")


def _apply(cfg: Config, values: Mapping[str, Mapping[str, Any]], from_text: bool, origin: str) -> Config:
    types = _section_types()
    new_sections: dict[str, Any] = {}
    for sec_name, sec_values in values.items():
        if sec_name not in types:
            raise ConfigError(
                f"unknown config section [{sec_name}] in {origin}: allowed sections are " + ", ".join(types)
            )
        if not isinstance(sec_values, Mapping):
            raise ConfigError(f"config key {sec_name} in {origin} must be a table ([{sec_name}])")
        sec_type = types[sec_name]
        hints = typing.get_type_hints(sec_type)
        current = new_sections.get(sec_name, getattr(cfg, sec_name))
        changes: dict[str, Any] = {}
        for key, value in sec_values.items():
            dotted = f"{sec_name}.{key}"
            if sec_name == "plugins" and key not in hints:
                if isinstance(value, Mapping):  # [plugins.<name>] settings table
                    settings = dict(changes.get("settings", current.settings))
                    settings[key] = dict(value)
                    changes["settings"] = settings
                    continue
            if key not in hints or key == "settings":
                allowed = ", ".join(k for k in hints if k != "settings")
                raise ConfigError(f"unknown config key {dotted} in {origin}: allowed keys in [{sec_name}] are {allowed}")
            changes[key] = _coerce(dotted, value, hints[key], from_text)
        new_sections[sec_name] = replace(current, **changes)
    result = replace(cfg, **new_sections)
    _validate_ranges(result)
    return result


def env_values(environ: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """The FOOTSORT_SECTION_KEY variables that name a known key."""
    environ = os.environ if environ is None else environ
    out: dict[str, dict[str, str]] = {}
    for sec_name, sec_type in _section_types().items():
        for f in fields(sec_type):
            if f.name == "settings":
                continue
            var = f"FOOTSORT_{sec_name}_{f.name}".upper()
            if var in environ:
                out.setdefault(sec_name, {})[f.name] = environ[var]
    # historical short name from the model issue
    if "FOOTSORT_BACKBONE_WEIGHTS" in environ:
        out.setdefault("model", {}).setdefault("backbone_weights", environ["FOOTSORT_BACKBONE_WEIGHTS"])
    return out


def load(path: Path | None = None, environ: Mapping[str, str] | None = None,
         overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """Defaults, then the TOML file (missing is fine), then the environment, then flag overrides."""
    path = paths.config_file() if path is None else path
    cfg = Config()
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}; fix it or run `footsort config init --force`") from None
        cfg = _apply(cfg, data, from_text=False, origin=str(path))
    cfg = _apply(cfg, env_values(environ), from_text=True, origin="the environment")
    if overrides:
        cleaned = {s: {k: v for k, v in kv.items() if v is not None} for s, kv in overrides.items()}
        cfg = _apply(cfg, {s: kv for s, kv in cleaned.items() if kv}, from_text=False, origin="the command line")
    return cfg


def as_dict(cfg: Config) -> dict[str, Any]:
    """The configuration as plain data (for `config show`)."""
    return dataclasses.asdict(cfg)
