"""The ImageNet prior: ImageNet's sandal and shoe classes vote beside the trained head."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import SHARED
from helpers_model import TINY_WIDTH, tiny_backbone_file, tiny_meta, tiny_prior_model

from footsort.errors import BackboneWeightsError
from footsort.learning.trainer import Recipe, make_model
from footsort.model import checkpoint
from footsort.model.presets import Preprocess
from footsort.model.prior import IMAGENET_INDEX, prior_rows

CLASSES = ("sapatos", "tsinelas")


def test_rows_vote_for_footsort_classes_and_other_classes_get_no_prior() -> None:
    rows = prior_rows(CLASSES)
    assert sorted(rows) == sorted([(0, 630), (0, 770), (0, 514), (1, 774)])
    assert prior_rows(("sapatos", "tsinelas", "botas")) == []  # a class ImageNet cannot vote for: no prior at all
    assert prior_rows(("cats", "dogs")) == []


def test_prior_is_imagenets_own_classifier_restricted_to_the_footwear_classes(tmp_path: Path) -> None:
    from torchvision.models import mobilenet_v2

    model, weights = tiny_prior_model(tmp_path, 2.0)
    imagenet = mobilenet_v2(width_mult=TINY_WIDTH)
    imagenet.load_state_dict(torch.load(weights, weights_only=True))
    imagenet.eval()
    model.eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        full = imagenet(x)  # the 1000 ImageNet logits
        features = model.forward_features(x)
        prior = model.prior(features)
        both = model.forward_head(features)
        head = model.head(model.blocks(features))
    shoes = [IMAGENET_INDEX[n] for n in ("Loafer", "running shoe", "cowboy boot")]
    assert torch.allclose(prior[:, 0], torch.logsumexp(full[:, shoes], 1), atol=1e-4)
    assert torch.allclose(prior[:, 1], full[:, IMAGENET_INDEX["sandal"]], atol=1e-4)
    assert torch.allclose(both, head + 2.0 * prior, atol=1e-4)
    assert all(p.data_ptr() != model.prior.weight.data_ptr() for p in model.trainable_parameters())  # never trained
    model.train()  # the head learns on its own: the prior votes only when sorting
    with torch.no_grad():
        torch.manual_seed(1)
        training = model.forward_head(features)
        torch.manual_seed(1)
        assert torch.equal(training, model.head(model.blocks(features)))


@pytest.mark.parametrize("tuned", [0, 2])
def test_the_prior_travels_in_the_model_file(tmp_path: Path, tuned: int) -> None:
    model, _ = tiny_prior_model(tmp_path, 1.5, tuned)
    path = checkpoint.save(model, tiny_meta(model), tmp_path / "m.safetensors", half=False)
    loaded, meta2 = checkpoint.load(path)
    assert meta2.arch["prior_rows"] == 4 and meta2.arch["prior_weight"] == 1.5
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-5)


def test_no_prior_for_the_papers_recipe_or_classes_imagenet_does_not_know(tmp_path: Path) -> None:
    weights = tiny_backbone_file(tmp_path / "tiny.pth")
    paper, _ = make_model(CLASSES, Recipe(preset="lite", width=16), str(weights), TINY_WIDTH)
    other, _ = make_model(("cats", "dogs"), Recipe(preset="lite", width=16, prior_weight=2.0), str(weights), TINY_WIDTH)
    assert paper.prior is None and other.prior is None and other.arch.prior_weight == 0.0


def test_backbone_weights_without_the_imagenet_classifier_are_refused_in_one_line(tmp_path: Path) -> None:
    weights = tiny_backbone_file(tmp_path / "tiny.pth")
    state = {k: v for k, v in torch.load(weights, weights_only=True).items() if k.startswith("features.")}
    torch.save(state, tmp_path / "features_only.pth")
    with pytest.raises(BackboneWeightsError, match="no ImageNet classifier") as err:
        make_model(CLASSES, Recipe(preset="lite", width=16, prior_weight=2.0), str(tmp_path / "features_only.pth"),
                   TINY_WIDTH)
    assert "\n" not in str(err.value)


def test_the_prior_alone_tells_real_sandals_from_shoes(shared_weights: Path) -> None:
    """On photos from footwear-web, a source of its own: ImageNet's classes alone are right on most."""
    from footsort.model.imaging import load_rgb
    from footsort.model.presets import eval_transform

    model, _ = make_model(CLASSES, Recipe(preset="lite", prior_weight=1.0), str(shared_weights))
    model.eval()
    web = SHARED / "data" / "footwear-web"
    photos = [(p, ci) for ci, c in enumerate(CLASSES) for p in sorted((web / c).glob("*.jpg"))[:20]]
    tf = eval_transform(Preprocess(size=224, fit="pad"))
    x = torch.stack([tf(load_rgb(p)) for p, _ in photos])
    with torch.no_grad():
        votes = model.prior(model.forward_features(x)).argmax(1).tolist()
    right = sum(v == ci for v, (_, ci) in zip(votes, photos))
    assert right >= 30, f"the prior was right on {right} of {len(photos)}"


