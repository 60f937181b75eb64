"""One progress helper: a click bar on a terminal, a loguru line every few seconds without one."""

from __future__ import annotations

import io

from loguru import logger

from footsort.system.progress import progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _logged(run) -> list[str]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    try:
        run()
    finally:
        logger.remove(sink)
    return lines


def test_without_a_terminal_the_label_shows_once_and_a_line_is_logged_every_few_seconds() -> None:
    out, clock = io.StringIO(), Clock()

    def run() -> None:
        with progress(10, "Sorting", every=5, stream=out, clock=clock) as bar:
            for _ in range(10):
                clock.now += 2
                bar.update(1)

    lines = _logged(run)
    assert out.getvalue() == "Sorting\n"  # what click.progressbar always printed without a terminal
    assert lines == ["Sorting: 3/10 (30 %), about 14 s left", "Sorting: 6/10 (60 %), about 8 s left",
                     "Sorting: 9/10 (90 %), about 2 s left"]


def test_a_short_job_logs_nothing_and_a_transient_one_prints_nothing() -> None:
    out = io.StringIO()

    def run() -> None:
        with progress(3, "epoch 1/2", transient=True, stream=out) as bar:
            bar.update(3)

    assert _logged(run) == [] and out.getvalue() == ""


def test_on_a_terminal_a_bar_is_drawn_and_a_transient_one_erased() -> None:
    term = Terminal()
    lines = _logged(lambda: _draw(term, transient=False))
    assert "evaluating" in term.getvalue() and "100%" in term.getvalue() and lines == []
    term = Terminal()
    _draw(term, transient=True)
    assert term.getvalue().endswith("\n\x1b[1A\r\x1b[2K")


def _draw(stream: io.StringIO, transient: bool) -> None:
    with progress(4, "evaluating", transient=transient, stream=stream) as bar:
        for _ in range(4):
            bar.update(1)
