"""notify plugin: the right command per platform, and at most one notification per interval."""

from __future__ import annotations

from pathlib import Path

import pytest
from footsort.plugins.bundled import notify
from footsort.plugins.bundled.notify import (
    Notifier,
    Settings,
    applescript_string,
    notify_command,
)

from footsort.plugins.events import FileReviewed
from footsort.plugins.host import PluginAPI
from footsort.system.config import Config


def test_commands_per_platform() -> None:
    assert notify_command("linux", "t", "b") == ["notify-send", "--app-name=footsort", "t", "b"]
    mac = notify_command("darwin", 'say "hi"', "a\\b")
    assert mac == ["osascript", "-e", 'display notification "a\\\\b" with title "say \\"hi\\""']
    assert notify_command("win32", "t", "b") is None
    assert applescript_string('x"y') == '"x\\"y"'


def test_rate_limit_counts_held_back_items() -> None:
    now = [0.0]
    sent: list[tuple[str, str]] = []
    n = Notifier(Settings(interval=60), lambda t, b: sent.append((t, b)), clock=lambda: now[0], timers=False)
    n.add("a.jpg")
    assert sent == [("footsort: 1 photo to review", "a.jpg")]
    now[0] = 10
    n.add("b.jpg")
    n.add("c.jpg", failed=True)
    assert len(sent) == 1  # held back
    now[0] = 61
    n.add("d.jpg")
    assert sent[1] == ("footsort: 2 photos to review, 1 unreadable", "d.jpg")
    n.flush()
    assert len(sent) == 2  # nothing pending


def test_timer_sends_what_was_held_back() -> None:
    sent: list[str] = []
    n = Notifier(Settings(interval=0.1), lambda t, b: sent.append(t))
    n.add("a.jpg")
    n.add("b.jpg")
    assert sent == ["footsort: 1 photo to review"]
    import time

    time.sleep(0.3)
    assert sent == ["footsort: 1 photo to review", "footsort: 1 photo to review"]


def test_register_subscribes_and_reports_a_missing_command() -> None:
    sent: list[tuple[str, str]] = []
    api = PluginAPI("notify", Config(), {"failed": True})
    notify.register(api, send=lambda t, b: sent.append((t, b)))
    assert set(api.subscriptions) == {"file_reviewed", "file_failed"}
    api.subscriptions["file_reviewed"][0](FileReviewed(destination=Path("/in/review/a.jpg"), label="tsinelas", confidence=0.61))
    assert sent == [("footsort: 1 photo to review", "a.jpg (looks like tsinelas, 61%) in /in/review")]
    with pytest.raises(RuntimeError, match="notify-send not found.*libnotify-bin"):
        notify.register(PluginAPI("notify", Config()), platform="linux", which=lambda c: None)
    with pytest.raises(RuntimeError, match="no desktop notifications on win32"):
        notify.register(PluginAPI("notify", Config()), platform="win32")
    quiet = PluginAPI("notify", Config())
    notify.register(quiet, platform="darwin", which=lambda c: "/usr/bin/osascript")
    assert set(quiet.subscriptions) == {"file_reviewed"}  # failures only with failed = true
