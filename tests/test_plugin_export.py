"""export plugin: one line per event, JSON lines or CSV with a header, in the data dir by default."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

from footsort.plugins.bundled.export import csv_columns

from footsort.plugins.events import FileFailed, FileReviewed, FileSorted
from footsort.plugins.host import PluginHost
from footsort.system import paths
from footsort.system.config import Config, PluginsSection


def run(settings: dict) -> None:
    cfg = replace(Config(), plugins=PluginsSection(enabled=("export",), settings={"export": settings}))
    host = PluginHost.from_config(cfg)
    assert host.running == ("export",), host.problems
    host.emit(FileSorted(source=Path("/in/a.jpg"), destination=Path("/in/tsinelas/a.jpg"), label="tsinelas",
                         confidence=0.97, probabilities={"tsinelas": 0.97, "sapatos": 0.03}))
    host.emit(FileReviewed(source=Path("/in/b.jpg"), label="sapatos", confidence=0.55, reason="low confidence"))
    host.emit(FileFailed(source=Path("/in/c.jpg"), reason='not an image, "really"'))
    host.close()


def test_jsonl_in_the_data_dir_by_default() -> None:
    run({})
    lines = (paths.data_dir() / "events.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["file_sorted", "file_reviewed", "file_failed"]
    assert records[0]["destination"] == "/in/tsinelas/a.jpg" and records[0]["probabilities"]["sapatos"] == 0.03


def test_csv_with_header_appends_and_filters(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "events.csv"
    settings = {"format": "csv", "path": str(target), "events": ["file_sorted", "file_failed"]}
    run(settings)
    run(settings)  # appends; the header is written once
    rows = list(csv.DictReader(target.open(encoding="utf-8", newline="")))
    assert list(rows[0]) == csv_columns()
    assert [r["event"] for r in rows] == ["file_sorted", "file_failed"] * 2
    assert rows[0]["label"] == "tsinelas" and rows[0]["confidence"] == "0.97"
    assert json.loads(rows[0]["probabilities"]) == {"sapatos": 0.03, "tsinelas": 0.97}
    assert rows[1]["reason"] == 'not an image, "really"' and rows[1]["destination"] == ""


def test_bad_format_is_reported_with_the_key() -> None:
    cfg = replace(Config(), plugins=PluginsSection(enabled=("export",), settings={"export": {"format": "xml"}}))
    host = PluginHost.from_config(cfg)
    assert "plugins.export.format = 'xml'" in host.problems["export"] and "'jsonl', 'csv'" in host.problems["export"]
