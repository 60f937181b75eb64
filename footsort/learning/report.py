"""Training reports: metrics.json, loss/accuracy curves, sample predictions, confusion matrix (PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from footsort.learning.metrics import Scores


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path, dpi: int = 90) -> Path:
    """Write a figure as PNG, free its memory, and return where it went."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


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
    return _save(plt, fig, folder / "curves.png")


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
    return _save(plt, fig, folder / "confusion.png")


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
    return _save(plt, fig, folder / "samples.png", dpi=80)


def plot_reliability(folder: Path, bins: Sequence[tuple[float, float, int]], ece: float) -> Path:
    """Reliability diagram: accuracy against confidence per bin; the diagonal is perfect calibration."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    if bins:
        ax.plot([b[0] for b in bins], [b[1] for b in bins], "o-", label="model")
        for conf, acc, n in bins:
            ax.annotate(str(n), (conf, acc), textcoords="offset points", xytext=(3, -10), fontsize=7)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"reliability (ECE {ece:.3f})")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return _save(plt, fig, folder / "reliability.png")


def plot_risk_coverage(folder: Path, curve: Sequence[tuple[float, float, float]], target: float,
                       threshold: float | None) -> Path:
    """Accuracy of the automatically sorted photos against the share sorted, with the target precision."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot([c for c, _, _ in curve], [a for _, a, _ in curve], "-", label="sorted automatically")
    ax.axhline(target, color="red", ls="--", lw=1, label=f"target precision {target:.2f}")
    if threshold is not None:
        at = [c for c, _, low in curve if low >= threshold]
        if at:
            ax.axvline(max(at), color="green", ls=":", lw=1, label=f"threshold {threshold:.3f}: {max(at):.0%} sorted")
    ax.set_xlabel("share sorted automatically (the rest goes to review/)")
    ax.set_ylabel("accuracy of the sorted")
    ax.set_xlim(0, 1)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(plt, fig, folder / "risk_coverage.png")
