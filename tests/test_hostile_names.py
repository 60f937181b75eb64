"""Issue 9, items 1, 4, 5, 7 and 12: names that are not UTF-8 or hold control characters, a damaged
journal, secrets in logs, and an inbox path that would inject lines into a service unit."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner
from fakes import BLUE, RED, ColourClassifier, RecordingHost, jpeg_bytes, write_image
from loguru import logger

from footsort.cli import main
from footsort.errors import FootsortError
from footsort.learning import corrections
from footsort.sorting.journal import Details, Journal, JournalDamaged
from footsort.sorting.naming import candidates
from footsort.system import doctor, logs, paths, safe_text, service
from footsort.system.config import LogSection

BAD = b"bad\xff\xfename.jpg"  # not UTF-8: a name from an old camera or another system
FORGED = "IMG_1.jpg\n2026-01-01 00:00:00.000 ERROR   footsort.pipeline:1 forged\n<0>emergency.jpg"
SECRET_URL = "https://alice:hunter2@127.0.0.1:9/api/webhook/SECRETPATH123?token=tok999"
SECRETS = ("hunter2", "SECRETPATH123", "tok999", "alice")


@pytest.fixture(autouse=True)
def fake_model(fake_cli: dict) -> Iterator[None]:
    yield
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    safe_text.forget_secrets()


def settled(folder: Path) -> None:
    """Age every file in `folder` so `sort` takes it at once (bytes names included)."""
    old = time.time() - 3600
    for name in os.listdir(os.fsencode(folder)):
        os.utime(os.path.join(os.fsencode(folder), name), (old, old))


def names(folder: Path) -> set[bytes]:
    return set(os.listdir(os.fsencode(folder))) if folder.is_dir() else set()


def invoke(*args: str, obj: dict | None = None):
    extra = {} if obj is None else {"obj": obj}  # no obj given: the fake model's (the fake_cli fixture)
    return CliRunner().invoke(main, list(args), **extra)


# -- 1. names that are not UTF-8 --------------------------------------------------------------------

def test_a_name_that_is_not_utf8_is_sorted_journalled_logged_and_undone(tmp_path: Path) -> None:
    box = tmp_path / "inbox"
    box.mkdir()
    with open(os.path.join(os.fsencode(box), BAD), "wb") as f:
        f.write(jpeg_bytes(RED, tag=1))
    write_image(box / "blue.jpg", BLUE, 2)  # the batch goes on around it
    settled(box)
    result = invoke("sort", str(box))
    assert result.exit_code == 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert names(box / "tsinelas") == {BAD} and names(box / "sapatos") == {b"blue.jpg"}
    with Journal.open(readonly=True) as j:
        (entry,) = [e for e in j.recent(10) if e.details.label == "tsinelas"]
    assert os.fsencode(entry.source) == os.fsencode(box) + b"/" + BAD  # the exact bytes, not a lossy copy
    assert os.fsencode(entry.destination) == os.fsencode(box / "tsinelas") + b"/" + BAD
    shown = invoke("log")
    assert shown.exit_code == 0 and "bad\\xff\\xfename.jpg" in shown.output
    assert invoke("log", "--json").exit_code == 0
    undone = invoke("undo")
    assert undone.exit_code == 0, undone.output
    assert names(box) >= {BAD, b"blue.jpg"}  # put back under its own name, byte for byte


def test_the_daemon_sorts_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    from footsort.sorting import daemon
    from footsort.system.config import load as load_config

    box = tmp_path / "inbox"
    box.mkdir()
    with open(os.path.join(os.fsencode(box), BAD), "wb") as f:
        f.write(jpeg_bytes(RED, tag=3))
    write_image(box / "later.jpg", BLUE, 4)
    cfg = load_config(overrides={"watch": {"settle_seconds": 0.2, "rescan_seconds": 60}})
    stop = threading.Event()
    with Journal.open() as j:
        runner = threading.Thread(target=daemon.run, args=([box], cfg, ColourClassifier()),
                                  kwargs=dict(host=RecordingHost(), journal=j, stop=stop))
        runner.start()
        deadline = time.monotonic() + 20
        while not (names(box / "tsinelas") and names(box / "sapatos")) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        runner.join(10)
    assert not runner.is_alive()
    assert names(box / "tsinelas") == {BAD} and names(box / "sapatos") == {b"later.jpg"}


def test_journal_round_trips_undecodable_names_and_keeps_text_rows_text(tmp_path: Path) -> None:
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/" + BAD))
    with Journal.open() as j:
        odd_id = j.note("duplicate", odd, hash="a" * 64, details=Details(reason=f"left {odd.name}"))
        plain_id = j.note("duplicate", tmp_path / "plain é.jpg", hash="b" * 64)
        assert j.get(odd_id).source == odd and j.get(odd_id).details.reason == f"left {odd.name}"
        assert j.left_in_place(odd, "a" * 64).id == odd_id  # queries by such a path find its row
        assert j.get(plain_id).source == tmp_path / "plain é.jpg"
    conn = sqlite3.connect(paths.journal_file())
    kinds = dict(conn.execute("SELECT id, typeof(source) FROM actions").fetchall())
    conn.close()
    assert kinds == {odd_id: "blob", plain_id: "text"}  # valid UTF-8 stays readable text for any SQLite tool


def test_the_export_plugin_writes_undecodable_names_losslessly(tmp_path: Path) -> None:
    import json

    from footsort.plugins.bundled.export import append

    from footsort.plugins.events import FileSorted

    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/" + BAD))
    event = FileSorted(source=odd, destination=odd, label="tsinelas", confidence=0.9, model_version="m")
    append(tmp_path / "events.jsonl", event, "jsonl")
    (line,) = (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert os.fsencode(json.loads(line)["source"]) == os.fsencode(tmp_path) + b"/" + BAD


def test_collision_names_count_the_bytes_of_undecodable_names() -> None:
    name = os.fsdecode(b"\xff" * 300 + b".jpg")
    first = next(candidates(name))
    assert len(os.fsencode(first)) <= 255 and first.endswith(".jpg")


# -- 4. a damaged journal -------------------------------------------------------------------------

def damage_journal() -> Path:
    """A journal with a few hundred rows, then two of its pages overwritten with garbage."""
    with Journal.open() as j:
        for i in range(400):
            j.note("duplicate", Path(f"/in/photo-{i:04d}-" + "x" * 80 + ".jpg"), hash=f"{i:064x}",
                   details=Details(reason="r" * 50))
    path = paths.journal_file()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    for page in (3, 7):
        data[page * 4096 + 100: page * 4096 + 400] = bytes(range(256)) + bytes(44)
    path.write_bytes(bytes(data))
    return path


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert not isinstance(result.exception, (sqlite3.Error, UnicodeError)) and "Traceback" not in result.output
    return lines[0]


def test_a_damaged_journal_stops_sort_watch_log_with_one_line_and_the_command_that_moves_it_aside(
        tmp_path: Path) -> None:
    path = damage_journal()
    damaged = path.read_bytes()
    box = tmp_path / "inbox"
    write_image(box / "red.jpg", RED, 1)
    settled(box)
    for args in (["log"], ["sort", str(box)], ["watch", str(box)], ["undo"]):
        line = one_line_error(invoke(*args))
        assert "journal" in line and str(path) in line and "damaged" in line and "mv " in line, line
    assert path.read_bytes() == damaged and names(box) == {b"red.jpg"}  # nothing moved, the journal untouched
    command = line.split("nothing is deleted): ", 1)[1]
    subprocess.run(command, shell=True, check=True)  # the step the message names, as a person would run it
    kept = [p for p in path.parent.iterdir() if p.name.startswith("journal.sqlite3.damaged-") and "-wal" not in p.name
            and "-shm" not in p.name]
    assert len(kept) == 1 and kept[0].read_bytes() == damaged  # kept, never deleted
    assert invoke("sort", str(box)).exit_code == 0 and names(box / "tsinelas") == {b"red.jpg"}


def test_a_file_that_is_no_database_is_reported_as_damaged(tmp_path: Path) -> None:
    path = paths.journal_file()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not SQLite at all" * 200)
    with pytest.raises(JournalDamaged, match="mv "):
        Journal.open()
    with pytest.raises(JournalDamaged):
        Journal.open(readonly=True)
    assert path.read_bytes() == b"this is not SQLite at all" * 200


def test_doctor_reports_a_damaged_journal() -> None:
    assert doctor.run(doctor.machine(), [doctor.check_journal])[0].status == "info"  # not there yet
    with Journal.open() as j:
        j.note("duplicate", Path("/in/a.jpg"), hash="c" * 64)
    (ok,) = doctor.run(doctor.machine(), [doctor.check_journal])
    assert ok.status == "ok" and "1 action" in ok.detail
    damage_journal()
    (check,) = doctor.run(doctor.machine(), [doctor.check_journal])
    assert check.status == "fail" and "damaged" in check.detail and f"mv -n {paths.journal_file()}" in check.fix
    result = invoke("doctor")
    assert "journal" in result.output and "damaged" in result.output


def test_retraining_does_not_read_a_damaged_journal_as_no_history() -> None:
    damage_journal()
    with pytest.raises(FootsortError, match="damaged"):
        corrections.read_history()


# -- 5. secrets in logs ---------------------------------------------------------------------------

def test_redaction_of_credentials_tokens_and_registered_urls() -> None:
    text = safe_text.shown(f"POST {SECRET_URL} failed; password=pw123 Authorization: Bearer abcdef123456")
    assert not any(s in text for s in (*SECRETS[:3], "pw123", "abcdef123456")), text
    assert "127.0.0.1" in text  # still says where
    safe_text.add_secret_url("https://hooks.example/services/T0/B0/XYZsecret")
    assert "XYZsecret" not in safe_text.shown("HTTP 404 on /services/T0/B0/XYZsecret")


def test_webhook_secrets_reach_neither_stderr_nor_the_log_file_and_the_file_is_private(tmp_path: Path) -> None:
    cfg_file = paths.config_file()
    cfg_file.parent.mkdir(parents=True)
    cfg_file.write_text(f'[log]\nfile = true\n[plugins]\nenabled = ["webhook"]\n'
                        f'[plugins.webhook]\nurl = "{SECRET_URL}"\nretries = 0\ntimeout = 0.5\n')
    log_file = paths.log_dir() / logs.LOG_FILE_NAME
    log_file.parent.mkdir(parents=True)
    log_file.write_text("an older line\n")
    rotated = log_file.with_name("footsort.2026-01-01_00-00-00_000000.log")
    rotated.write_text("an even older line\n")
    for old in (log_file, rotated):
        os.chmod(old, 0o644)  # written world-readable by an older footsort
    box = tmp_path / "inbox"
    write_image(box / "red.jpg", RED, 1)
    settled(box)
    result = CliRunner().invoke(main, ["-v", "sort", str(box)])
    assert result.exit_code == 0, result.output
    logger.remove()  # flush and close the file
    text = log_file.read_text()
    assert "plugin webhook failed" in text and "plugin webhook failed" in result.output
    for secret in SECRETS:
        assert secret not in result.output and secret not in text, secret
    assert "└" not in text and "└" not in result.output  # no variable dump
    assert stat.S_IMODE(log_file.stat().st_mode) == stat.S_IMODE(rotated.stat().st_mode) == 0o600


def test_a_new_log_file_is_created_private() -> None:
    p = logs.setup(settings=LogSection(file=True))
    logger.info("hello")
    logger.remove()
    assert stat.S_IMODE(p.file.stat().st_mode) == 0o600


def test_exceptions_are_logged_without_variables_or_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup()
    token = "tok999"  # noqa: F841  (a local that a variable dump would show)

    def fail(url: str) -> None:
        raise RuntimeError(f"cannot reach {url}")

    try:
        fail(SECRET_URL)
    except RuntimeError:
        logger.exception("the hook failed")
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: cannot reach https://***@127.0.0.1:9" in err
    assert not any(s in err for s in SECRETS), err


class _Hook:
    def __init__(self) -> None:
        self.auth: list[str | None] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                owner.auth.append(self.headers.get("Authorization"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_webhook_sends_url_credentials_as_basic_auth() -> None:
    from footsort.plugins.bundled.webhook import post_json

    hook = _Hook()
    try:
        port = hook.httpd.server_address[1]
        assert post_json(f"http://alice:hunter%402@127.0.0.1:{port}/hook", {"x": 1}, retries=0) == 200
    finally:
        hook.httpd.shutdown()
    import base64

    assert hook.auth == ["Basic " + base64.b64encode(b"alice:hunter@2").decode()]


# -- 7. control characters in names ---------------------------------------------------------------

def test_printable_escapes_controls_undecodable_bytes_and_bidi() -> None:
    assert safe_text.printable("a\nb\rc\td\x1b[31m\x00") == "a\\nb\\rc\\td\\x1b[31m\\x00"
    assert safe_text.printable(os.fsdecode(BAD)) == "bad\\xff\\xfename.jpg"
    assert safe_text.printable("x\u2028y\u202ez\x85") == "x\\u2028y\\u202ez\\x85"
    assert safe_text.printable(Path("sandália 👟 é.jpg")) == "sandália 👟 é.jpg"  # ordinary names untouched


def test_a_name_with_a_newline_cannot_forge_log_lines(tmp_path: Path) -> None:
    cfg_file = paths.config_file()
    cfg_file.parent.mkdir(parents=True)
    cfg_file.write_text("[log]\nfile = true\n")
    box = tmp_path / "inbox"
    write_image(box / FORGED, RED, 1)
    (box / "broken\nERROR x.jpg").write_bytes(b"not an image")
    settled(box)
    result = CliRunner().invoke(main, ["-v", "sort", str(box)])
    assert result.exit_code == 0, result.output
    logger.remove()
    text = (paths.log_dir() / logs.LOG_FILE_NAME).read_text()
    assert "IMG_1.jpg\\n2026-01-01" in text and "broken\\nERROR x.jpg" in text
    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR)")
    assert all(stamp.match(line) for line in text.splitlines()), text
    assert not any(line.startswith(("ERROR", "<0>", "2026-01-01")) for line in result.output.splitlines())
    assert not [line for line in text.splitlines() if line.startswith("2026-01-01")]  # the forged time stamp
    listed = invoke("log")
    assert listed.exit_code == 0 and len(listed.output.strip().splitlines()) == 2  # one line per action


def test_journald_lines_keep_one_priority_prefix_per_record(capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "stderr_is_journal", lambda environ=None: True)
    logs.setup()
    logger.info("sorted {}", FORGED)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("<6>") and "\\n<0>emergency.jpg" in err


def test_dry_run_and_error_lines_escape_names(tmp_path: Path) -> None:
    box = tmp_path / "inbox"
    write_image(box / "two\nlines.jpg", RED, 1)
    settled(box)
    result = invoke("sort", "--dry-run", str(box))
    assert result.exit_code == 0 and "two\\nlines.jpg" in result.output
    assert not any(line.startswith("lines.jpg") for line in result.output.splitlines())
    missing = invoke("sort", str(tmp_path / "no\nsuch"))
    assert missing.exit_code != 0 and "no\\nsuch" in missing.output


# -- 12. control characters in a service unit -----------------------------------------------------

@pytest.mark.parametrize("bad", ["in\nExecStartPre=/bin/sh -c evil", "tab\there", os.fsdecode(b"bytes\xff")])
def test_service_install_refuses_an_inbox_path_with_control_characters(tmp_path: Path, bad: str) -> None:
    home = tmp_path / "home"
    inbox = tmp_path / bad
    calls: list = []
    for platform in ("linux", "darwin"):
        result = invoke("service", "install", "--dry-run", str(inbox),
                        obj={"platform": platform, "service_runner": calls.append})
        line = one_line_error(result)
        assert "rename" in line and "control character" in line
    assert calls == [] and not (home / ".config").exists()
    with pytest.raises(FootsortError, match="inbox"):
        service.ServiceSpec(command=("footsort", "watch", str(inbox)), inboxes=(inbox,), log_dir=tmp_path)
