"""Logging: flags over [log], readable stderr lines, JSON lines, the rotating file, journald priorities."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest
from loguru import logger

from footsort.system import logs, paths
from footsort.system.config import LogSection


@pytest.fixture(autouse=True)
def _reset_loguru() -> Iterator[None]:
    yield
    logger.remove()


def test_plan_flags_win_over_settings(tmp_path: Path) -> None:
    settings = LogSection(level="ERROR", json=True, file=True, file_max_mb=3, file_keep=2)
    p = logs.plan(settings=settings, log_dir=tmp_path)
    assert (p.stderr_level, p.file_level, p.json, p.file) == ("ERROR", "ERROR", True, tmp_path / "footsort.log")
    assert (p.file_max_mb, p.file_keep) == (3, 2)
    assert logs.plan(verbose=True, settings=settings, log_dir=tmp_path).stderr_level == "DEBUG"
    quiet = logs.plan(quiet=True, settings=LogSection(), log_dir=tmp_path)
    assert (quiet.stderr_level, quiet.file_level) == ("WARNING", "INFO")  # --quiet quiets the terminal only
    assert logs.plan().file is None and logs.plan(file=True).file == paths.log_dir() / "footsort.log"


def test_stderr_lines_are_readable_and_levelled(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup()
    logger.debug("hidden detail")
    logger.info("sorted {}", "a.jpg")
    err = capsys.readouterr().err
    assert "INFO    sorted a.jpg" in err and "hidden" not in err
    logs.setup(quiet=True)
    logger.info("chatter")
    logger.warning("careful")
    err = capsys.readouterr().err
    assert "chatter" not in err and "WARNING careful" in err


def test_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup(json=True)
    logger.info("hello")
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert record["record"]["message"] == "hello" and record["record"]["level"]["name"] == "INFO"


def test_file_sink_in_log_dir_with_debug_when_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    p = logs.setup(verbose=True, settings=LogSection(file=True))
    assert p.file == paths.log_dir() / "footsort.log"
    logger.debug("detail for the file")
    logger.remove()  # closes the file
    text = p.file.read_text(encoding="utf-8")
    assert "DEBUG" in text and "detail for the file" in text


def test_no_file_when_disabled() -> None:
    p = logs.setup(settings=LogSection(file=False))
    logger.warning("x")
    assert p.file is None and not (paths.log_dir() / "footsort.log").exists()


def test_journald_gets_priority_prefixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = open(tmp_path / "journal", "w", encoding="utf-8")
    st = os.fstat(out.fileno())
    monkeypatch.setattr(sys, "stderr", out)
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    assert logs.stderr_is_journal()
    logs.setup()
    logger.warning("disk almost full")
    logger.info("sorted")
    logger.remove()
    out.close()
    lines = (tmp_path / "journal").read_text().splitlines()
    assert lines[0].startswith("<4>") and "disk almost full" in lines[0]
    assert lines[1].startswith("<6>")
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    assert not logs.stderr_is_journal()


def test_cli_reads_the_log_section_and_flags_win(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from footsort.cli import main

    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text('[log]\nlevel = "ERROR"\nfile = false\n')
    assert CliRunner().invoke(main, ["config", "path"]).exit_code == 0
    logger.warning("hidden by the file's level")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("FOOTSORT_LOG_LEVEL", "WARNING")  # env over file
    CliRunner().invoke(main, ["config", "path"])
    logger.warning("shown")
    assert "WARNING shown" in capsys.readouterr().err
    CliRunner().invoke(main, ["--verbose", "--log-json", "config", "path"])  # flags over env
    logger.debug("detail")
    assert json.loads(capsys.readouterr().err)["record"]["message"] == "detail"
