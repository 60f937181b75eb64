"""A class, review/ or failed/ folder that is a symbolic link: the photo stays in the inbox, the reason is
logged, nothing lands in the link's target, and the other photos are sorted as usual."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import BLUE, MUDDY, RED, ColourClassifier, RecordingHost, write_image
from loguru import logger

from footsort.sorting.decide import Policy
from footsort.sorting.journal import Journal
from footsort.sorting.pipeline import Item, Layout, Pipeline
from footsort.sorting.sorter import Sorter


@pytest.mark.parametrize("linked", ["tsinelas", "review", "failed"])
def test_a_linked_output_folder_fails_that_file_only(tmp_path: Path, linked: str) -> None:
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    outside.mkdir()
    (inbox / linked).parent.mkdir(parents=True, exist_ok=True)
    (inbox / linked).symlink_to(outside, target_is_directory=True)
    red, blue, muddy = (write_image(inbox / "red.jpg", RED, 1), write_image(inbox / "blue.jpg", BLUE, 2),
                        write_image(inbox / "muddy.jpg", MUDDY, 3))
    broken = inbox / "broken.jpg"
    broken.write_bytes(b"not an image")
    victim = {"tsinelas": red, "review": muddy, "failed": broken}[linked]
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="ERROR")
    try:
        with Journal.open() as journal, Pipeline(ColourClassifier(), Sorter(journal), journal, RecordingHost(),
                                                  Policy(classes=ColourClassifier.classes)) as p:
            outcomes = {o.source.name: o for o in p.run(Item(f, Layout(inbox, ColourClassifier.classes))
                                                          for f in (red, blue, muddy, broken))}
    finally:
        logger.remove(sink)
    assert list(outside.iterdir()) == []
    assert victim.exists() and outcomes[victim.name].destination is None
    assert "symbolic link" in outcomes[victim.name].reason
    assert any("symbolic link" in line and victim.name in line for line in lines)
    assert (inbox / "sapatos" / "blue.jpg").exists()  # the others went on
    assert sum(o.destination is not None for o in outcomes.values()) == 3
