"""Write the configuration as TOML: the commented `config init` file and `config show`, generated from the dataclasses."""

from __future__ import annotations

import inspect
import io
import json
import tokenize
import typing
from dataclasses import fields, is_dataclass
from functools import lru_cache
from typing import Any, Mapping

from footsort.system.config import Config, describe, env_var, section_types

HEADER = """\
# footsort configuration. Every key is listed with its default; edit what you need.
# Precedence: command-line flag > environment variable (shown per key) > this file > default.
# `footsort config show` prints the values in effect; `footsort config init --force` rewrites this file.
"""


def toml_value(value: Any) -> str:
    """One value as TOML (strings, numbers, booleans, lists and tables of those)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else json.dumps(name)


@lru_cache(maxsize=None)
def field_comments(cls: type) -> dict[str, str]:
    """The trailing `# comment` of each field in a dataclass's source ({} when the source is unavailable)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    names = {f.name for f in fields(cls)}
    out: dict[str, str] = {}
    last_name = ""
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME and tok.start[1] == 4 and tok.string in names:  # a field at class level
            last_name, last_row = tok.string, tok.start[0]
        elif tok.type == tokenize.COMMENT and last_name and tok.start[0] == last_row:
            out[last_name] = tok.string.lstrip("#").strip()
    return out


def _table(name: str, section: Any, commented: bool, env: bool = True) -> list[str]:
    cls = type(section)
    hints = typing.get_type_hints(cls)
    lines = []
    if commented:
        doc = (cls.__doc__ or "").strip().splitlines()
        lines += [f"# {doc[0]}"] if doc and doc[0] != f"[{name}]" else []
    lines.append(f"[{name}]")
    comments = field_comments(cls) if commented else {}
    for f in fields(cls):
        if f.name == "settings":
            continue
        if commented:
            if f.name in comments:
                lines.append(f"# {comments[f.name]}")
            sep = " (comma-separated)" if isinstance(getattr(section, f.name), (list, tuple)) else ""
            where = f"; env {env_var(f'{name}.{f.name}')}{sep}" if env else ""
            lines.append(f"# {describe(hints[f.name], f'{name}.{f.name}')}{where}")
        lines.append(f"{f.name} = {toml_value(getattr(section, f.name))}")
    return lines


def render(cfg: Config, commented: bool = True, plugin_settings: Mapping[str, Any] | None = None) -> str:
    """The whole configuration as TOML; `commented` explains each key (for `config init`).

    `plugin_settings` maps a plugin name to its settings dataclass instance (defaults), written as
    `[plugins.<name>]` tables; tables already in `cfg.plugins.settings` are written as they are.
    """
    blocks = [HEADER.rstrip("\n")] if commented else []
    for name in section_types():
        blocks.append("\n".join(_table(name, getattr(cfg, name), commented)))
    given = cfg.plugins.settings
    for name, settings in sorted((plugin_settings or {}).items()):
        if name not in given and is_dataclass(settings):
            block = _table(f"plugins.{name}", settings, commented, env=False)
            if commented:
                block.insert(0, f"# settings of the {name} plugin (used when it is in plugins.enabled)")
            blocks.append("\n".join(block))
    for name, table in given.items():
        blocks.append("\n".join([f"[plugins.{_key(name)}]", *(f"{_key(k)} = {toml_value(v)}" for k, v in table.items())]))
    return "\n\n".join(blocks) + "\n"
