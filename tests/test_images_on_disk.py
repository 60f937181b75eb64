"""The one image walker: hidden files, symbolic links and order, as every caller had them."""

from __future__ import annotations

import os
from pathlib import Path

from footsort.system.images_on_disk import image_files


def _tree(root: Path) -> Path:
    for rel in ("c/a.jpg", "c/a-b.jpg", "c/sub/b.PNG", "c/.x.jpg", "c/.hid/h.jpg", "c/notes.txt", "out/o.jpg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    os.symlink(root / "out", root / "c/linked-folder")
    os.symlink(root / "out/o.jpg", root / "c/linked.jpg")
    os.symlink(root / "nowhere.jpg", root / "c/broken.jpg")
    return root / "c"


def test_recursive_walk_skips_hidden_and_linked_folders_and_keeps_linked_files(tmp_path: Path) -> None:
    folder = _tree(tmp_path)
    names = [p.relative_to(folder).as_posix() for p in image_files(folder)]
    assert names == ["a-b.jpg", "a.jpg", "linked.jpg", "sub/b.PNG"]  # path order, as sorted(Path) gives
    assert image_files(folder) == sorted(image_files(folder))


def test_hidden_folders_on_request_and_a_flat_listing(tmp_path: Path) -> None:
    folder = _tree(tmp_path)
    assert folder / ".hid/h.jpg" in image_files(folder, hidden_folders=True)
    assert [p.name for p in image_files(folder, recursive=False)] == ["a-b.jpg", "a.jpg", "linked.jpg"]


def test_a_missing_folder_or_a_file_has_no_images(tmp_path: Path) -> None:
    assert image_files(tmp_path / "nope") == []
    (tmp_path / "f.jpg").write_bytes(b"x")
    assert image_files(tmp_path / "f.jpg") == []
