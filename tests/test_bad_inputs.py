"""A corpus of awkward inputs, generated here, through `footsort sort` and the daemon."""

from __future__ import annotations

import io
import os
import struct
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import RED, ColourClassifier, RecordingHost, jpeg_bytes, write_image
from loguru import logger
from PIL import Image

from footsort.cli import main
from footsort.sorting import pipeline as pl
from footsort.sorting.decide import Policy
from footsort.sorting.journal import Journal
from footsort.sorting.pipeline import Item, Layout, Pipeline
from footsort.sorting.sorter import Sorter

LONG = "x" * 246 + ".jpg"  # 250 characters
GOOD_NAMES = ["with space.jpg", "sandália ünïcødé 👟.jpg", "new\nline.jpg", LONG]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png() -> bytes:
    """A PNG header claiming 50000 x 50000 pixels: a decompression bomb, caught before decoding."""
    ihdr = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")


def encoded(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def exif_rotated() -> bytes:
    """A 96x64 JPEG whose EXIF says: rotate 90 degrees to display (orientation 6)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(Image.new("RGB", (96, 64), RED), "JPEG", exif=exif.tobytes())


CORPUS: dict[str, bytes] = {
    "truncated.jpg": jpeg_bytes(RED, size=(256, 256), tag=1)[:400],
    "zero.jpg": b"",
    "text.jpg": b"this is a text file with an image name\n",
    "alpha.png": encoded(Image.new("RGBA", (40, 40), (*RED, 250)), "PNG"),
    "sixteen.png": encoded(Image.new("I;16", (40, 40), 40000), "PNG"),
    "cmyk.jpg": encoded(Image.new("CMYK", (40, 40), (0, 230, 230, 20)), "JPEG"),
    "palette.gif": encoded(Image.new("RGB", (40, 40), RED).convert("P"), "GIF"),
    "bomb.png": huge_png(),
    "rotated.jpg": exif_rotated(),
}
EXPECTED_FAILED = {"truncated.jpg": "truncated", "zero.jpg": "empty", "text.jpg": "not a recognised",
                   "bomb.png": "too large"}


@pytest.fixture(autouse=True)
def fake_model(fake_cli: dict):
    yield
    logger.remove()
    logger.add(sys.stderr, level="WARNING")


def make_corpus(box: Path, elsewhere: Path) -> None:
    box.mkdir(parents=True)
    for name, data in CORPUS.items():
        (box / name).write_bytes(data)
    for i, name in enumerate(GOOD_NAMES):
        write_image(box / name, RED, 100 + i)
    target = write_image(elsewhere / "target.jpg", RED, 200)
    (box / "link.jpg").symlink_to(target)
    (box / "folder.jpg").mkdir()
    write_image(box / "folder.jpg" / "inside.jpg", RED, 201)
    os.mkfifo(box / "pipe.jpg")  # reading it would block for ever
    old = time.time() - 3600
    for p in box.iterdir():
        os.utime(p, (old, old), follow_symlinks=False)


def test_the_corpus_through_sort(tmp_path: Path) -> None:
    box, elsewhere = tmp_path / "inbox", tmp_path / "elsewhere"
    make_corpus(box, elsewhere)
    result = CliRunner().invoke(main, ["sort", str(box)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    failed = {p.name for p in (box / "failed").iterdir()}
    assert failed == set(EXPECTED_FAILED)
    with Journal.open(readonly=True) as j:
        reasons = {e.source.name: e.details.reason for e in j.recent(50) if e.action == "failed"}
    for name, words in EXPECTED_FAILED.items():
        assert words in reasons[name], (name, reasons[name])
    sorted_names = {p.name for p in (box / "tsinelas").iterdir()}
    assert {"alpha.png", "cmyk.jpg", "palette.gif", "rotated.jpg", *GOOD_NAMES} <= sorted_names
    assert (box / "review" / "sixteen.png").exists()  # grey: the fake model cannot tell, which is right
    # left alone, and said why
    assert (box / "link.jpg").is_symlink() and (elsewhere / "target.jpg").exists()
    assert (box / "folder.jpg" / "inside.jpg").exists() and (box / "pipe.jpg").exists()
    assert "symbolic link" in result.output and "not a regular file" in result.output


def test_exif_rotation_reaches_the_model_upright(tmp_path: Path) -> None:
    seen = []

    class Recording(ColourClassifier):
        def predict_images(self, images):
            seen.extend(im.size for im in images)
            return super().predict_images(images)

    path = tmp_path / "rotated.jpg"
    path.write_bytes(exif_rotated())
    with Pipeline(Recording(), Sorter(None, dry_run=True), None, RecordingHost(), Policy(0.8)) as p:
        list(p.run([Item(path, Layout(tmp_path, ColourClassifier.classes))]))
    assert seen == [(64, 96)]


def test_unreadable_permissions_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as root here, where chmod 000 blocks nothing: the read error is injected instead."""
    path = write_image(tmp_path / "inbox/locked.jpg", RED, 1)
    real_hash = pl.file_hash

    def denied(p: Path) -> str:
        if p == path:
            raise PermissionError(13, "Permission denied", str(p))
        return real_hash(p)

    monkeypatch.setattr(pl, "file_hash", denied)
    with Journal.open() as j, Pipeline(ColourClassifier(), Sorter(j), j, RecordingHost(), Policy(0.8)) as p:
        (o,) = p.run([Item(path, Layout(tmp_path / "inbox", ColourClassifier.classes))])
        assert o.action == "failed" and "permission denied" in o.reason and "chmod" in o.reason
        assert (tmp_path / "inbox/failed/locked.jpg").exists()
        entry = j.recent(1)[0]
        assert entry.hash is None and entry.size == (tmp_path / "inbox/failed/locked.jpg").stat().st_size


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode; covered by the simulated test")
def test_unreadable_permissions_for_real(tmp_path: Path) -> None:
    box = tmp_path / "inbox"
    path = write_image(box / "locked.jpg", RED, 1)
    os.chmod(path, 0)
    old = time.time() - 3600
    os.utime(path, (old, old))
    result = CliRunner().invoke(main, ["sort", str(box)], catch_exceptions=False)
    assert result.exit_code == 0 and (box / "failed/locked.jpg").exists()


def test_a_file_deleted_before_it_is_processed(tmp_path: Path) -> None:
    path = write_image(tmp_path / "inbox/gone.jpg", RED, 1)
    real_load = pl.load

    def load_after_delete(item, min_side, *rest):
        item.path.unlink()  # deleted between being listed and being read
        return real_load(item, min_side, *rest)

    with Journal.open() as j, Pipeline(ColourClassifier(), Sorter(j), j, RecordingHost(), Policy(0.8)) as p:
        pl_load, pl.load = pl.load, load_after_delete
        try:
            (o,) = p.run([Item(path, Layout(tmp_path / "inbox", ColourClassifier.classes))])
        finally:
            pl.load = pl_load
    assert o.action == "vanished"
    assert sorted(os.listdir(tmp_path / "inbox")) == []


def test_a_slow_writer_with_a_stall_is_waited_for_by_the_daemon(tmp_path: Path) -> None:
    """About 10 s of writing, in 0.5 s steps, with one 2 s stall longer than the settle time."""
    from footsort.sorting import daemon
    from footsort.system.config import load as load_config

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = jpeg_bytes(RED, size=(200, 200), tag=9)
    steps = 16
    chunk = len(data) // steps + 1
    cfg = load_config(overrides={"watch": {"settle_seconds": 1.0, "rescan_seconds": 60, "incomplete_seconds": 30}})
    stop = threading.Event()
    finished_writing: list[float] = []

    def writer() -> None:
        with open(inbox / "slow.jpg", "wb") as f:
            for i in range(steps):
                f.write(data[i * chunk:(i + 1) * chunk])
                f.flush()
                time.sleep(2.0 if i == 8 else 0.5)
        finished_writing.append(time.monotonic())

    t = threading.Thread(target=writer)
    with Journal.open() as j:
        runner = threading.Thread(target=daemon.run, args=([inbox], cfg, ColourClassifier()),
                                  kwargs=dict(host=RecordingHost(), journal=j, stop=stop))
        runner.start()
        t.start()
        deadline = time.monotonic() + 30
        while not (inbox / "tsinelas/slow.jpg").exists() and time.monotonic() < deadline:
            assert not (inbox / "failed").exists(), "a file still being written was failed"
            time.sleep(0.1)
        sorted_at = time.monotonic()
        stop.set()
        runner.join(10)
        t.join()
    assert (inbox / "tsinelas/slow.jpg").read_bytes() == data
    assert finished_writing and sorted_at >= finished_writing[0]
