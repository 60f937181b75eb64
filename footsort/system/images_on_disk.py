"""The one walk over a folder for the images in it: training data, class folders, the review queue.

Rules every caller shares: only names with an image suffix footsort reads; hidden files (`.name`) are
skipped; a symbolic link to a file counts as that file, a symbolic link to a folder is never entered
(it may point anywhere, even at a parent); results come in path order (`sorted(paths)`, the order
`Path.rglob` gave). The watcher lists inboxes itself (sorting/watcher.py `walk`): it needs every entry,
images or not, to say why a file is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from footsort.model.imaging import is_image_name


def image_files(folder: str | Path, *, recursive: bool = True, hidden_folders: bool = False) -> list[Path]:
    """Image files in `folder` (and its subfolders when `recursive`), sorted; a missing folder has none."""
    return list(_walk(Path(folder), recursive, hidden_folders))


def _walk(folder: Path, recursive: bool, hidden_folders: bool) -> Iterator[Path]:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)  # name order at every level is path order overall
    except OSError:  # missing, not a folder, or unreadable: nothing to list
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if recursive and (hidden_folders or not entry.name.startswith(".")):
                yield from _walk(Path(entry.path), recursive, hidden_folders)
        elif not entry.name.startswith(".") and is_image_name(Path(entry.name)) and entry.is_file():
            yield Path(entry.path)
