"""Household-like training views from white-background catalogue photos.

Catalogue shots (one shoe, side view, white background) look nothing like a phone photo of a pair
on a tiled floor. Because the background is plain white, the shoe can be cut out and pasted, as a
single shoe or a pair, rotated, small or large, onto procedurally drawn floors, fabrics and
clutter, with shadows, colour casts, blur and noise. Training on such views (together with the
clean photos) makes the classifier look at the footwear rather than at the white background.
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

WHITE_LEVEL = 232  # a pixel brighter than this in every channel counts as background


def cutout_mask(img: Image.Image) -> Image.Image | None:
    """An 'L' mask of the object in a white-background photo (None when the background is not white)."""
    arr = np.asarray(img.convert("RGB"))
    bright = (arr.min(axis=2) > WHITE_LEVEL).astype(np.uint8) * 255
    border = np.concatenate([bright[0], bright[-1], bright[:, 0], bright[:, -1]])
    if border.mean() < 0.8 * 255:
        return None
    background_px = _border_connected(bright > 0)
    mask = Image.fromarray(np.where(background_px, 0, 255).astype(np.uint8))
    mask = mask.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.GaussianBlur(0.8))
    if np.asarray(mask).mean() < 255 * 0.03:
        return None
    return mask


def _fill_runs(region: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Extend `region` along each row to the whole run of `allowed` pixels it touches."""
    h, w = allowed.shape
    breaks = ~allowed
    breaks[:, 0] = True  # every row starts a new run
    ids = np.cumsum(breaks.ravel()).reshape(h, w)
    hit = np.zeros(ids.max() + 2, dtype=bool)
    hit[ids[region & allowed]] = True
    return hit[ids] & allowed


def _border_connected(allowed: np.ndarray) -> np.ndarray:
    """Pixels of `allowed` connected (4-neighbourhood) to the image border."""
    region = np.zeros_like(allowed)
    region[0], region[-1], region[:, 0], region[:, -1] = allowed[0], allowed[-1], allowed[:, 0], allowed[:, -1]
    while True:
        grown = _fill_runs(region, allowed)
        grown = _fill_runs(grown.T.copy(), allowed.T.copy()).T
        if np.array_equal(grown, region):
            return region
        region = grown


def _rgb(rng: random.Random, lo: int = 30, hi: int = 230) -> tuple[int, int, int]:
    return tuple(rng.randint(lo, hi) for _ in range(3))  # type: ignore[return-value]


