"""naming: `name (1).jpg` collision names (pure)."""

from __future__ import annotations

import itertools

from footsort.sorting.naming import NAME_MAX, candidates, free_name, split_name


def first(name: str, n: int = 3) -> list[str]:
    return list(itertools.islice(candidates(name), n))


def test_counter_goes_before_the_suffix() -> None:
    assert first("photo.jpg") == ["photo.jpg", "photo (1).jpg", "photo (2).jpg"]


def test_existing_counter_is_continued() -> None:
    assert first("photo (3).jpg") == ["photo (3).jpg", "photo (4).jpg", "photo (5).jpg"]


def test_names_without_suffix_and_hidden_names() -> None:
    assert first("README", 2) == ["README", "README (1)"]
    assert split_name(".hidden") == (".hidden", "")
    assert split_name("archive.tar.gz") == ("archive.tar", ".gz")
    assert split_name("trailing.") == ("trailing.", "")


def test_free_name_skips_taken_names() -> None:
    assert free_name("a.jpg", set()) == "a.jpg"
    assert free_name("a.jpg", {"a.jpg", "a (1).jpg"}) == "a (2).jpg"


def test_long_unicode_names_fit_the_byte_limit_without_splitting_characters() -> None:
    name = "sandália " * 30 + ".jpg"  # well over 255 bytes
    for cand in first(name, 3):
        assert len(cand.encode("utf-8")) <= NAME_MAX
        assert cand.endswith(".jpg")
        cand.encode("utf-8").decode("utf-8")  # no broken multi-byte character
    assert first(name, 2)[1].endswith(" (1).jpg")
    assert len(set(first(name, 5))) == 5


def test_spaces_newlines_and_unicode_are_kept() -> None:
    assert first("my\nphoto é.jpg", 2) == ["my\nphoto é.jpg", "my\nphoto é (1).jpg"]
