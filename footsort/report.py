"""Training reports: metrics.json, loss/accuracy curves, sample predictions, confusion matrix (PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from footsort.metrics import Scores


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_metrics(folder: Path, data: dict[str, Any]) -> Path:
    """metrics.json with everything measured."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metrics.json"
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return path


def plot_curves(folder: Path, history: Sequence[Any]) -> Path:
    """Per-epoch accuracy and loss, train and validation (like the paper's figures 9-10)."""
    plt = _plt()
    epochs = [h.epoch for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [h.train_acc for h in history], "o-", label="train")
    ax2.plot(epochs, [h.train_loss for h in history], "o-", label="train")
    if any(h.val_acc is not None for h in history):
        ax1.plot(epochs, [h.val_acc for h in history], "s-", label="validation")
        ax2.plot(epochs, [h.val_loss for h in history], "s-", label="validation")
    for ax, name in ((ax1, "accuracy"), (ax2, "loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = folder / "curves.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_confusion(folder: Path, scores: Scores) -> Path:
    """Confusion matrix with counts."""
    plt = _plt()
    k = len(scores.classes)
    fig, ax = plt.subplots(figsize=(1.6 * k + 2, 1.6 * k + 1.5))
    ax.imshow(scores.confusion, cmap="Blues")
    ax.set_xticks(range(k), scores.classes)
    ax.set_yticks(range(k), scores.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(scores.confusion[i][j]), ha="center", va="center")
    ax.set_title(f"accuracy {scores.accuracy:.3f} (n={scores.n})")
    fig.tight_layout()
    path = folder / "confusion.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_samples(folder: Path, items: Sequence[tuple[Path, str, str, float]], columns: int = 4) -> Path:
    """A grid of images with true label, predicted label and confidence (like figures 11-12)."""
    from PIL import Image

    plt = _plt()
    items = list(items)[:16]
    rows = max(1, (len(items) + columns - 1) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (path, true, pred, conf) in zip(axes.flat, items):
        with Image.open(path) as im:
            ax.imshow(im.convert("RGB"))
        ax.set_title(f"true {true}\npred {pred} ({conf:.2f})", fontsize=9, color="green" if true == pred else "red")
    fig.tight_layout()
    path = folder / "samples.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
