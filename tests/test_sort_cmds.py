"""`footsort watch / sort / undo / log` through click's CliRunner, with the fake model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fakes import BLUE, MUDDY, RED, write_image
from loguru import logger

from footsort.cli import main
from footsort.commands.sort_cmds import parse_since
from footsort.errors import FootsortError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fake_model(fake_cli: dict):
    yield
    logger.remove()  # the CLI pointed loguru at CliRunner's (now closed) stderr
    logger.add(sys.stderr, level="WARNING")


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    box = tmp_path / "inbox"
    write_image(box / "red.jpg", RED, 1)
    write_image(box / "blue.jpg", BLUE, 2)
    write_image(box / "muddy.jpg", MUDDY, 3)
    (box / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (box / "notes.txt").write_text("hello")
    return box


def files(box: Path) -> set[str]:
    return {str(p.relative_to(box)) for p in box.rglob("*") if p.is_file()}


@pytest.mark.parametrize("command", ["watch", "sort", "undo", "log"])
def test_help_has_an_example(command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0 and "Example:" in result.output and "footsort " + command in result.output


def test_the_commands_module_does_not_import_torch() -> None:
    code = "import sys, footsort.commands.sort_cmds; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


def test_sort_then_log_then_undo(inbox: Path) -> None:
    result = cli("sort", inbox)
    assert result.exit_code == 0, result.output
    assert "sorted 2 (sapatos 1, tsinelas 1); 1 to review; 1 failed" in result.output
    assert files(inbox) == {"tsinelas/red.jpg", "sapatos/blue.jpg", "review/muddy.jpg", "failed/broken.jpg", "notes.txt"}
    assert "not an image name" in result.output  # notes.txt is named, not moved

    log = cli("log")
    assert log.exit_code == 0
    assert "review" in log.output and "tsinelas 0.95" in log.output and "failed/broken.jpg" in log.output
    rows = [json.loads(line) for line in cli("log", "--json", "-n", "2").output.splitlines()]
    assert len(rows) == 2 and {"hash", "model_version", "probabilities"} <= set(rows[0])

    result = cli("undo", "--last", "1")
    assert result.exit_code == 0 and "put back 1 of 1" in result.output
    result = cli("undo")  # the rest of the last run
    assert "put back 3 of 3" in result.output
    assert files(inbox) == {"red.jpg", "blue.jpg", "muddy.jpg", "broken.jpg", "notes.txt"}
    assert "nothing to undo" in cli("undo").output
    assert "(undone)" in cli("log").output


def test_dry_run_prints_and_touches_nothing(inbox: Path) -> None:
    before = files(inbox)
    result = cli("sort", "--dry-run", inbox)
    assert result.exit_code == 0
    assert f"sort      {inbox / 'red.jpg'} -> {inbox / 'tsinelas/red.jpg'}" in result.output
    assert "dry run, nothing moved" in result.output
    assert files(inbox) == before
    assert not (Path(os.environ["FOOTSORT_HOME"]) / "data" / "journal.sqlite3").exists()


def test_flags_override_config(inbox: Path, tmp_path: Path) -> None:
    result = cli("sort", "--threshold", "0.5", "--output", tmp_path / "library", inbox)
    assert result.exit_code == 0, result.output
    assert files(tmp_path / "library") == {"tsinelas/red.jpg", "sapatos/blue.jpg", "tsinelas/muddy.jpg",
                                           "failed/broken.jpg"}


def test_sort_single_files_and_recursive_folders(tmp_path: Path) -> None:
    box = tmp_path / "box"
    one = write_image(box / "one.jpg", RED, 1)
    write_image(box / "2024" / "deep.jpg", BLUE, 2)
    assert cli("sort", one).exit_code == 0
    assert files(box) == {"tsinelas/one.jpg", "2024/deep.jpg"}
    assert cli("sort", box).exit_code == 0  # not recursive: subfolders and output folders are left
    assert files(box) == {"tsinelas/one.jpg", "2024/deep.jpg"}
    assert cli("sort", "--recursive", box).exit_code == 0
    assert files(box) == {"tsinelas/one.jpg", "sapatos/deep.jpg"}


def test_sorting_the_review_folder_again(inbox: Path) -> None:
    cli("sort", inbox)
    write_image(inbox / "review" / "muddy2.jpg", MUDDY, 4)
    result = cli("sort", inbox / "review")  # same threshold: they stay, nothing moves
    assert result.exit_code == 0 and files(inbox / "review") == {"muddy.jpg", "muddy2.jpg"}
    result = cli("sort", "--threshold", "0.5", inbox / "review")
    assert result.exit_code == 0, result.output
    assert files(inbox / "review") == set() and {"muddy.jpg", "muddy2.jpg"} <= files(inbox / "tsinelas")
    assert not (inbox / "review" / "tsinelas").exists()


def test_undo_selections(inbox: Path) -> None:
    cli("sort", inbox)
    assert "would put back 1 of 1" in cli("undo", "--dry-run", inbox / "tsinelas/red.jpg").output
    assert (inbox / "tsinelas/red.jpg").exists()
    assert "put back 1 of 1" in cli("undo", inbox / "tsinelas").output
    assert "put back 3 of 3" in cli("undo", "--since", "1h").output
    result = cli("undo", "--last", "1", "--since", "1h")
    assert result.exit_code == 1 and result.output.startswith("error: use one of")


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    result = cli("watch", tmp_path / "missing")
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "is not a folder" in result.output
    assert cli("sort", tmp_path / "missing").output.startswith("error:")


def test_parse_since() -> None:
    assert parse_since("30m", now=10_000) == 10_000 - 1800
    assert parse_since("2h", now=10_000) == 10_000 - 7200
    assert parse_since("1.5d", now=200_000) == 200_000 - 129_600
    assert parse_since("2024-05-01T14:00") > 0
    with pytest.raises(FootsortError, match="30m"):
        parse_since("yesterday-ish")


def test_watch_runs_until_sigterm(inbox: Path) -> None:
    os.utime(inbox / "broken.jpg", (1e9, 1e9))  # old: not a file still being written, so failed/ at once
    done = threading.Event()

    def terminate_once_sorted() -> None:
        # the first photo sorted means the daemon's signal handlers are in place (a fixed delay raced a slow start)
        deadline = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < deadline and not (inbox / "tsinelas" / "red.jpg").exists():
            time.sleep(0.05)
        if not done.is_set():
            time.sleep(1.0)  # let it finish the startup scan
            os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_sorted, daemon=True)
    killer.start()
    try:
        result = cli("watch", "--settle", "0.1", inbox)
    finally:
        done.set()
    assert result.exit_code == 0, result.output
    assert files(inbox) == {"tsinelas/red.jpg", "sapatos/blue.jpg", "review/muddy.jpg", "failed/broken.jpg", "notes.txt"}
    assert "SIGTERM" in result.output and "stopped; sorted 2 (sapatos 1, tsinelas 1); 1 to review; 1 failed" in result.output
