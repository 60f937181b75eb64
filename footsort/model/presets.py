"""Train and eval preprocessing, side by side; the settings travel inside every model file."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Literal

from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Fit = Literal["crop", "pad", "squash"]


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes the model's input tensor."""

    size: int = 300
    fit: Fit = "crop"  # crop: Resize+CenterCrop (the paper); pad: whole image letterboxed; squash: resized to a square
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the model file's metadata."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocess":
        """Rebuild from model-file metadata."""
        return cls(size=int(data["size"]), fit=data.get("fit", "crop"),
                   mean=tuple(data["mean"]), std=tuple(data["std"]))  # type: ignore[arg-type]


def fit_image(img: Image.Image, size: int, fit: Fit) -> Image.Image:
    """Resize a PIL image to size x size the way `fit` says."""
    if fit == "squash":
        return img.resize((size, size), Image.BILINEAR)
    w, h = img.size
    if fit == "pad":
        scale = size / max(w, h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = img.resize((nw, nh), Image.BILINEAR)
        canvas = Image.new("RGB", (size, size), tuple(int(255 * m) for m in IMAGENET_MEAN))
        canvas.paste(small, ((size - nw) // 2, (size - nh) // 2))
        return canvas
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    big = img.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return big.crop((left, top, left + size, top + size))


def eval_array(spec: Preprocess) -> Callable[[Image.Image], Any]:
    """Deterministic transform for prediction: fit, then ToTensor + Normalize as a float32 (3, S, S) numpy
    array (torchvision's arithmetic without torch: both engines, torch and ONNX, see the same numbers)."""
    import numpy as np

    # each channel's 256 possible values, computed once as (v / 255 - mean) / std in float32 (the same operations
    # in the same order, so bit for bit the same numbers): then one lookup per pixel (about 0.6 ms less a photo)
    table = np.arange(256, dtype=np.float32)[None, :].repeat(3, axis=0) / np.float32(255)
    table -= np.asarray(spec.mean, dtype=np.float32)[:, None]
    table /= np.asarray(spec.std, dtype=np.float32)[:, None]

    def transform(img: Image.Image) -> Any:
        fitted = fit_image(img if img.mode == "RGB" else img.convert("RGB"), spec.size, spec.fit)
        pixels = np.asarray(fitted, dtype=np.uint8)
        x = np.empty((3, *pixels.shape[:2]), dtype=np.float32)
        for c in range(3):
            np.take(table[c], pixels[..., c], out=x[c])
        return x

    return transform


def eval_transform(spec: Preprocess) -> Callable[[Image.Image], Any]:
    """eval_array as a torch tensor (for validation and the torch engine; torchvision is not imported:
    sorting starts about a second sooner)."""
    import torch

    to_array = eval_array(spec)
    return lambda img: torch.from_numpy(to_array(img))


def paper_train_transform(spec: Preprocess) -> Callable[[Image.Image], Any]:
    """The paper's augmentation: rotation, flip, random resized crop, affine, ImageNet normalisation."""
    from torchvision import transforms as T

    return T.Compose([
        T.RandomRotation(20),
        T.RandomHorizontalFlip(),
        T.RandomResizedCrop(spec.size),
        T.RandomAffine(20),
        T.ToTensor(),
        T.Normalize(spec.mean, spec.std),
    ])


def mild_train_transform(spec: Preprocess) -> Callable[[Image.Image], Any]:
    """Augmentation that keeps the whole shoe in view: the toe decides the class, so crops stay large."""
    from torchvision import transforms as T

    return T.Compose([
        T.Lambda(lambda im: fit_image(im, spec.size, spec.fit)),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.RandomAffine(15, translate=(0.08, 0.08), scale=(0.8, 1.1), fill=124)], p=0.7),
        T.RandomResizedCrop(spec.size, scale=(0.55, 1.0), ratio=(0.8, 1.25)),
        T.RandomApply([T.ColorJitter(0.3, 0.3, 0.3, 0.03)], p=0.6),
        T.RandomGrayscale(0.05),
        T.ToTensor(),
        T.Normalize(spec.mean, spec.std),
    ])


def train_transform(spec: Preprocess, augment: str) -> Callable[[Image.Image], Any]:
    """The training augmentation named `augment` ('paper' or 'mild')."""
    if augment == "mild":
        return mild_train_transform(spec)
    if augment == "paper":
        return paper_train_transform(spec)
    raise ValueError(f"unknown augmentation {augment!r} (choose paper or mild)")
