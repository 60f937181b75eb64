from __future__ import annotations

import pytest
import torch
from PIL import Image

from footsort.model.classifier import Classifier
from tests.helpers_model import tiny_meta, tiny_model

IMAGES = [Image.new("RGB", (80, 60), c) for c in ((200, 30, 30), (20, 40, 220), (250, 250, 250))]


@pytest.fixture(scope="module")
def reference() -> list[list[float]]:
    model = tiny_model()
    clf = Classifier(model, tiny_meta(model), device="cpu", fuse="never")
    return [list(p.probabilities.values()) for p in clf.predict_images(IMAGES)]


@pytest.mark.parametrize("fuse", ["now", "background"])
def test_fused_and_eager_graphs_give_the_same_answers(fuse: str, reference: list[list[float]]) -> None:
    model = tiny_model()
    clf = Classifier(model, tiny_meta(model), device="cpu", fuse=fuse)  # type: ignore[arg-type]
    first = [list(p.probabilities.values()) for p in clf.predict_images(IMAGES)]  # background: maybe still eager
    assert clf.fused.wait(60), "the background fuse never finished"
    after = [list(p.probabilities.values()) for p in clf.predict_images(IMAGES)]
    assert isinstance(clf._net, torch.jit.ScriptModule)
    for got in (first, after):
        assert torch.allclose(torch.tensor(got), torch.tensor(reference), atol=1e-4)


def test_never_stays_eager() -> None:
    model = tiny_model()
    clf = Classifier(model, tiny_meta(model), device="cpu", fuse="never")
    assert not clf.fused.is_set() and not isinstance(clf._net, torch.jit.ScriptModule)


def test_a_process_that_exits_while_fusing_exits_cleanly() -> None:
    """The fuse thread is waited for at exit, never killed inside TorchScript ('terminate called ...')."""
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("from tests.helpers_model import tiny_meta, tiny_model\n"
            "from footsort.model.classifier import Classifier\n"
            "m = tiny_model(); Classifier(m, tiny_meta(m), device='cpu', fuse='background')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "terminate" not in done.stderr, done.stderr
