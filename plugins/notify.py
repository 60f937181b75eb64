"""notify: a desktop notification when photos wait in review (notify-send on Linux, osascript on macOS), rate-limited.

    [plugins]
    enabled = ["notify"]
    [plugins.notify]
    interval = 600   # at most one notification every 10 minutes; the rest are counted into the next one
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from footsort.plugins.events import FileFailed, FileReviewed
from footsort.plugins.host import PluginAPI


@dataclass(frozen=True)
class Settings:
    """[plugins.notify]"""

    interval: float = 300.0  # seconds between notifications at most; items in between are counted into the next
    failed: bool = False  # also notify about files that could not be read


def applescript_string(text: str) -> str:
    """`text` as an AppleScript string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def notify_command(platform: str, title: str, body: str) -> list[str] | None:
    """The command that shows a notification on this platform (None: none known)."""
    if platform.startswith("linux") or "bsd" in platform:
        return ["notify-send", "--app-name=footsort", title, body]
    if platform == "darwin":
        return ["osascript", "-e", f"display notification {applescript_string(body)} with title {applescript_string(title)}"]
    return None


def message(reviewed: int, failed: int, latest: str) -> tuple[str, str]:
    """Title and body for `reviewed` photos waiting in review and `failed` unreadable ones."""
    parts = []
    if reviewed:
        parts.append(f"{reviewed} photo{'s' if reviewed != 1 else ''} to review")
    if failed:
        parts.append(f"{failed} unreadable")
    return "footsort: " + ", ".join(parts), latest


class Notifier:
    """Counts items and shows at most one notification per `interval`; a timer sends what is held back."""

    def __init__(self, settings: Settings, send: Callable[[str, str], None],
                 clock: Callable[[], float] = time.monotonic, timers: bool = True) -> None:
        self.settings = settings
        self.send = send
        self.clock = clock
        self.timers = timers
        self.reviewed = self.failed = 0
        self.latest = ""
        self.last_sent: float | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def add(self, latest: str, failed: bool = False) -> None:
        """Count one item; notify now if the interval has passed, else later."""
        with self._lock:
            if failed:
                self.failed += 1
            else:
                self.reviewed += 1
            self.latest = latest
            now = self.clock()
            wait = 0.0 if self.last_sent is None else self.last_sent + self.settings.interval - now
            if wait <= 0:
                self._flush_locked()
            elif self.timers and self._timer is None:
                self._timer = threading.Timer(wait, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Send what is counted, if anything."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._timer = None
        if not (self.reviewed or self.failed):
            return
        title, body = message(self.reviewed, self.failed, self.latest)
        self.reviewed = self.failed = 0
        self.last_sent = self.clock()
        self.send(title, body)


def _runner(platform: str) -> Callable[[str, str], None]:
    def send(title: str, body: str) -> None:
        command = notify_command(platform, title, body)
        assert command is not None
        subprocess.run(command, check=True, timeout=10, capture_output=True)

    return send


def register(api: PluginAPI, platform: str = sys.platform, which: Callable[[str], str | None] = shutil.which,
             send: Callable[[str, str], None] | None = None) -> None:
    """Notify about review items (and failures when `failed = true`)."""
    settings = api.settings_as(Settings)
    command: Sequence[str] | None = notify_command(platform, "", "")
    if send is None:
        if command is None:
            raise RuntimeError(f"no desktop notifications on {platform}; footsort knows notify-send (Linux) and osascript (macOS)")
        if which(command[0]) is None:
            hint = " (Debian/Ubuntu: apt install libnotify-bin)" if command[0] == "notify-send" else ""
            raise RuntimeError(f"{command[0]} not found on PATH{hint}")
        send = _runner(platform)
    notifier = Notifier(settings, send)

    def on_review(event: FileReviewed) -> None:
        guess = f" (looks like {event.label}, {event.confidence:.0%})" if event.label else ""
        notifier.add(f"{event.destination.name}{guess} in {event.destination.parent}")

    def on_failed(event: FileFailed) -> None:
        notifier.add(f"{event.source.name}: {event.reason}", failed=True)

    api.on(FileReviewed, on_review)  # type: ignore[arg-type]
    if settings.failed:
        api.on(FileFailed, on_failed)  # type: ignore[arg-type]
