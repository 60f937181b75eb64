"""Where a running review page leaves its address for others: one private file per serving process.

The model is Jupyter's runtime files (`jpserver-<pid>.json` in `jupyter --runtime-dir`). A page that
listens (`footsort ui`, `footsort watch --ui`, the service) writes `page-<pid>.json` into
`runtime/` of footsort's data folder: its URL with the token, its PID and libraries. The file is 0600
in a 0700 folder, since the token lets its holder move photos, and is removed when the page stops.
`footsort ui --url` and `footsort service status` read these files; one left by a killed process (its
PID gone, or its port no longer answering) is removed by the next reader.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Literal
from urllib.parse import urlsplit

from footsort.system import atomic, paths

Kind = Literal["ui", "watch"]  # `footsort ui`, or a daemon serving the page (`footsort watch --ui`, the service)
PREFIX, SUFFIX = "page-", ".json"


@dataclass(frozen=True)
class PageInfo:
    """A running review page: where it is and who serves it."""

    url: str  # carries ?token=
    address: str  # the same without the token
    pid: int
    kind: Kind
    roots: tuple[str, ...] = ()
    started: float = 0.0

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "roots": list(self.roots)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "PageInfo":
        d = json.loads(text)
        return cls(str(d["url"]), str(d["address"]), int(d["pid"]), d["kind"], tuple(map(str, d.get("roots", ()))),
                   float(d.get("started", 0.0)))


def file_for(pid: int) -> Path:
    """The runtime file of the page served by process `pid`."""
    return paths.runtime_dir() / f"{PREFIX}{pid}{SUFFIX}"


def write(info: PageInfo) -> Path:
    """Write `info` as its process's runtime file (0600, in a 0700 folder)."""
    folder = paths.runtime_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)  # an older, wider folder too
    return atomic.write_text(file_for(info.pid), info.to_json(), mode=0o600)


@contextmanager
def advertise(info: PageInfo) -> Iterator[Path]:
    """The runtime file exists while the block runs (the page serves), and is removed after."""
    path = write(info)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """True when process `pid` exists (on Windows, where signal 0 would end it, always True)."""
    if sys.platform == "win32":  # pragma: no cover
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process took the PID
        return False
    return True


def answers(url: str, timeout: float = 0.5) -> bool:
    """True when something accepts connections at the URL's host and port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


def running(alive: Callable[[int], bool] = process_alive,
            reachable: Callable[[str], bool] = answers) -> list[PageInfo]:
    """The pages running now, newest first; removes files left by processes that are gone."""
    folder = paths.runtime_dir()
    try:
        names = sorted(folder.iterdir())
    except OSError:
        return []
    found = []
    for path in names:
        if not (path.name.startswith(PREFIX) and path.name.endswith(SUFFIX)):
            continue
        try:
            info = PageInfo.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError):
            if time.time() - _mtime(path) > 60:  # unreadable and not being written: junk
                path.unlink(missing_ok=True)
            continue
        if not alive(info.pid) or not reachable(info.address):  # killed; or its PID reused after a reboot
            path.unlink(missing_ok=True)
            continue
        found.append(info)
    return sorted(found, key=lambda i: i.started, reverse=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
