from __future__ import annotations

from pathlib import Path

import pytest

from footsort.errors import DataError
from footsort.learning.datasets import scan, stratified_split
from tests.helpers_model import make_image_folder


def test_scan_reads_class_folders(tmp_path: Path) -> None:
    data = scan(make_image_folder(tmp_path / "d", per_class=3))
    assert data.classes == ("sapatos", "tsinelas")
    assert data.counts() == {"sapatos": 3, "tsinelas": 3}


def test_unknown_class_folder_is_named(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "d", per_class=2, classes=("sapatos", "botas"))
    with pytest.raises(DataError, match="botas"):
        scan(root, ("sapatos", "tsinelas"))


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        scan(tmp_path / "nope")
    (tmp_path / "e" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        scan(tmp_path / "e")


def test_stratified_split_is_seeded_and_per_class(tmp_path: Path) -> None:
    data = scan(make_image_folder(tmp_path / "d", per_class=10))
    tr, va = stratified_split(data, 0.2, seed=3)
    assert va.counts() == {"sapatos": 2, "tsinelas": 2}
    assert tr.counts() == {"sapatos": 8, "tsinelas": 8}
    assert not {s.path for s in tr.samples} & {s.path for s in va.samples}
    assert stratified_split(data, 0.2, seed=3)[1] == va
    assert stratified_split(data, 0.2, seed=4)[1] != va


def test_split_by_key_holds_out_a_share_of_every_group_and_never_all() -> None:
    import random

    from footsort.learning.datasets import split_by_key

    items = [("a", i) for i in range(10)] + [("b", i) for i in range(2)] + [("c", 0)]
    train, held = split_by_key(items, 0.2, random.Random(0), key=lambda it: it[0])
    assert sorted(k for k, _ in held) == ["a", "a", "b"]  # 2 of 10; at least 1 of 2; none of a group of 1
    assert sorted(train + held) == sorted(items)
    assert split_by_key(items, 0.0, random.Random(0), key=lambda it: it[0])[1] == []
