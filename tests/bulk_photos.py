"""A few dozen small photos for the bulk tests, broken ones included, and a way to compare with `footsort sort`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from click.testing import CliRunner, Result
from fakes import BLUE, MUDDY, RED, jpeg_bytes, write_image
from loguru import logger

from footsort.cli import main

BROKEN = ("broken.jpg", "empty.jpg", "truncated.jpg", "text.png")


def cli(*args: object) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    logger.remove()  # the CLI pointed loguru at CliRunner's (now closed) stderr
    logger.add(sys.stderr, level="WARNING")
    return result


def make_photos(box: Path, n: int = 10) -> Path:
    """n red (tsinelas), n blue (sapatos), n//2 muddy (review) photos, 4 broken ones and a text file."""
    for i in range(n):
        write_image(box / f"red{i:02}.jpg", RED, i)
        write_image(box / f"blue{i:02}.jpg", BLUE, 100 + i)
    for i in range(n // 2):
        write_image(box / f"muddy{i:02}.png", MUDDY, 200 + i)
    (box / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (box / "empty.jpg").write_bytes(b"")
    (box / "truncated.jpg").write_bytes(jpeg_bytes(RED, size=(300, 200), tag=999)[:400])
    (box / "text.png").write_text("not a picture")
    (box / "notes.txt").write_text("hello")
    return box


def sorted_by_footsort_sort(box: Path, tmp: Path, *flags: object) -> dict[str, tuple[str, str]]:
    """name -> (action, label) that `footsort sort` gives the photos of `box` (sorted in a copy)."""
    copy = tmp / "sort-copy"
    shutil.copytree(box, copy)
    result = cli("sort", *flags, copy)
    assert result.exit_code == 0, result.output
    out = {}
    for folder in copy.iterdir():
        if folder.is_dir():
            action = folder.name if folder.name in ("review", "failed") else "sort"
            for f in folder.iterdir():
                out[f.name] = (action, folder.name if action == "sort" else "")
    return out


def as_sorted(rows) -> dict[str, tuple[str, str]]:
    """name -> (action, label-if-sorted) of results rows, comparable with `sorted_by_footsort_sort`."""
    return {Path(r.uri).name: (r.action, r.label if r.action == "sort" else "") for r in rows}
