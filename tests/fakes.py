"""Test doubles: a colour-reading classifier (no torch), a recording plugin host, image makers; `wait_for`."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageStat

from footsort.model.prediction import Prediction
from footsort.plugins.events import Event

RED, BLUE = (230, 20, 20), (20, 20, 230)  # -> tsinelas 0.95, sapatos 0.95
MUDDY = (150, 20, 100)  # -> tsinelas, confidence about 0.6: review


class ColourClassifier:
    """Says `tsinelas` for reddish images and `sapatos` for bluish ones; confidence from the contrast."""

    classes = ("sapatos", "tsinelas")
    input_size = 64

    def __init__(self, version: str = "fake-1") -> None:
        self.version = version
        self.batches: list[int] = []
        self._lock = threading.Lock()

    def predict_images(self, images: Sequence[Image.Image]) -> list[Prediction]:
        """Label images by mean red vs mean blue."""
        with self._lock:
            self.batches.append(len(images))
        out = []
        for im in images:
            r, _, b = ImageStat.Stat(im.convert("RGB")).mean
            p_t = 0.5 + 0.5 * (r - b) / 255 * 1.11
            p_t = min(1.0, max(0.0, p_t))
            label = "tsinelas" if p_t >= 0.5 else "sapatos"
            conf = p_t if label == "tsinelas" else 1 - p_t
            out.append(Prediction(label, round(conf, 4), {"tsinelas": p_t, "sapatos": 1 - p_t}, self.version))
        return out


def colour_factory(cfg: object = None, model_path: Path | None = None, fuse: str = "now") -> ColourClassifier:
    """A ClassifierFactory giving the colour-reading fake, whatever the settings (picklable: Ray actors call it too)."""
    return ColourClassifier()


def fake_obj() -> dict:
    """The CLI context object under which every command gets the colour-reading fake instead of a real model."""
    return {"classifier_factory": colour_factory}


class RecordingHost:
    """A PluginHost that remembers every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass

    def names(self) -> list[str]:
        return [e.name for e in self.events]


def jpeg_bytes(colour: tuple[int, int, int] = RED, size: tuple[int, int] = (96, 64), tag: int = 0,
               fmt: str = "JPEG") -> bytes:
    """A small image of one colour; `tag` is written into the file so contents (hashes) differ."""
    im = Image.new("RGB", size, colour)
    buf = io.BytesIO()
    if fmt == "JPEG":
        im.save(buf, fmt, quality=95, comment=f"tag {tag}".encode())
    else:
        im.putpixel((0, 0), (tag % 256, (tag // 256) % 256, 7))
        im.save(buf, fmt)
    return buf.getvalue()


def write_image(path: Path, colour: tuple[int, int, int] = RED, tag: int = 0) -> Path:
    """Write a small JPEG (or PNG by suffix) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    path.write_bytes(jpeg_bytes(colour, tag=tag, fmt=fmt))
    return path


def wait_for(check, timeout: float = 10.0, what: str = "condition"):
    """Poll `check` until it returns something true (returned), or fail after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
