"""export: append every event to a JSON-lines or CSV file (for spreadsheets, scripts or log shippers).

    [plugins]
    enabled = ["export"]
    [plugins.export]
    format = "csv"
    path = "~/Pictures/footsort-events.csv"
    events = ["file_sorted", "file_reviewed"]
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from footsort.plugins.events import ALL_EVENTS, EVENT_NAMES, Event, to_dict
from footsort.plugins.host import PluginAPI
from footsort.system import paths


@dataclass(frozen=True)
class Settings:
    """[plugins.export]"""

    format: Literal["jsonl", "csv"] = "jsonl"
    path: str = ""  # file to append to; empty: events.jsonl or events.csv in the data dir
    events: tuple[str, ...] = ()  # event names to export; empty: all


def csv_columns() -> list[str]:
    """One column per event field (any event), `at` and `event` first."""
    columns = ["at", "event"]
    for event_type in ALL_EVENTS:
        columns += [f.name for f in fields(event_type) if f.name not in columns]
    return columns


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def format_line(event: Event, fmt: str) -> str:
    """One event as one line of JSON or CSV (in csv_columns() order)."""
    data = to_dict(event)
    if fmt == "jsonl":
        return json.dumps(data, ensure_ascii=False) + "\n"
    buf = io.StringIO()
    csv.writer(buf).writerow([_cell(data.get(c)) for c in csv_columns()])
    return buf.getvalue()


def header_line() -> str:
    """The CSV header."""
    buf = io.StringIO()
    csv.writer(buf).writerow(csv_columns())
    return buf.getvalue()


def target_path(settings: Settings) -> Path:
    """Where events go."""
    if settings.path:
        return Path(settings.path).expanduser()
    return paths.data_dir() / f"events.{settings.format}"


def append(path: Path, event: Event, fmt: str) -> None:
    """Append one event, writing the CSV header first into a new or empty file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name's undecodable bytes become \udcXX escapes: valid UTF-8, and json.loads + os.fsencode gives them back
    with open(path, "a", encoding="utf-8", errors="backslashreplace", newline="") as fh:
        line = format_line(event, fmt)
        if fmt == "csv" and fh.tell() == 0:
            line = header_line() + line
        fh.write(line)  # one write per event: lines from two processes never interleave


def register(api: PluginAPI) -> None:
    """Append the chosen events to the file."""
    settings = api.settings_as(Settings)
    path = target_path(settings)
    for name in settings.events or EVENT_NAMES:
        api.on(name, lambda event: append(path, event, settings.format))
    api.log.debug("appending events to {}", path)
