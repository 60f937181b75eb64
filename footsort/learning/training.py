"""One `footsort train` run end to end: data -> model -> train -> calibrate -> evaluate -> save -> report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from footsort import __version__
from footsort.learning import report
from footsort.learning.datasets import LabelledSet, scan, stratified_split
from footsort.learning.evaluation import evaluate
from footsort.learning.trainer import (
    EpochLog,
    Recipe,
    TrainResult,
    eval_inputs,
    extract_features,
    fit_temperature,
    head_logits,
    make_model,
    recipe_dict,
    train,
)
from footsort.model import checkpoint, onnx_export, registry
from footsort.model.checkpoint import ModelVersion


@dataclass(frozen=True)
class TrainOutcome:
    """Where the model and its report went, and how it did."""

    model_path: Path
    report_dir: Path
    meta: ModelVersion
    result: TrainResult


def split_data(data_dir: Path, val_dir: Path | None, val_split: float, seed: int) -> tuple[LabelledSet, LabelledSet | None]:
    """Training set and validation set (a separate folder, a stratified split, or none)."""
    data = scan(data_dir)
    if val_dir is not None:
        return data, scan(val_dir, data.classes)
    if val_split > 0:
        return stratified_split(data, val_split, seed)
    return data, None


def run(data_dir: Path, recipe: Recipe, *, val_dir: Path | None = None, val_split: float = 0.0,
        backbone_weights: str | None = None, output: Path | None = None, report_dir: Path | None = None,
        use: bool = False, backbone_width: float = 1.0, parent: str = "",
        log: Callable[[EpochLog], None] = lambda e: None) -> TrainOutcome:
    """Train a new model version from an ImageFolder and save it (plus its report)."""
    train_set, val_set = split_data(data_dir, val_dir, val_split, recipe.seed)
    model, origin = make_model(train_set.classes, recipe, backbone_weights, backbone_width)
    result = train(model, train_set, val_set, recipe, log=log)
    metrics: dict = {"best_epoch": result.best_epoch, "interrupted": result.interrupted,
                     "train_seconds": round(result.seconds, 1),
                     "history": [e.__dict__ for e in result.history]}
    spec = recipe.preprocess()
    evaluation = None
    if val_set is not None and len(val_set):
        feats = extract_features(model, eval_inputs(val_set, spec), spec.size, desc="calibration")
        labels = torch.tensor([s.label for s in val_set.samples])
        model.temperature.fill_(fit_temperature(head_logits(model, feats), labels))
    version = checkpoint.new_version_id()
    meta = ModelVersion(
        version=version, classes=train_set.classes, arch=dict(model.arch.__dict__), preprocess=spec.to_dict(),
        temperature=float(model.temperature), recipe=recipe_dict(recipe),
        data={"train_dir": str(data_dir), "train": train_set.counts(),
              "validation": val_set.counts() if val_set else {}, "val_dir": str(val_dir or "")},
        metrics=metrics, parent=parent, created=checkpoint.now_iso(), footsort_version=__version__,
        backbone_origin=origin)
    if val_set is not None and len(val_set):
        from footsort.model.classifier import Classifier
        from footsort.model.device import resolve_device

        evaluation = evaluate(Classifier(model, meta, device=resolve_device(mps=False).type), val_set)
        metrics["validation"] = {k: v for k, v in evaluation.to_json().items() if k != "errors"}
        metrics["val_accuracy"] = evaluation.scores.accuracy
    path = checkpoint.save(model, meta, output) if output else registry.add_version(model, meta)
    if output:  # registry.add_version writes the ONNX export itself
        onnx_export.export_if_available(path)
    if use and not output:
        registry.use(meta.version)
    folder = report_dir or (path.parent / f"{path.stem}-report")
    report.write_metrics(folder, {"version": version, "model": str(path), "recipe": recipe_dict(recipe), **metrics,
                                  "errors": evaluation.errors() if evaluation else []})
    if result.history:
        report.plot_curves(folder, result.history)
    if evaluation is not None:
        report.plot_confusion(folder, evaluation.scores)
        shown = [(p, t, pr.label, pr.confidence) for p, t, pr in evaluation.predictions]
        wrong = [x for x in shown if x[1] != x[2]]
        report.plot_samples(folder, (wrong[:8] + [x for x in shown if x[1] == x[2]])[:16])
    return TrainOutcome(path, folder, meta, result)
