"""Large photos (issue 9 item 6): a configurable pixel cap, one huge decode at a time, early reduction."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import RED, ColourClassifier, RecordingHost, write_image
from PIL import Image

from footsort.cli import main
from footsort.errors import ConfigError
from footsort.model.imaging import load_rgb
from footsort.sorting import pipeline as pl
from footsort.sorting.decide import Policy
from footsort.sorting.pipeline import Item, Layout, Pipeline
from footsort.sorting.sorter import Sorter
from footsort.system import config

CLASSES = ColourClassifier.classes


def big_png(path: Path, size: tuple[int, int], mode: str = "RGB", tag: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new(mode, size, (230, 20, 20, 255)[: len(mode)])
    im.putpixel((size[0] - 1, size[1] - 1), (tag, 0, 0, 255)[: len(mode)])  # distinct content: no duplicates
    im.save(path, compress_level=1)
    return path


def test_max_pixels_is_a_config_key_with_a_floor() -> None:
    assert config.Config().sort.max_pixels >= 89_000_000  # photos up to Pillow's own limit are sorted by default
    assert config.load(environ={"FOOTSORT_SORT_MAX_PIXELS": "2000000"}).sort.max_pixels == 2_000_000
    with pytest.raises(ConfigError, match="sort.max_pixels"):
        config.load(environ={"FOOTSORT_SORT_MAX_PIXELS": "10"})


def test_a_photo_above_max_pixels_goes_to_failed_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 fake_cli: dict) -> None:
    inbox = tmp_path / "inbox"
    big_png(inbox / "poster.png", (1500, 1000))
    write_image(inbox / "small.jpg", RED, 1)
    monkeypatch.setenv("FOOTSORT_SORT_MAX_PIXELS", "1000000")
    decoded: list[str] = []
    real = pl.load_rgb
    monkeypatch.setattr(pl, "load_rgb", lambda p, **kw: (decoded.append(Path(p).name), real(p, **kw))[1])
    result = CliRunner().invoke(main, ["sort", str(inbox)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (inbox / "failed/poster.png").exists() and (inbox / "tsinelas/small.jpg").exists()
    assert decoded == ["small.jpg"]  # the large one is refused from its header, never decoded
    log = CliRunner().invoke(main, ["log"]).output
    assert "1500x1000 is 1.5 million pixels, above sort.max_pixels (1.0 million)" in log


def test_only_one_huge_decode_runs_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = tmp_path / "inbox"
    huge = [big_png(inbox / f"huge{i}.png", (400, 300), tag=i) for i in range(4)]
    small = [write_image(inbox / f"small{i}.jpg", RED, i) for i in range(4)]
    monkeypatch.setattr(pl, "HUGE_DECODE", 100_000, raising=False)  # 400x300 counts as huge here
    running: dict[str, int] = {"huge": 0, "small": 0}
    most: dict[str, int] = {"huge": 0, "small": 0}
    lock = threading.Lock()
    real = pl.load_rgb

    def slow_decode(path: Path, **kw: object) -> Image.Image:
        kind = "huge" if Path(path).name.startswith("huge") else "small"
        with lock:
            running[kind] += 1
            most[kind] = max(most[kind], running[kind])
        time.sleep(0.15)
        try:
            return real(path, **kw)  # type: ignore[arg-type]
        finally:
            with lock:
                running[kind] -= 1

    monkeypatch.setattr(pl, "load_rgb", slow_decode)
    with Pipeline(ColourClassifier(), Sorter(None, dry_run=True), None, RecordingHost(), Policy(0.8, CLASSES),
                  workers=4, batch_size=4) as p:
        outcomes = list(p.run(Item(f, Layout(inbox, CLASSES)) for f in huge))
        assert [o.action for o in outcomes] == ["sort"] * 4
        list(p.run(Item(f, Layout(inbox, CLASSES)) for f in small))
    assert most["huge"] == 1  # four loader threads, one huge decode at a time
    assert most["small"] > 1  # ordinary photos still decode side by side


def test_decoded_pixels_counts_jpeg_draft_scaling() -> None:
    assert pl.decoded_pixels(10_000, 8_000, "PNG", 224) == 80_000_000
    assert pl.decoded_pixels(10_000, 8_000, "JPEG", 224) == 1250 * 1000  # decoded at 1/8 scale
    assert pl.decoded_pixels(10_000, 8_000, "JPEG", None) == 80_000_000


def test_a_huge_png_is_reduced_right_after_decoding(tmp_path: Path) -> None:
    path = big_png(tmp_path / "scan.png", (6000, 4200), "RGBA")  # 25 Mpx with alpha
    image = load_rgb(path, min_side=224)
    assert image.mode == "RGB" and min(image.size) >= 224 and image.size[0] <= 600  # not 6000x4200 any more
    assert image.getpixel((5, 5)) == (230, 20, 20)
    assert load_rgb(path).size == (6000, 4200)  # without min_side: the full image


def test_a_too_large_photo_is_failed_at_once_even_when_just_written(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    path = big_png(inbox / "poster.png", (1500, 1000))
    with Pipeline(ColourClassifier(), Sorter(None, dry_run=True), None, RecordingHost(), Policy(0.8, CLASSES),
                  incomplete_seconds=30, max_pixels=1_000_000) as p:  # the daemon's wait for half-written files
        (outcome,) = p.run([Item(path, Layout(inbox, CLASSES))])
    assert outcome.action == "failed" and "above sort.max_pixels" in outcome.reason
