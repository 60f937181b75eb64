"""atomic writes: all or nothing, no temp file left, the mode kept or taken from the umask."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from footsort import atomic


def test_new_file_follows_the_umask_and_creates_folders(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic.write_text(tmp_path / "a" / "b.txt", "hé")
    finally:
        os.umask(old)
    target = tmp_path / "a" / "b.txt"
    assert target.read_text(encoding="utf-8") == "hé" and target.stat().st_mode & 0o777 == 0o640


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