@pytest.mark.parametrize("tuned", [0, 2])
def test_the_onnx_engine_sorts_with_the_prior_too(tmp_path: Path, tuned: int) -> None:
    import numpy as np
    import onnxruntime as ort

    from footsort.model.onnx_export import INPUT, OUTPUT, export

    model, _ = tiny_prior_model(tmp_path, 2.0, tuned)
    path = checkpoint.save(model, tiny_meta(model), tmp_path / "m.safetensors")
    report = export(path, tmp_path / "m.onnx")
    loaded, _ = checkpoint.load(path)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        want = loaded(x).numpy()
        maps = loaded.forward_features(x)
        prior = (maps[:, 1280:, 0, 0] if tuned else loaded.prior(maps)).numpy()
    got = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"]).run([OUTPUT], {INPUT: x.numpy()})[0]
    assert np.allclose(got, want, atol=1e-3, rtol=1e-3)
    assert np.abs(prior).max() > 0.01  # the prior is really in both graphs, not zeros


def test_tuned_backbone_stages_leave_the_prior_its_own_imagenet_copy(tmp_path: Path) -> None:
    from torchvision.models import mobilenet_v2

    from footsort.learning.trainer import extract_features, head_logits

    model, weights = tiny_prior_model(tmp_path, 1.0, tuned=2)
    assert model.arch.prior_stages == 2 and model.prior_split == len(model.backbone) - 2
    params = model.unfreeze_last_stages(2)
    with torch.no_grad():  # footsort tunes its last two stages...
        for p in params:
            p.add_(torch.randn_like(p) * 0.1)
    with pytest.raises(ValueError, match="at most the last 2"):
        model.unfreeze_last_stages(3)
    imagenet = mobilenet_v2(width_mult=TINY_WIDTH)
    imagenet.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    imagenet.eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        full = imagenet(x)
        maps = model.forward_features(x)
        both = model(x)
        head = model.head(model.blocks(model.backbone(x)))
    votes = maps[:, 1280:, 0, 0]  # ...and the prior still sees ImageNet's own features
    shoes = [IMAGENET_INDEX[n] for n in ("Loafer", "running shoe", "cowboy boot")]
    assert torch.allclose(votes[:, 0], torch.logsumexp(full[:, shoes], 1), atol=1e-4)
    assert torch.allclose(votes[:, 1], full[:, IMAGENET_INDEX["sandal"]], atol=1e-4)
    assert torch.allclose(both, head + votes, atol=1e-4)
    # features cached for a retrain carry the votes: logits from the cache are the model's own
    cached = extract_features(model, [lambda i=i: x[i] for i in range(3)], 64)
    assert cached.shape[1] == 1282
    assert torch.allclose(head_logits(model, cached), both, atol=5e-2)  # the cache is fp16
    model.train()
    assert model.forward_features(x).shape[1] == 1280  # training never computes the votes


def test_tracing_a_model_with_the_prior_warns_about_nothing(tmp_path: Path) -> None:
    """The daemon fuses the model in a thread: a TracerWarning there would reach the user's log."""
    import warnings

    model, _ = tiny_prior_model(tmp_path, 1.0, tuned=2)
    model.eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(model, torch.zeros(1, 3, 64, 64), check_trace=False)
    assert [str(w.message) for w in caught if w.category is torch.jit.TracerWarning] == []
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(traced(x), model(x), atol=1e-5)
