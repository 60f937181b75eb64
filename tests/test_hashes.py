"""hashes: the memo is a cache written through the atomic helper; a damaged one is said, then rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

from loguru import logger

from footsort.sorting.hashes import ContentHashes
from footsort.sorting.sorter import file_hash


def test_a_damaged_memo_is_said_and_rewritten(tmp_path: Path) -> None:
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"photo")
    memo = tmp_path / "memo.json"
    memo.write_text('{"/x": [1, 2', encoding="utf-8")
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    try:
        hashes = ContentHashes(memo)
    finally:
        logger.remove(sink)
    assert any("memo.json" in line and "unreadable" in line for line in lines)
    assert hashes.of(photo) == file_hash(photo)
    hashes.save()
    assert json.loads(memo.read_text())[str(photo)][2] == file_hash(photo)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memo.json", "p.jpg"]


def test_one_hash_for_files_copies_and_blocks(tmp_path: Path) -> None:
    import hashlib
    import io

    from footsort.sorting.hashes import CHUNK, digest

    photo = tmp_path / "p.jpg"
    data = bytes(range(256)) * (CHUNK // 256 + 3)  # more than one block
    photo.write_bytes(data)
    copy = io.BytesIO()
    assert file_hash(photo, copy_to=copy) == file_hash(photo) == hashlib.sha256(data).hexdigest()
    assert copy.getvalue() == data and digest([data[:10], data[10:]]) == file_hash(photo)
