"""Typed configuration: defaults < config.toml < FOOTSORT_* environment < command-line flags.

Every key lives in a section dataclass below. The environment variable for `section.key` is
`FOOTSORT_SECTION_KEY` (e.g. `FOOTSORT_SORT_THRESHOLD=0.9`). Unknown keys and bad values raise
ConfigError naming the dotted key, the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import math
import os
import sys
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, get_args, get_origin

from footsort.errors import ConfigError
from footsort.system import paths

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Device = Literal["auto", "cpu", "cuda", "mps"]
Engine = Literal["auto", "onnx", "torch"]
DuplicatePolicy = Literal["skip", "sort", "review"]


@dataclass(frozen=True)
class ModelSection:
    """Which model to use and where it runs."""

    path: str = ""  # a model file; empty: the model in use (`footsort models use`), else the shipped one
    backbone_weights: str = ""  # local MobileNetV2 state_dict for training; empty: torchvision's download
    device: Device = "auto"
    engine: Engine = "auto"  # auto: ONNX Runtime when installed and the model has an export (no GPU), else torch


@dataclass(frozen=True)
class SortSection:
    """How files are decided and moved."""

    threshold: float = 0.885  # calibrated top-class probability needed to auto-sort; else review/ (chosen on unseen sources)
    output: str = ""  # library root for class folders; empty: inside each inbox
    review_folder: str = "review"
    failed_folder: str = "failed"
    duplicates: DuplicatePolicy = "skip"  # skip: leave a copy of already-sorted content where it is
    recursive: bool = False
    batch_size: int = 8
    max_pixels: int = 89_478_485  # larger photos go to failed/ (a decode holds about 4 bytes a pixel); Pillow's own limit


@dataclass(frozen=True)
class WatchSection:
    """How inboxes are watched."""

    settle_seconds: float = 1.0
    poll: float = 0.0  # seconds between polls; 0: native events (inotify/FSEvents)
    rescan_seconds: float = 60.0
    incomplete_seconds: float = 30.0  # a file that does not decode yet is retried this long after its last change, then failed/


@dataclass(frozen=True)
class LogSection:
    """Logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"  # --verbose: DEBUG; --quiet: WARNING on stderr
    json: bool = False  # JSON lines (loguru serialize) on stderr and in the file, for journald or log shippers
    file: bool = True  # also write a rotating log file in the log dir (`footsort config path`)
    file_max_mb: int = 10  # start a new log file when the current one reaches this size
    file_keep: int = 5  # how many rotated log files to keep


@dataclass(frozen=True)
class PluginsSection:
    """Plugins: which are enabled, extra folders to look in, and per-plugin settings."""

    enabled: tuple[str, ...] = ()  # plugin names, e.g. ["xmp", "export"]
    paths: tuple[str, ...] = ()  # extra folders holding plugin modules (name.py or name/__init__.py)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # [plugins.<name>] tables


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    model: ModelSection = field(default_factory=ModelSection)
    sort: SortSection = field(default_factory=SortSection)
    watch: WatchSection = field(default_factory=WatchSection)
    log: LogSection = field(default_factory=LogSection)
    plugins: PluginsSection = field(default_factory=PluginsSection)


# Bounds for numeric keys beyond the default "0 or more": dotted key -> (minimum, maximum or None).
LIMITS: dict[str, tuple[float, float | None]] = {
    "sort.threshold": (0.0, 1.0),
    "sort.batch_size": (1, None),
    "sort.max_pixels": (1_000_000, None),
    "log.file_max_mb": (1, None),
    "log.file_keep": (1, None),
}
ENV_PREFIX = "FOOTSORT_"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

T = typing.TypeVar("T")


def section_types() -> dict[str, type]:
    """Section name -> its dataclass, in file order."""
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in fields(Config)}


# Keys whose variable has a shorter name (the one messages and docs use); the systematic one works too.
ENV_NAMES: dict[str, str] = {"model.backbone_weights": "FOOTSORT_BACKBONE_WEIGHTS"}


def _systematic_env_var(dotted: str) -> str:
    return ENV_PREFIX + dotted.replace(".", "_").upper()


def env_var(dotted: str) -> str:
    """The environment variable that overrides a dotted key: sort.threshold -> FOOTSORT_SORT_THRESHOLD."""
    return ENV_NAMES.get(dotted) or _systematic_env_var(dotted)


def _is_str_list(tp: Any) -> bool:
    args = get_args(tp)
    return (get_origin(tp) is list and args == (str,)) or (get_origin(tp) is tuple and args == (str, ...))


def describe(tp: Any, key: str = "") -> str:
    """What a key of type `tp` accepts, in words (for errors and `config init`)."""
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if _is_str_list(tp):
        return "a list of strings"
    if tp in (int, float):
        low, high = LIMITS.get(key, (0, None))
        noun = "a whole number" if tp is int else "a number"
        return f"{noun} from {low:g} to {high:g}" if high is not None else f"{noun} of {low:g} or more"
    return {bool: "true or false", str: "a string"}.get(tp, str(tp))


