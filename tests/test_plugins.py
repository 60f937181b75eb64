"""PluginHost: discovery, enabling by name, background delivery, failures logged and contained."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import pytest
from loguru import logger

from footsort.plugins import host as plugins
from footsort.plugins.events import DaemonStarted, FileFailed, FileSorted
from footsort.plugins.host import PluginAPI, PluginHost
from footsort.system.config import Config, PluginsSection


@pytest.fixture
def logged() -> Iterator[list[str]]:
    lines: list[str] = []
    handler = logger.add(lambda m: lines.append(m.record["level"].name + " " + m.record["message"]), level="DEBUG")
    yield lines
    logger.remove(handler)


def cfg_with(enabled: list[str], folder: Path | None = None, settings: dict[str, Any] | None = None) -> Config:
    section = PluginsSection(enabled=tuple(enabled), paths=(str(folder),) if folder else (), settings=settings or {})
    return replace(Config(), plugins=section)


RECORDER = """
received = []
def register(api):
    api.on("file_sorted", lambda e: received.append(("sorted", e.label, dict(api.settings))))
    api.on("daemon_started", lambda e: received.append(("started",)))
"""


def test_discover_finds_shipped_folder_and_entry_point_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "myplugins"
    (folder / "pkgplug").mkdir(parents=True)
    (folder / "pkgplug" / "__init__.py").write_text(RECORDER)
    (folder / "xmp.py").write_text(RECORDER)  # a user's folder wins over the shipped plugin of that name
    (folder / "_private.py").write_text("")
    site = tmp_path / "site"
    (site / "epplug_dist-1.0.dist-info").mkdir(parents=True)
    (site / "epplug_dist-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: epplug-dist\nVersion: 1.0\n")
    (site / "epplug_dist-1.0.dist-info" / "entry_points.txt").write_text("[footsort.plugins]\nepplug = epplug_mod\n")
    (site / "epplug_mod.py").write_text(RECORDER)
    monkeypatch.syspath_prepend(str(site))

    found = plugins.discover([folder])
    assert {"xmp", "notify", "webhook", "export", "pkgplug", "epplug"} <= set(found)
    assert "_private" not in found
    assert found["xmp"].origin == str(folder / "xmp.py")
    assert found["notify"].origin == "shipped footsort.plugins.bundled.notify"
    assert found["epplug"].origin == "entry point epplug_mod"
    assert callable(plugins.register_function(found["epplug"]))
    assert callable(plugins.register_function(found["pkgplug"]))


def test_enabled_plugins_get_events_in_background_and_close_flushes(tmp_path: Path) -> None:
    (tmp_path / "recorder.py").write_text(RECORDER)
    (tmp_path / "unused.py").write_text("raise RuntimeError('never imported unless enabled')")
    host = PluginHost.from_config(cfg_with(["recorder"], tmp_path, {"recorder": {"colour": "red"}}))
    assert host.running == ("recorder",) and host.problems == {}
    host.emit(DaemonStarted())
    for label in ("tsinelas", "sapatos"):
        host.emit(FileSorted(label=label))
    host.emit(FileFailed())  # nobody listens
    host.close()
    received = sys.modules["footsort_plugin_recorder"].received
    assert received == [("started",), ("sorted", "tsinelas", {"colour": "red"}), ("sorted", "sapatos", {"colour": "red"})]
    host.emit(FileSorted(label="late"))  # after close: ignored, no error
    assert len(received) == 3


def test_relative_plugin_folder_is_taken_from_the_config_files_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTSORT_CONFIG", str(tmp_path / "config.toml"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "relplug.py").write_text(RECORDER)
    cfg = replace(Config(), plugins=PluginsSection(enabled=("relplug",), paths=("mine",)))
    with PluginHost.from_config(cfg) as host:
        assert host.running == ("relplug",)


def test_slow_plugin_never_blocks_emit() -> None:
    done: list[int] = []

    def register(api: PluginAPI) -> None:
        api.on("file_sorted", lambda e: (time.sleep(0.2), done.append(1)))

    host = PluginHost({"slow": register})
    start = time.monotonic()
    for _ in range(5):
        host.emit(FileSorted())
    assert time.monotonic() - start < 0.1
    host.close()
    assert len(done) == 5


def test_failing_plugin_is_logged_by_name_disabled_and_others_go_on(logged: list[str]) -> None:
    calls: list[str] = []
    good: list[str] = []

    def bad(api: PluginAPI) -> None:
        def boom(e: Any) -> None:
            calls.append(e.label)
            raise OSError("disk full")

        api.on("file_sorted", boom)

    def fine(api: PluginAPI) -> None:
        api.on("file_sorted", lambda e: good.append(e.label))

    host = PluginHost({"bad": bad, "fine": fine}, max_failures=3)
    for i in range(6):
        host.emit(FileSorted(label=str(i)))
    host.close()
    assert calls == ["0", "1", "2"]  # disabled after 3 in a row
    assert good == [str(i) for i in range(6)]
    assert host.running == ("fine",)
    errors = [line for line in logged if line.startswith("ERROR")]
    assert any("plugin bad failed on file_sorted" in e and "disk full" in e for e in errors)
    assert any("plugin bad disabled after 3 failures" in e for e in errors)


def test_a_success_resets_the_failure_count() -> None:
    seen: list[int] = []

    def flaky(api: PluginAPI) -> None:
        def cb(e: Any) -> None:
            seen.append(1)
            if int(e.label) % 2:
                raise ValueError("odd")

        api.on("file_sorted", cb)

    host = PluginHost({"flaky": flaky}, max_failures=2)
    for i in range(8):
        host.emit(FileSorted(label=str(i)))
    host.close()
    assert len(seen) == 8 and host.running == ("flaky",)


def test_broken_plugins_are_skipped_with_reasons(tmp_path: Path, logged: list[str]) -> None:
    (tmp_path / "broken_import.py").write_text("import no_such_module_xyz\n")
    (tmp_path / "no_register.py").write_text("x = 1\n")
    (tmp_path / "bad_event.py").write_text("def register(api):\n    api.on('file_sortd', print)\n")
    (tmp_path / "good.py").write_text(RECORDER)
    names = ["broken_import", "no_register", "bad_event", "missing", "good"]
    host = PluginHost.from_config(cfg_with(names, tmp_path))
    assert host.running == ("good",)
    assert "no_such_module_xyz" in host.problems["broken_import"]
    assert "no register(api) function" in host.problems["no_register"]
    assert "unknown event 'file_sortd'" in host.problems["bad_event"]
    assert "not found; looked in " + str(tmp_path) in host.problems["missing"]
    assert "known plugins:" in host.problems["missing"] and "xmp" in host.problems["missing"]
    assert sum("could not" in line and "skipped" in line for line in logged) == 4
    host.close()


@dataclass(frozen=True)
class _Settings:
    size: int = 1


def test_bad_plugin_settings_skip_the_plugin_with_the_dotted_key() -> None:
    def register(api: PluginAPI) -> None:
        api.settings_as(_Settings)

    host = PluginHost({"demo": register}, config=cfg_with(["demo"], settings={"demo": {"sise": 2}}))
    assert "plugins.demo.sise" in host.problems["demo"] and "did you mean size?" in host.problems["demo"]


def test_full_queue_drops_with_a_warning_instead_of_blocking(logged: list[str]) -> None:
    gate = threading.Event()

    def register(api: PluginAPI) -> None:
        api.on("file_sorted", lambda e: gate.wait(5))

    host = PluginHost({"stuck": register}, queue_size=1)
    start = time.monotonic()
    for _ in range(5):
        host.emit(FileSorted())
    assert time.monotonic() - start < 0.5
    gate.set()
    host.close()
    assert any("plugin stuck is too slow" in line for line in logged)


def test_close_gives_up_on_a_hung_plugin(logged: list[str]) -> None:
    gate = threading.Event()

    def register(api: PluginAPI) -> None:
        api.on("file_sorted", lambda e: gate.wait(5))

    host = PluginHost({"hung": register})
    host.emit(FileSorted())
    host.emit(FileSorted())
    start = time.monotonic()
    host.close(timeout=0.2)
    assert time.monotonic() - start < 1.0
    assert any("plugin hung still busy at shutdown" in line for line in logged)
    gate.set()


def test_no_plugins_enabled_imports_nothing() -> None:
    host = PluginHost.from_config(Config())
    host.emit(FileSorted())
    host.close()
    assert host.running == () and host.problems == {}
