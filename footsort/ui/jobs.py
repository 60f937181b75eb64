"""The page's Retrain button: `footsort retrain` run as a child process, its output kept for the page.

The page holds no training logic: it runs the very command a person would type (same corrections,
same gate, same model versions), one at a time, and shows its lines as they come.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Sequence

KEEP_LINES = 400


def retrain_argv(roots: Sequence[Path]) -> list[str]:
    """`footsort retrain LIBRARY...` with this Python."""
    return [sys.executable, "-m", "footsort.cli", "retrain", *map(str, roots)]


class Job:
    """One child process at a time, with its last lines of output."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._lines: deque[str] = deque(maxlen=KEEP_LINES)
        self._started: float | None = None
        self._finished: float | None = None
        self._code: int | None = None
        self.runs = 0

    def start(self, argv: Sequence[str]) -> bool:
        """Start `argv` unless a run is going on; False when one is."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return False
            self._lines.clear()
            self._started, self._finished, self._code = time.time(), None, None
            self._proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                          bufsize=1, errors="replace", stdin=subprocess.DEVNULL)
            self.runs += 1
            threading.Thread(target=self._read, args=(self._proc,), daemon=True, name="footsort-retrain").start()
            return True

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            for part in line.rstrip("\n").split("\r"):  # progress bars redraw with \r: keep the last state
                if part.strip():
                    with self._lock:
                        self._lines.append(part)
        code = proc.wait()
        with self._lock:
            self._code, self._finished = code, time.time()

    def status(self) -> dict:
        """Whether it runs, its exit code once finished, and its last lines."""
        with self._lock:
            running = self._proc is not None and self._code is None
            return {"running": running, "exit_code": self._code, "started": self._started,
                    "finished": self._finished, "lines": list(self._lines), "runs": self.runs}

    def stop(self) -> None:
        """Ask a running child to stop (SIGTERM), as Ctrl+C would."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()

    def close(self, timeout: float = 10.0) -> None:
        """Stop a running child and wait for it."""
        self.stop()
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
