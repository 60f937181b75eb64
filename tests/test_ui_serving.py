"""The review page served by the daemon (`footsort watch --ui`), its runtime file and `footsort ui --url`."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from fakes import BLUE, MUDDY, RED, wait_for, write_image  # noqa: E402

from footsort.cli import main  # noqa: E402
from footsort.system import paths  # noqa: E402
from footsort.ui import runtime  # noqa: E402
from footsort.ui.runtime import PageInfo  # noqa: E402
from footsort.ui.server import CSRF_HEADER  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def a_page(pid: int, port: int, kind: str = "watch") -> PageInfo:
    address = f"http://127.0.0.1:{port}/"
    return PageInfo(f"{address}?token=secret{pid}", address, pid, kind,  # type: ignore[arg-type]
                    ("/home/ana/inbox",), time.time())


@pytest.fixture
def listening():
    """A loopback port that accepts connections (what a running page's runtime file points at)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- the runtime file -------------------------------------------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_the_runtime_file_is_private_and_lives_as_long_as_the_page(listening: int) -> None:
    info = a_page(os.getpid(), listening)
    with runtime.advertise(info) as path:
        assert path == paths.runtime_dir() / f"page-{os.getpid()}.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the token
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert runtime.running() == [info]
    assert not path.exists() and runtime.running() == []


def test_files_left_by_killed_pages_are_removed_by_the_next_reader(listening: int) -> None:
    gone = runtime.write(a_page(dead_pid(), listening))  # its process was killed (SIGKILL, a crash)
    reused = runtime.write(a_page(os.getpid(), 1))  # a live PID, but nothing answers on its port
    junk = paths.runtime_dir() / "page-x.json"
    junk.write_text("{not json")
    os.utime(junk, (1, 1))
    assert runtime.running() == []
    assert not gone.exists() and not reused.exists() and not junk.exists()


def test_ui_url_prints_the_running_pages_newest_first(listening: int) -> None:
    none = invoke("ui", "--url")
    assert none.exit_code == 1 and "no review page is running" in none.output and "--ui" in none.output
    old, new = a_page(os.getpid(), listening, "ui"), a_page(os.getppid(), listening)
    runtime.write(old)
    runtime.write(PageInfo(new.url, new.address, new.pid, new.kind, new.roots, old.started + 5))
    result = invoke("ui", "--url")
    assert result.exit_code == 0 and result.output.splitlines() == [new.url, old.url]


def test_a_busy_port_gives_way_to_a_free_one(listening: int) -> None:
    from footsort.ui.serving import listen

    with listen("127.0.0.1", listening) as other:
        assert other.getsockname()[1] not in (listening, 0)
    assert invoke("ui", "--url", "/some/inbox").exit_code == 1  # --url lists; it serves nothing


# -- footsort watch --ui ----------------------------------------------------------------------------

def start_watch(inbox: Path, home: Path, stdout, stderr) -> subprocess.Popen:
    """`footsort watch --ui` with the fake model (tests/fake_footsort.py), in its own process."""
    env = {**os.environ, "FOOTSORT_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, str(REPO / "tests" / "fake_footsort.py"), "watch", "--ui", "--ui-port", "0",
            "--settle", "0.1", str(inbox)]
    return subprocess.Popen(argv, cwd=REPO, env=env, stdout=stdout, stderr=stderr)


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM and a pseudo-terminal")
@pytest.mark.parametrize("terminal", [True, False], ids=["on a terminal", "as a service"])
def test_watch_ui_serves_the_page_and_stops_with_the_daemon(tmp_path: Path, isolated_home: Path,
                                                            terminal: bool) -> None:
    import pty

    inbox = tmp_path / "inbox"
    write_image(inbox / "red.jpg", RED, 1)
    write_image(inbox / "blue.jpg", BLUE, 2)
    write_image(inbox / "muddy.jpg", MUDDY, 3)
    log = tmp_path / "daemon.log"
    main_fd, term_fd = pty.openpty() if terminal else (None, None)
    with open(log, "wb") as err:
        proc = start_watch(inbox, isolated_home, term_fd if terminal else subprocess.PIPE, err)
    try:
        page = wait_for(lambda: runtime.running(), 60, "the runtime file")[0]
        assert page.kind == "watch" and page.pid == proc.pid and page.roots == (str(inbox),)
        assert page.address.startswith("http://127.0.0.1:") and "token=" in page.url
        token = page.url.split("token=")[1]
        with httpx.Client(base_url=page.address) as client:
            assert client.get("/api/state").status_code == 403  # no token, no page
            assert client.get("/?token=wrong").status_code == 403
            assert client.get("/api/state", headers={"Host": "evil.example"}).status_code == 421  # no DNS rebinding
            html = client.get(f"/?token={token}", follow_redirects=True)
            assert html.status_code == 200 and 'name="footsort-csrf"' in html.text
            csrf = html.text.split('name="footsort-csrf" content="')[1].split('"')[0]
            state = wait_for(lambda: (s := client.get("/api/state").json())["review"] and s, 60, "muddy.jpg in review/")
            assert [p["name"] for p in state["review"]] == ["muddy.jpg"] and state["classes"] == ["sapatos", "tsinelas"]
            photo = state["review"][0]["id"]
            body = {"ids": [photo], "label": "sapatos"}
            assert client.post("/api/label", json=body).status_code == 403  # CSRF header needed
            moved = client.post("/api/label", json=body, headers={CSRF_HEADER: csrf, "Origin": page.address[:-1]})
            assert moved.json()["results"][0]["moved_to"] == "sapatos"
        assert (inbox / "sapatos" / "muddy.jpg").exists() and (inbox / "tsinelas" / "red.jpg").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if term_fd is not None:
            os.close(term_fd)
    assert runtime.running() == [] and not list(paths.runtime_dir().glob("page-*.json"))  # removed on exit
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(page.address.rsplit(":", 1)[1].strip("/"))), timeout=1).close()
    logged = log.read_text()
    assert f"review page at {page.address}" in logged and token not in logged  # never the token in a log
    assert "stopped; sorted 2" in logged
    if terminal:  # the person at the terminal gets the URL to open, token and all
        assert main_fd is not None
        shown = os.read(main_fd, 65536).decode()
        os.close(main_fd)
        assert f"review page: open {page.url}" in shown
    else:
        assert proc.stdout is not None and token not in proc.stdout.read().decode()
        assert "`footsort ui --url` prints the address with its token" in logged


def test_watch_ui_needs_a_real_run_and_its_options_imply_it(tmp_path: Path, fake_cli: dict) -> None:
    (tmp_path / "inbox").mkdir()
    for args in (["--ui", "--dry-run"], ["--ui-port", "9000", "--dry-run"], ["--ui-host", "::1", "--dry-run"]):
        result = invoke("watch", *args, tmp_path / "inbox")
        assert result.exit_code == 1 and "--ui cannot be used with --dry-run" in result.output, args


def test_every_ui_option_has_help_with_an_example() -> None:
    ctx = click.Context(main)
    service = main.get_command(ctx, "service").commands["install"]  # type: ignore[union-attr]
    for command, names in ((main.get_command(ctx, "watch"), ("ui", "ui_host", "ui_port")),
                           (main.get_command(ctx, "ui"), ("print_url", "host", "port", "open_browser")),
                           (service, ("ui",))):
        params = {p.name: p for p in command.params}
        for name in names:
            assert "e.g." in (params[name].help or "").lower(), (command.name, name)
        assert "Example" in invoke(*(["service", "install"] if command is service else [command.name]), "--help").output
