"""`footsort classify`, `footsort evaluate`, `footsort train`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from footsort.commands.options import (
    FUSE_FROM,
    device_option,
    engine_option,
    load_classifier,
    load_config,
    model_option,
)
from footsort.errors import FootsortError
from footsort.system.progress import progress
from footsort.system.safe_text import printable


def _classifier(model_path: Path | None, device: str | None, images: int = 1000, engine: str | None = "torch"):
    cfg = load_config(device=device, engine=engine)
    # fusing the graph costs about 0.6 s: worth it only over a few dozen photos
    return load_classifier(cfg, model_path, fuse="now" if images >= FUSE_FROM else "never")


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@model_option
@device_option()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@engine_option
def classify(images: tuple[Path, ...], model_path: Path | None, device: str | None, as_json: bool,
             engine: str | None) -> None:
    """Print the label and confidence of each image.

    \b
    Example:
      footsort classify photo.jpg shoes/*.heic
      footsort classify --json photo.jpg
    """
    from footsort.errors import UnreadableImage

    clf = _classifier(model_path, device, images=len(images), engine=engine)
    failed = 0
    for path, result in clf.iter_paths(list(images)):
        if isinstance(result, UnreadableImage):
            failed += 1
            if as_json:
                click.echo(json.dumps({"path": str(path), "error": str(result)}))
            else:
                click.echo(f"error: {result}", err=True)
            continue
        if as_json:
            click.echo(json.dumps({"path": str(path), "label": result.label, "confidence": round(result.confidence, 4),
                                   "probabilities": {k: round(v, 4) for k, v in result.probabilities.items()},
                                   "model_version": result.model_version}))
        else:
            click.echo(f"{printable(path)}\t{result.label}\t{result.confidence:.3f}")  # a tab or newline in a name: escaped
    if failed == len(images):
        raise FootsortError(f"none of the {failed} file(s) could be read as an image")


@click.command()
@click.argument("data_dir", type=click.Path(path_type=Path))
@model_option
@device_option()
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
@click.option("--batch-size", default=16, show_default=True, help="Images per forward pass.")
@click.option("--target-precision", type=click.FloatRange(0.5, 1.0), default=0.95, show_default=True,
              help="Report the lowest threshold whose automatically sorted photos are right this often.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for metrics.json, reliability.png, risk_coverage.png and confusion.png.")
def evaluate(data_dir: Path, model_path: Path | None, device: str | None, as_json: bool, batch_size: int,
             target_precision: float, report_dir: Path | None) -> None:
    """Score a model on a labelled folder DATA_DIR/<class>/<images>.

    Prints accuracy, per-class scores, the confusion matrix, and the confidence trade-off: for each
    threshold, the share of photos sorted automatically and how often those are right, the expected
    calibration error, and the lowest threshold that reaches --target-precision.

    \b
    Example:
      footsort evaluate ~/Pictures/labelled
      footsort evaluate ~/Pictures/labelled --target-precision 0.98 --report ~/footsort-report
      footsort evaluate ../shared/data/footwear-street --json > street.json
    """
    from footsort.learning.datasets import scan
    from footsort.learning.evaluation import evaluate as run_eval

    clf = _classifier(model_path, device)
    data = scan(data_dir, clf.classes)
    with progress(len(data), "evaluating") as bar:
        result = run_eval(clf, data, batch_size=batch_size, tick=bar.update)
    for path, reason in result.unreadable:
        click.echo(f"warning: skipped {reason}", err=True)
    confidence = result.confidence_json(target_precision)
    if report_dir is not None:
        _write_eval_report(report_dir, result, confidence, target_precision)
    if as_json:
        click.echo(json.dumps({**result.to_json(), **confidence}))
        return
    s = result.scores
    click.echo(f"model {clf.version}  accuracy {s.accuracy:.4f}  balanced {s.balanced_accuracy:.4f}  n={s.n}")
    click.echo(f"{'class':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for name, st in s.per_class.items():
        click.echo(f"{name:<12}{st.precision:>10.4f}{st.recall:>10.4f}{st.f1:>10.4f}{st.support:>9}")
    click.echo("confusion (rows true, columns predicted): " + ", ".join(s.classes))
    for name, row in zip(s.classes, s.confusion):
        click.echo(f"  {name:<12}" + " ".join(f"{v:>6}" for v in row))
    click.echo("threshold -> sorted automatically (the rest to review/) -> accuracy of the sorted")
    for row in confidence["thresholds"]:
        acc = f"{row['sorted_accuracy']:.4f}" if row["sorted_accuracy"] is not None else "-"
        click.echo(f"  {row['threshold']:<6}{row['sorted']:>8.1%}  ({row['n_sorted']:>5})  {acc:>8}")
    low = confidence["threshold_for_target"]
    click.echo(f"expected calibration error {confidence['ece']:.4f}; "
               + (f"lowest threshold for {target_precision:.2f} precision: {low:.4f} "
                  f"({confidence['sorted_at_target']:.1%} sorted)" if low is not None
                  else f"no threshold reaches {target_precision:.2f} precision on these photos"))
    if report_dir is not None:
        click.echo(f"report: {report_dir}")
    errors = result.errors()
    if errors:
        click.echo(f"misclassified ({len(errors)}):")
        for e in errors:
            click.echo(f"  {printable(e['path'])}\ttrue {e['true']}\tpred {e['pred']}\t{e['confidence']:.3f}")


def _write_eval_report(folder: Path, result, confidence: dict, target: float) -> None:
    """metrics.json and the reliability, risk-coverage and confusion plots of one evaluation."""
    from footsort.learning import report
    from footsort.learning.metrics import reliability_bins, risk_coverage

    conf, right = result.confidences()
    report.write_metrics(folder, {**result.to_json(), **confidence})
    report.plot_reliability(folder, reliability_bins(conf, right), confidence["ece"])
    report.plot_risk_coverage(folder, risk_coverage(conf, right), target, confidence["threshold_for_target"])
    report.plot_confusion(folder, result.scores)


@click.command()
@click.argument("data_dir", type=click.Path(path_type=Path))
@click.option("--val", "val_dir", type=click.Path(path_type=Path), help="Separate validation folder (ImageFolder).")
@click.option("--val-split", type=float, default=0.0, show_default=True, help="Hold out this stratified fraction for validation.")
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--batch-size", type=int, default=1, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True, help="Adam learning rate.")
@click.option("--preset", type=click.Choice(["paper", "lite"]), default="paper", show_default=True,
              help="paper: 3x3 residual blocks (59 M params); lite: bottleneck blocks (2.5 M).")
@click.option("--width", type=int, default=256, show_default=True, help="Bottleneck width of the lite blocks.")
@click.option("--image-size", type=int, default=300, show_default=True)
@click.option("--fit", type=click.Choice(["crop", "pad", "squash"]), default="crop", show_default=True,
              help="Eval resize: crop (Resize+CenterCrop, the paper), pad (whole image), squash.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=0, show_default=True, help="Paper mode: processes decoding and augmenting images (0: in this process).")
@click.option("--mode", type=click.Choice(["paper", "cached"]), default="paper", show_default=True,
              help="paper: every step runs the backbone; cached: backbone features of --views augmented views computed once (much faster).")
@click.option("--views", type=int, default=4, show_default=True, help="cached mode: augmented views per image.")
@click.option("--synth", type=float, default=0.0, show_default=True,
              help="cached mode: share of views that are synthetic household scenes (for white-background photos).")
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), default="constant", show_default=True,
              help="Learning rate over the epochs: constant (the paper) or cosine decay to zero (steadier last epochs).")
@click.option("--weight-decay", type=float, default=0.0, show_default=True, help="Adam weight decay.")
@click.option("--label-smoothing", type=float, default=0.0, show_default=True, help="Cross-entropy label smoothing (0: none, the paper).")
@click.option("--augment", type=click.Choice(["paper", "mild"]), default="paper", show_default=True,
              help="paper: the paper's transforms; mild: large crops, colour jitter (cached mode: one clean view per image).")
@click.option("--finetune-backbone", type=int, default=0, show_default=True,
              help="Let the last N backbone stages learn at --finetune-lr (BatchNorm stays frozen): paper mode after "
                   "the head trains; cached mode with the blocks and head, on the cached input of those stages.")
@click.option("--finetune-epochs", type=int, default=2, show_default=True)
@click.option("--prior-weight", type=float, default=0.0, show_default=True,
              help="Let ImageNet's own sandal and shoe classes vote beside the head with this weight (the shipped "
                   "model uses 1; only for the classes sapatos and tsinelas; 0: none, the paper).")
@click.option("--finetune-lr", type=float, default=1e-5, show_default=True)
@click.option("--backbone-weights", type=click.Path(path_type=Path), envvar="FOOTSORT_BACKBONE_WEIGHTS",
              help="Local torchvision mobilenet_v2 state_dict (offline); default: torchvision's download.")
@click.option("--output", type=click.Path(path_type=Path), help="Write the model to this file instead of the data dir.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), help="Report folder (default: beside the model).")
@click.option("--use", is_flag=True, help="Make the new model the one in use (every command and the daemon).")
@click.option("--backbone-width", type=float, default=1.0, hidden=True)
def train(data_dir: Path, val_dir: Path | None, val_split: float, output: Path | None, report_dir: Path | None,
          use: bool, backbone_weights: Path | None, backbone_width: float, **kw) -> None:
    """Train a new model on DATA_DIR/<class>/<images>; defaults reproduce the paper.

    \b
    Example (the paper's recipe, offline backbone weights):
      footsort train ~/footwear --val-split 0.2 --backbone-weights mobilenet_v2.pth
    Example (fast: cached features, lite blocks, 224 px, bigger batches):
      footsort train ~/footwear --val-split 0.2 --mode cached --preset lite \\
          --image-size 224 --fit pad --augment mild --synth 0.5 --finetune-backbone 5 --finetune-lr 1e-4 \\
          --batch-size 64 --lr 1e-3 --schedule cosine --weight-decay 1e-4 --label-smoothing 0.1 --epochs 12 --use
    """
    from footsort.learning import training
    from footsort.learning.trainer import Recipe

    cfg = load_config(backbone_weights=backbone_weights)
    recipe = Recipe(size=kw.pop("image_size"), **kw)
    if recipe.mode == "paper" and recipe.synth:
        raise FootsortError("--synth needs --mode cached")

    def log(e) -> None:
        val = f"  val loss {e.val_loss:.4f} acc {e.val_acc:.4f}" if e.val_acc is not None else ""
        click.echo(f"epoch {e.epoch}: train loss {e.train_loss:.4f} acc {e.train_acc:.4f}{val}  ({e.seconds:.0f} s)", err=True)

    outcome = training.run(data_dir, recipe, val_dir=val_dir, val_split=val_split,
                           backbone_weights=cfg.model.backbone_weights or None, output=output,
                           report_dir=report_dir, use=use, backbone_width=backbone_width, log=log)
    if outcome.result.interrupted:
        click.echo("interrupted: kept the best model so far", err=True)
    acc = outcome.meta.metrics.get("val_accuracy")
    click.echo(f"model {outcome.meta.version}" + (f"  validation accuracy {acc:.4f}" if acc is not None else ""))
    click.echo(f"saved {outcome.model_path}")
    click.echo(f"report {outcome.report_dir}")
    if use:
        click.echo("now in use")


COMMANDS = [classify, evaluate, train]
