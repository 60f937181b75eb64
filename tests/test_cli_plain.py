"""What a new user meets (issue 9 items 13, 16, 17): no terminal for review, -v after the subcommand, plain words."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import BLUE, RED, write_image
from loguru import logger

from footsort.cli import main
from footsort.learning.corrections import HUMAN
from footsort.sorting.journal import Details, Journal
from footsort.system.service import RunResult

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def fake_model(fake_cli: dict):
    yield
    logger.remove()  # the CLI pointed loguru at CliRunner's (now closed) stderr
    logger.add(sys.stderr, level="WARNING")


def test_review_without_a_terminal_says_so_and_names_the_other_way(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    write_image(inbox / "review" / "a.jpg", RED, 1)
    done = subprocess.run([sys.executable, str(TESTS / "fake_footsort.py"), "review", str(inbox)],  # the fake model
                          input=b"1\n", capture_output=True, timeout=120,
                          start_new_session=True)  # no controlling terminal, input piped in
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert "Traceback" not in err and "/dev/tty" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: footsort review reads single key presses and needs a terminal")
    assert "into its class folder" in lines[0] and "footsort sort --threshold" in lines[0]
    assert (inbox / "review" / "a.jpg").exists()


def test_verbose_and_quiet_work_after_the_subcommand(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    write_image(inbox / "red.jpg", RED, 1)
    write_image(inbox / "blue.jpg", BLUE, 2)
    result = CliRunner().invoke(main, ["sort", "-v", "--dry-run", str(inbox)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "red.jpg -> tsinelas/" in result.output  # -v logs every file, as docs/daemon.md says
    quiet = CliRunner().invoke(main, ["sort", str(inbox), "--quiet"], catch_exceptions=False)
    assert quiet.exit_code == 0 and "sorted 2" in quiet.output and "INFO" not in quiet.output
    assert CliRunner().invoke(main, ["config", "path", "-v"]).exit_code == 0
    assert CliRunner().invoke(main, ["models", "list", "-q"]).exit_code == 0


def test_summaries_use_plain_words() -> None:
    from footsort.sorting.pipeline import summary

    assert summary(Counter(sort=3, duplicate=1), Counter(sapatos=1, tsinelas=2)) == \
        "sorted 3 (sapatos 1, tsinelas 2); 1 duplicate left in place"
    assert summary(Counter(duplicate=2, skip=1, error=1)) == \
        "2 duplicates left in place; 1 file left in place; 1 error"
    assert summary(Counter(retry=69), waiting=2) == "2 files still in the inbox, to be tried again"
    assert summary(Counter()) == "nothing to sort"


def test_service_uninstall_says_when_nothing_is_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    calls: list = []
    obj = {"platform": "linux", "service_runner": lambda argv: (calls.append(argv), RunResult(0))[1]}
    result = CliRunner().invoke(main, ["service", "uninstall"], obj=obj, catch_exceptions=False)
    assert result.exit_code == 0
    assert "not installed" in result.output and "no longer starts at login" not in result.output
    assert calls == []


def test_log_shows_review_labels_as_labelled_by_hand(tmp_path: Path) -> None:
    src, dest = tmp_path / "in/review/a.jpg", tmp_path / "in/sapatos/a.jpg"
    with Journal.open() as j:  # what `footsort review` records when a person presses the key for sapatos
        j.finish(j.begin("sort", src, dest, details=Details(label="sapatos", probabilities={"sapatos": 0.4},
                                                               model_version=HUMAN, reason="labelled by hand")), "done")
        j.finish(j.begin("sort", tmp_path / "in/b.jpg", tmp_path / "in/tsinelas/b.jpg",
                         details=Details(label="tsinelas", confidence=0.93, model_version="v1")), "done")
    out = CliRunner().invoke(main, ["log"], catch_exceptions=False).output
    hand, model = out.splitlines()
    assert "labelled" in hand and "sapatos (by hand)" in hand
    assert " sort " in model and "tsinelas 0.93" in model


def test_sort_without_a_terminal_logs_its_progress_and_no_line_per_file(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from footsort.system import progress

    monkeypatch.setattr(progress, "EVERY", 0.0)  # a progress line after every photo instead of every 5 s
    inbox = tmp_path / "inbox"
    for i in range(3):
        write_image(inbox / f"red{i}.jpg", RED, i)
    result = CliRunner().invoke(main, ["sort", str(inbox)], catch_exceptions=False)  # CliRunner: no terminal
    assert result.exit_code == 0, result.output
    assert "Sorting: 3/3 (100 %)" in result.output
    assert "-> tsinelas/" not in result.output  # per-file lines stay quiet without -v
    for i in range(3):
        write_image(inbox / f"blue{i}.jpg", BLUE, 10 + i)
    quiet = CliRunner().invoke(main, ["sort", str(inbox), "-q"], catch_exceptions=False)
    assert quiet.exit_code == 0 and "Sorting: " not in quiet.output.replace("Sorting\n", "")


def test_commands_load_lazily_and_the_table_names_each_modules_commands() -> None:
    import importlib

    from footsort.commands import COMMAND_MODULES

    for module, names in COMMAND_MODULES.items():
        defined = {c.name for c in importlib.import_module(f"footsort.commands.{module}").COMMANDS}
        assert defined == set(names), module
    code = ("import sys; sys.argv = ['footsort', 'config', 'path']\n"
            "from footsort.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "loaded = [m for m in sys.modules if m.startswith('footsort.commands.') and m != 'footsort.commands.options']\n"
            "assert loaded == ['footsort.commands.system_cmds'], loaded")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
