"""atomic writes: all or nothing, no temp file left, the mode kept or taken from the umask."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from footsort.system import atomic


def test_new_file_follows_the_umask_and_creates_folders(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic.write_text(tmp_path / "a" / "b.txt", "hé")
    finally:
        os.umask(old)
    target = tmp_path / "a" / "b.txt"
    assert target.read_text(encoding="utf-8") == "hé" and target.stat().st_mode & 0o777 == 0o640


def test_a_secret_gets_the_mode_asked_for_even_over_a_wider_file(tmp_path: Path) -> None:
    target = tmp_path / "page-1.json"
    target.write_text("old")
    target.chmod(0o644)
    atomic.write_text(target, "token", mode=0o600)
    assert target.read_text() == "token" and target.stat().st_mode & 0o777 == 0o600


def test_failure_leaves_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    target.chmod(0o600)

    def crash(src: str, dst: str) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(OSError):
        atomic.write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]
    monkeypatch.undo()
    atomic.write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o600


def _age(path: Path, seconds: float) -> None:
    import time

    old = time.time() - seconds
    os.utime(path, (old, old))


def test_the_file_and_its_folder_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stat

    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", spy)
    atomic.write_text(tmp_path / "state.json", "{}")
    assert synced == ["file", "dir"]


def test_a_killed_writer_leaves_a_temp_that_a_later_write_removes_once_stale(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import os, sys; from pathlib import Path; from footsort.system import atomic; "
            "atomic.write_with(Path(sys.argv[1]), lambda tmp: os._exit(9))")
    assert subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.safetensors")]).returncode == 9
    (left,) = tmp_path.iterdir()
    assert atomic.is_temp_name(left.name) and left.stat().st_size == 0
    theirs = [tmp_path / n for n in (".notes.tmp", "photo.jpg.tmp", ".a.ABCDEFGH.tmp", ".x.abcdefg.tmp", "b.abcdefgh.tmp")]
    for p in theirs:
        p.write_bytes(b"not ours")
        _age(p, 7200)
    atomic.write_text(tmp_path / "other.json", "{}")
    assert left.exists()  # a writer might still be at work: only old ones go
    _age(left, 7200)
    (tmp_path / "fresh.json").mkdir()
    fresh = tmp_path / "fresh.json" / ".x.abcdefgh.tmp"
    fresh.write_bytes(b"")
    atomic.write_text(tmp_path / "other.json", "{}")
    assert not left.exists() and all(p.exists() for p in theirs) and fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*(p.name for p in theirs), "other.json", "fresh.json"])


def test_a_model_save_killed_half_way_is_cleaned_by_models_list(tmp_path: Path) -> None:
    import subprocess
    import sys

    from footsort.model import registry
    from footsort.system import paths

    code = ("import os, safetensors.torch; safetensors.torch.save_file = lambda *a, **k: os._exit(9)\n"
            "from tests.helpers_model import tiny_meta, tiny_model\nfrom footsort.model import registry\n"
            "m = tiny_model(); registry.add_version(m, tiny_meta(m))\n")
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, env=dict(os.environ)).returncode == 9
    (left,) = paths.models_dir().iterdir()
    assert left.stat().st_size == 0 and left.name.endswith(".tmp")
    _age(left, 7200)
    assert registry.list_versions() == [] and list(paths.models_dir().iterdir()) == []


def test_every_state_file_goes_through_the_one_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """checkpoint, registry, feature cache and hash memo: a failed replace leaves no temp file anywhere."""
    import torch

    from footsort.learning.feature_cache import FeatureCache, FeatureKey
    from footsort.model import checkpoint, registry
    from footsort.sorting import hashes
    from footsort.system import paths
    from tests.helpers_model import tiny_meta, tiny_model

    model = tiny_model()
    meta = tiny_meta(model)
    registry.add_version(model, meta)
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"x")
    calls: list[str] = []
    real = atomic.write_with

    def spy(path: Path, write, *mode):  # type: ignore[no-untyped-def]
        calls.append(Path(path).name)
        return real(path, write, *mode)

    monkeypatch.setattr(atomic, "write_with", spy)
    checkpoint.save(model, meta, tmp_path / "m.safetensors")
    registry.use(meta.version)
    FeatureCache(tmp_path / "fc").put(FeatureKey("b", "i", "v", "p"), torch.zeros(2, 2))
    memo = hashes.ContentHashes(tmp_path / "memo.json")
    memo.of(photo)
    memo.save()
    assert calls[0] == "m.safetensors" and calls[1] == "in_use.json" and calls[2].endswith(".safetensors")
    assert calls[3] == "memo.json" and len(calls) == 4
    assert not [p for p in [*tmp_path.rglob("*"), *paths.models_dir().iterdir()] if p.name.endswith(".tmp")]


def test_replacing_yields_a_path_and_leaves_nothing_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "thumb.jpg"
    with atomic.replacing(target) as tmp:
        assert atomic.is_temp_name(tmp.name) and tmp.parent == tmp_path
        tmp.write_bytes(b"one")
    with pytest.raises(ValueError):
        with atomic.replacing(target) as tmp:
            tmp.write_bytes(b"half")
            raise ValueError("encoder failed")
    assert target.read_bytes() == b"one" and os.listdir(tmp_path) == ["thumb.jpg"]


def test_a_streamed_file_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    kept, dropped = atomic.Replacement(tmp_path / "plan.csv"), atomic.Replacement(tmp_path / "other.csv")
    for target in (kept, dropped):
        with open(target.tmp, "w", encoding="utf-8") as fh:
            fh.write("source,destination\n")
        assert not target.path.exists()
    assert kept.commit().read_text(encoding="utf-8") == "source,destination\n"
    dropped.discard()
    assert os.listdir(tmp_path) == ["plan.csv"]
    with pytest.raises(ValueError):
        kept.commit()


def test_a_long_write_still_at_work_is_never_taken_for_a_leftover(tmp_path: Path) -> None:
    live = atomic.Replacement(tmp_path / "results.parquet")
    live.tmp.write_bytes(b"rows so far")
    _age(live.tmp, 7200)  # written for hours (a bulk run): old, but its writer holds the lock
    atomic.write_text(tmp_path / "other.json", "{}")
    assert live.tmp.exists()
    assert live.commit().read_bytes() == b"rows so far"