def _coerce(key: str, value: Any, tp: Any, from_text: bool, where: str) -> Any:
    """Check (and, for environment text, parse) one value against its annotated type."""
    bad = ConfigError(f"config key {key} = {value!r} in {where} is not valid: expected {describe(tp, key)}")
    if get_origin(tp) is Literal:
        if value not in get_args(tp):
            raise bad
        return value
    if _is_str_list(tp):
        if from_text and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise bad
        return tuple(value) if get_origin(tp) is tuple else list(value)
    if tp is bool:
        if from_text and isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        if not isinstance(value, bool):
            raise bad
        return value
    if tp in (int, float):
        if from_text and isinstance(value, str):
            try:
                value = float(value) if tp is float else int(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad
        if tp is int and not float(value).is_integer():
            raise bad
        low, high = LIMITS.get(key, (0, None))
        if value < low or (high is not None and value > high):
            raise bad
        return tp(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    return value


def _unknown_key(dotted: str, allowed: typing.Iterable[str], where: str, table: str) -> ConfigError:
    allowed = list(allowed)
    near = difflib.get_close_matches(dotted.rsplit(".", 1)[-1], allowed, n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    return ConfigError(
        f"unknown config key {dotted} in {where}{hint}: allowed keys in [{table}] are {', '.join(allowed)}"
    )


def parse_section(cls: type[T], values: Mapping[str, Any], prefix: str, where: Callable[[str], str] | str,
                  base: T | None = None, from_text: bool = False) -> T:
    """Check `values` against the frozen dataclass `cls` and return `base` (default: defaults) updated with them.

    Unknown keys and bad values raise ConfigError naming `prefix.key`, the value and what is allowed.
    Plugins use this for their `[plugins.<name>]` settings.
    """
    locate = (lambda _key: where) if isinstance(where, str) else where
    hints = typing.get_type_hints(cls)
    keys = [f.name for f in fields(cls) if f.name != "settings"]  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}.{key}"
        if key not in keys:
            raise _unknown_key(dotted, keys, locate(dotted), prefix)
        changes[key] = _coerce(dotted, value, hints[key], from_text, locate(dotted))
    return replace(base if base is not None else cls(), **changes)  # type: ignore[type-var]


def _apply(cfg: Config, values: Mapping[str, Any], from_text: bool, where: Callable[[str], str]) -> Config:
    types = section_types()
    new_sections: dict[str, Any] = {}
    for sec_name, sec_values in values.items():
        if sec_name not in types or not isinstance(sec_values, Mapping):
            homes = [s for s, t in types.items() if sec_name in {f.name for f in fields(t)}]
            if not isinstance(sec_values, Mapping) and homes:
                raise ConfigError(f"config key {sec_name} in {where(sec_name)} is outside any section: "
                                  f"put it under [{homes[0]}]")
            what = f"section [{sec_name}]" if isinstance(sec_values, Mapping) else f"key {sec_name}"
            raise ConfigError(f"unknown config {what} in {where(sec_name)}: allowed sections are "
                              + ", ".join(f"[{s}]" for s in types))
        current = getattr(cfg, sec_name)
        if sec_name == "plugins":  # [plugins.<name>] tables are the plugins' own settings
            tables = {k: dict(v) for k, v in sec_values.items() if isinstance(v, Mapping)}
            sec_values = {k: v for k, v in sec_values.items() if k not in tables}
            if tables:
                current = replace(current, settings={**current.settings, **tables})
        new_sections[sec_name] = parse_section(types[sec_name], sec_values, sec_name, where, current, from_text)
    return replace(cfg, **new_sections)


def env_values(environ: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """The FOOTSORT_SECTION_KEY variables that name a known key."""
    environ = os.environ if environ is None else environ
    out: dict[str, dict[str, str]] = {}
    for sec_name, sec_type in section_types().items():
        for f in fields(sec_type):
            if f.name == "settings":
                continue
            dotted = f"{sec_name}.{f.name}"
            for var in (env_var(dotted), _systematic_env_var(dotted)):  # the documented name wins
                if var in environ:
                    out.setdefault(sec_name, {})[f.name] = environ[var]
                    break
    return out


def read_file(path: Path) -> dict[str, Any]:
    """The raw tables of a TOML config file; {} when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}; fix it or run `footsort config init --force`") from None


def load(path: Path | None = None, environ: Mapping[str, str] | None = None,
         overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """Defaults, then the TOML file (missing is fine), then the environment, then flag overrides."""
    path = paths.config_file() if path is None else Path(path)
    cfg = _apply(Config(), read_file(path), from_text=False, where=lambda _key: f"config file {path}")
    cfg = _apply(cfg, env_values(environ), from_text=True, where=lambda key: f"environment variable {env_var(key)}")
    if overrides:
        cleaned = {s: {k: v for k, v in kv.items() if v is not None} for s, kv in overrides.items()}
        cfg = _apply(cfg, {s: kv for s, kv in cleaned.items() if kv}, from_text=False, where=lambda _key: "the command line")
    return cfg
