"""Progress of long work: a bar on a terminal, a log line every few seconds elsewhere (a service, a pipe, nohup).

One library draws the bar: click's progressbar (click is a dependency anyway). Without a terminal click
prints the label once and draws nothing, so this module adds a loguru INFO line every `EVERY` seconds
(`sorting: 120/500 (24 %), about 2 min left`), which lands in the journal or the log file of a service.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TextIO

import click
from loguru import logger

EVERY = 5.0  # seconds between log lines when there is no terminal
_ERASE_LINE = "\x1b[1A\r\x1b[2K"  # up over the line the finished bar left, and clear it


def on_terminal(stream: TextIO | None = None) -> bool:
    """True when `stream` (default: stderr) is a terminal, where a bar can be drawn."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _Ticker:
    """Logs `label: done/total` at most once every `every` seconds."""

    def __init__(self, total: int, label: str, every: float, clock: Callable[[], float]) -> None:
        self.total, self.label, self.every, self.clock = total, label, every, clock
        self.done = 0
        self.start = self.last = clock()

    def __call__(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            logger.bind(progress=True).info(self.line(now))  # shown even where per-file lines are quieted

    def line(self, now: float) -> str:
        """The log line for the work done so far."""
        if self.total <= 0:
            return f"{self.label}: {self.done} done"
        text = f"{self.label}: {self.done}/{self.total} ({100 * self.done / self.total:.0f} %)"
        if 0 < self.done < self.total:
            text += f", about {_duration((now - self.start) * (self.total - self.done) / self.done)} left"
        return text


class Bar:
    """What `progress` yields (click's bar protocol): `update(n)` after n more steps."""

    def __init__(self, drawn: Any | None, ticker: _Ticker | None) -> None:
        self._drawn, self._ticker = drawn, ticker

    def update(self, n: int = 1) -> None:
        """Count n more steps done."""
        if self._drawn is not None:
            self._drawn.update(n)
        if self._ticker is not None:
            self._ticker(n)


@contextmanager
def progress(total: int, label: str, *, transient: bool = False, every: float | None = None,
             stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> Iterator[Bar]:
    """A `Bar` for `total` steps of `label`: drawn on a terminal, else a log line every `every` seconds.

    Without a terminal click prints the label once, as it always did; a `transient` bar leaves nothing
    behind (erased when done on a terminal, no label line elsewhere).
    """
    stream = sys.stderr if stream is None else stream  # looked up now: CliRunner swaps sys.stderr
    tty = on_terminal(stream)
    ticker = None if tty else _Ticker(total, label, EVERY if every is None else every, clock)
    if not tty and transient:
        yield Bar(None, ticker)
        return
    with click.progressbar(length=total, label=label, file=stream) as drawn:
        yield Bar(drawn, ticker)
    if tty and transient:
        stream.write(_ERASE_LINE)
        stream.flush()

