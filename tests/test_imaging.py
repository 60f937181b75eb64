from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from footsort.errors import UnreadableImage
from footsort.model.imaging import load_rgb


def test_jpeg_draft_decodes_at_reduced_scale(tmp_path: Path) -> None:
    p = tmp_path / "big.jpg"
    Image.new("RGB", (2000, 1500), (10, 200, 30)).save(p)
    im = load_rgb(p, min_side=224)
    assert im.mode == "RGB" and min(im.size) >= 224 and im.size[0] < 1000


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    p = tmp_path / "rot.jpg"
    img = Image.new("RGB", (300, 200), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    img.save(p, exif=exif)
    assert load_rgb(p).size == (200, 300)


@pytest.mark.parametrize("fmt,mode", [("PNG", "RGBA"), ("GIF", "P"), ("WEBP", "RGB"), ("PNG", "I;16"), ("JPEG", "CMYK")])
def test_common_formats_become_rgb(tmp_path: Path, fmt: str, mode: str) -> None:
    p = tmp_path / f"x.{fmt.lower()}"
    Image.new(mode, (40, 30)).save(p, fmt)
    assert load_rgb(p).mode == "RGB"


def test_heic_is_decoded(tmp_path: Path) -> None:
    import pillow_heif
    pillow_heif.register_heif_opener()
    p = tmp_path / "phone.heic"
    Image.new("RGB", (64, 48), (0, 0, 255)).save(p, "HEIF")
    assert load_rgb(p).size == (64, 48)


def test_bad_files_give_one_line_reasons(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "text.jpg"
    text.write_text("hello")
    good = tmp_path / "good.jpg"
    Image.new("RGB", (300, 300), (1, 2, 3)).save(good)
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes(good.read_bytes()[:200])
    for path, match in ((empty, "empty"), (text, "not a recognised image"), (trunc, "truncated"),
                        (tmp_path / "gone.jpg", "not found"), (tmp_path, "directory")):
        with pytest.raises(UnreadableImage, match=match) as info:
            load_rgb(path)
        assert "\n" not in str(info.value)


def test_eval_transform_matches_torchvision_to_tensor_and_normalize() -> None:
    import torch
    from torchvision import transforms as T

    from footsort.model.presets import Preprocess, eval_transform, fit_image

    img = Image.effect_mandelbrot((90, 60), (-2, -1, 1, 1), 60).convert("RGB")
    spec = Preprocess(size=48, fit="pad")
    reference = T.Compose([T.ToTensor(), T.Normalize(spec.mean, spec.std)])(fit_image(img, 48, "pad"))
    assert torch.allclose(eval_transform(spec)(img), reference, atol=1e-6)


def test_a_heic_photo_named_jpg_decodes_in_a_fresh_process(tmp_path: Path) -> None:
    """Pillow knows HEIC only once the opener is registered: up front, not when a `.heic` name is first seen."""
    import subprocess
    import sys

    import pillow_heif

    pillow_heif.register_heif_opener()
    p = tmp_path / "IMG_0001.jpg"
    Image.new("RGB", (64, 48), (0, 0, 255)).save(p, "HEIF")
    code = "import sys; from footsort.model.imaging import load_rgb; print(load_rgb(sys.argv[1]).size)"
    run = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr.strip().splitlines()[-1:]
    assert run.stdout.strip() == "(64, 48)"