def _noise(rng: random.Random, h: int, w: int, scale: int) -> np.ndarray:
    """Smooth noise in [0, 1] made by upscaling a small random grid."""
    small = np.random.default_rng(rng.randrange(2**32)).random((max(2, h // scale), max(2, w // scale)))
    im = Image.fromarray((small * 255).astype(np.uint8), "L").resize((w, h), Image.BICUBIC)
    return np.asarray(im, dtype=np.float32) / 255.0


def background(rng: random.Random, w: int, h: int) -> Image.Image:
    """A random floor-, fabric- or clutter-like background."""
    kind = rng.choice(["wood", "tiles", "fabric", "plain", "clutter", "stone"])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.array(_rgb(rng), dtype=np.float32)
    if kind == "wood":
        base = np.array([rng.randint(90, 200), rng.randint(50, 140), rng.randint(20, 90)], np.float32)
        freq = rng.uniform(0.02, 0.08)
        angle = rng.uniform(0, np.pi)
        t = xx * np.cos(angle) + yy * np.sin(angle)
        grain = 0.5 + 0.5 * np.sin(t * freq + 6 * _noise(rng, h, w, 24))
        plank = (np.floor(t / rng.uniform(30, 80)) % 2) * rng.uniform(0.0, 0.15)
        shade = 0.75 + 0.25 * grain - plank
        arr = base[None, None] * shade[..., None]
    elif kind == "tiles":
        step = rng.randint(24, 90)
        grout = np.array(_rgb(rng, 60, 200), np.float32)
        tile = ((xx % step) > 2) & ((yy % step) > 2)
        var = _noise(rng, h, w, 8)[..., None] * 30 - 15
        arr = np.where(tile[..., None], base[None, None] + var, grout[None, None])
    elif kind == "fabric":
        n = _noise(rng, h, w, 3) * 0.6 + _noise(rng, h, w, 20) * 0.4
        arr = base[None, None] * (0.6 + 0.6 * n[..., None])
    elif kind == "stone":
        n = _noise(rng, h, w, 2) * 0.5 + _noise(rng, h, w, 10) * 0.5
        grey = rng.randint(80, 200)
        arr = np.full((h, w, 3), grey, np.float32) * (0.7 + 0.5 * n[..., None])
    else:
        arr = np.broadcast_to(base, (h, w, 3)).astype(np.float32)
    grad = 1 + rng.uniform(-0.35, 0.35) * (xx / w - 0.5) + rng.uniform(-0.35, 0.35) * (yy / h - 0.5)
    arr = np.clip(arr * grad[..., None], 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    if kind in ("clutter", "plain", "fabric") or rng.random() < 0.4:
        draw = ImageDraw.Draw(img)
        for _ in range(rng.randint(1, 8 if kind == "clutter" else 3)):
            x0, y0 = rng.randint(-w // 4, w), rng.randint(-h // 4, h)
            x1, y1 = x0 + rng.randint(10, w // 2), y0 + rng.randint(10, h // 2)
            shape = rng.choice([draw.rectangle, draw.ellipse, draw.line])
            if shape is draw.line:
                draw.line((x0, y0, x1, y1), fill=_rgb(rng, 0, 255), width=rng.randint(2, 12))
            else:
                shape((x0, y0, x1, y1), fill=_rgb(rng, 0, 255))
    return img


def _place(canvas: Image.Image, obj: Image.Image, mask: Image.Image, rng: random.Random,
           target_w: float, angle: float, center: tuple[float, float]) -> None:
    scale = target_w / obj.width
    size = (max(4, int(obj.width * scale)), max(4, int(obj.height * scale)))
    obj, mask = obj.resize(size, Image.BILINEAR), mask.resize(size, Image.BILINEAR)
    obj = obj.rotate(angle, Image.BILINEAR, expand=True)
    mask = mask.rotate(angle, Image.BILINEAR, expand=True)
    x, y = int(center[0] - obj.width / 2), int(center[1] - obj.height / 2)
    if rng.random() < 0.7:  # soft shadow
        shadow = mask.filter(ImageFilter.GaussianBlur(rng.uniform(3, 8))).point(lambda v: int(v * rng.uniform(0.3, 0.6)))
        dark = Image.new("RGB", obj.size, (0, 0, 0))
        canvas.paste(dark, (x + rng.randint(-6, 6), y + rng.randint(2, 10)), shadow)
    canvas.paste(obj, (x, y), mask)


def household_view(img: Image.Image, rng: random.Random, size: int = 224) -> Image.Image:
    """One synthetic 'phone photo' of the footwear in `img` (falls back to a plain augmented crop)."""
    img = img.convert("RGB")
    mask = cutout_mask(img)
    if mask is None:
        return photo_jitter(img.resize((size, size), Image.BILINEAR), rng)
    bbox = mask.getbbox() or (0, 0, img.width, img.height)
    obj, mask = img.crop(bbox), mask.crop(bbox)
    if rng.random() < 0.5:
        obj, mask = obj.transpose(Image.FLIP_LEFT_RIGHT), mask.transpose(Image.FLIP_LEFT_RIGHT)
    canvas = background(rng, size, size)
    pair = rng.random() < 0.5
    top_down = rng.random() < 0.35
    base_angle = rng.uniform(0, 360) if top_down else rng.uniform(-25, 25)
    target = size * (rng.uniform(0.3, 0.6) if pair else rng.uniform(0.35, 0.95))
    cx, cy = size / 2 + rng.uniform(-0.15, 0.15) * size, size / 2 + rng.uniform(-0.15, 0.15) * size
    if pair:
        gap = target * rng.uniform(0.25, 0.55)
        rad = np.deg2rad(base_angle + 90)
        dx, dy = np.cos(rad) * gap / 2, -np.sin(rad) * gap / 2
        second = (obj.transpose(Image.FLIP_LEFT_RIGHT), mask.transpose(Image.FLIP_LEFT_RIGHT)) if rng.random() < 0.5 else (obj, mask)
        _place(canvas, second[0], second[1], rng, target, base_angle + rng.uniform(-12, 12), (cx - dx, cy - dy))
        _place(canvas, obj, mask, rng, target, base_angle, (cx + dx, cy + dy))
    else:
        _place(canvas, obj, mask, rng, target, base_angle, (cx, cy))
    return photo_jitter(canvas, rng)


def photo_jitter(img: Image.Image, rng: random.Random) -> Image.Image:
    """Camera-like changes: exposure, contrast, colour cast, blur, noise, JPEG artefacts."""
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.6, 1.3))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.7, 1.3))
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.5, 1.4))
    if rng.random() < 0.5:
        cast = np.array([rng.uniform(0.85, 1.15) for _ in range(3)], np.float32)
        img = Image.fromarray(np.clip(np.asarray(img, np.float32) * cast, 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.8)))
    if rng.random() < 0.3:
        arr = np.asarray(img, np.float32) + np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(3, 12), (img.height, img.width, 3))
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.4:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rng.randint(30, 85))
        buf.seek(0)
        img = Image.open(buf).convert("RGB")
    return img
