from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from footsort.errors import ModelFileError
from footsort.model import checkpoint
from tests.helpers_model import tiny_meta, tiny_model


def test_round_trip_keeps_weights_and_metadata(tmp_path: Path) -> None:
    model = tiny_model().eval()
    model.temperature.fill_(1.7)
    meta = tiny_meta(model)
    path = checkpoint.save(model, meta, tmp_path / "m.safetensors", half=False)
    loaded, meta2 = checkpoint.load(path)
    assert meta2 == meta
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(model(x), loaded(x), atol=1e-6)
    assert float(loaded.temperature) == pytest.approx(1.7)
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temp file


def test_half_precision_file_is_smaller_and_close(tmp_path: Path) -> None:
    model = tiny_model().eval()
    full = checkpoint.save(model, tiny_meta(model), tmp_path / "full.safetensors", half=False)
    half = checkpoint.save(model, tiny_meta(model), tmp_path / "half.safetensors", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, _ = checkpoint.load(half)
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(torch.softmax(model(x), 1), torch.softmax(loaded(x), 1), atol=1e-2)


def test_pickle_file_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(ModelFileError, match="never unpickles"):
        checkpoint.load(evil)
    torch_file = tmp_path / "model.pt"
    torch.save(tiny_model().state_dict(), torch_file)
    with pytest.raises(ModelFileError, match="pickle"):
        checkpoint.load(torch_file)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    model = tiny_model()
    path = checkpoint.save(model, tiny_meta(model), tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        checkpoint.load(path)
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty or truncated"):
        checkpoint.load(path)


def test_foreign_safetensors_file_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ModelFileError, match="not a footsort model"):
        checkpoint.load(path)


def test_missing_file_message(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        checkpoint.read_metadata(tmp_path / "nope.safetensors")
