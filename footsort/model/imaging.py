"""Decode what people have (JPEG, PNG, WebP, GIF, HEIC) quickly and safely, at the size the model needs."""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from footsort.errors import UnreadableImage

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)
MAX_PIXELS = 120_000_000  # ~ 11000 x 11000; larger is treated as a decompression bomb

_heif_registered: bool | None = None


def _register_heif() -> bool:
    """Teach Pillow HEIC/HEIF when pillow-heif is installed (once)."""
    global _heif_registered
    if _heif_registered is None:
        try:
            from pillow_heif import register_heif_opener

            register_heif_opener()
            _heif_registered = True
        except Exception:  # pragma: no cover - optional dependency missing
            _heif_registered = False
    return _heif_registered


# Up front, not when a `.heic` name is first seen: phones and messengers save HEIC under `.jpg` too,
# and Pillow recognises a file by its content only among the formats registered when it is opened.
_register_heif()


def is_image_name(path: Path) -> bool:
    """True when the file name has an image suffix footsort handles."""
    return path.suffix.lower() in IMAGE_SUFFIXES


SHRINK_ABOVE = 24_000_000  # pixels; a larger non-JPEG image is box-reduced right after decoding (memory)


def _shrunk(im: Image.Image, min_side: int | None) -> Image.Image:
    """A huge decoded image reduced (short side >= min_side) before the full-size RGB conversions.

    Band by band: reducing RGBA converts to premultiplied alpha first, a second full-size copy.
    """
    w, h = im.size
    factor = min(w, h) // min_side if min_side and w * h > SHRINK_ABOVE else 1
    if factor < 2 or im.mode in ("P", "1"):
        return im
    out = Image.new(im.mode, (-(-w // factor), -(-h // factor)))
    rows = factor * 64  # a multiple of factor: the bands reduce exactly as the whole would
    for top in range(0, h, rows):
        out.paste(im.crop((0, top, w, min(h, top + rows))).reduce(factor), (0, top // factor))
    out.info = dict(im.info)
    return out


def load_rgb(path: Path, min_side: int | None = None) -> Image.Image:
    """Decode `path` to an upright RGB image; with `min_side`, JPEGs decode at reduced scale (draft) and
    huge images of other formats are reduced right after decoding."""
    path = Path(path)
    if path.suffix.lower() in (".heic", ".heif") and not _register_heif():
        raise UnreadableImage(f"{path}: HEIC needs pillow-heif; install it with `pip install pillow-heif`")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise UnreadableImage(f"{path}: {w}x{h} pixels is too large (limit {MAX_PIXELS:,}); likely a decompression bomb")
                if im.format == "JPEG" and min_side:
                    # draft keeps each side >= the requested size, so ask for a box with short side min_side
                    scale = min_side / min(w, h)
                    if scale < 1:
                        im.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))
                if getattr(im, "is_animated", False):
                    im.seek(0)
                im.load()
                ImageOps.exif_transpose(im, in_place=True)  # in place: no second full-size copy
                out = _shrunk(im, min_side)
                if out.mode in ("RGBA", "LA", "PA") or (out.mode == "P" and "transparency" in out.info):
                    rgba = out.convert("RGBA")
                    bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    out = Image.alpha_composite(bg, rgba)
                if out.mode != "RGB":
                    out = out.convert("RGB")
                if out is im:
                    out = out.copy()
                return out
    except UnreadableImage:
        raise
    except FileNotFoundError:
        raise UnreadableImage(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UnreadableImage(f"{path}: is a directory, not an image") from None
    except PermissionError:
        raise UnreadableImage(f"{path}: permission denied; make it readable (chmod u+r)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnreadableImage(f"{path}: image is too large; likely a decompression bomb") from None
    except UnidentifiedImageError:
        size = path.stat().st_size if path.exists() else 0
        what = "empty file (0 bytes)" if size == 0 else "not a recognised image format"
        raise UnreadableImage(f"{path}: {what}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnreadableImage(f"{path}: cannot decode ({exc}); the file may be truncated or corrupt") from None
