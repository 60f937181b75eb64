"""decide: prediction + policy -> Sort | Review | Skip (pure)."""

from __future__ import annotations

import pytest

from footsort.model.prediction import Prediction
from footsort.sorting.decide import Policy, Review, Skip, Sort, decide, decide_duplicate

CLASSES = ("sapatos", "tsinelas")


def pred(label: str, conf: float) -> Prediction:
    return Prediction(label, conf, {label: conf})


@pytest.mark.parametrize("conf, expected", [(0.80, Sort("tsinelas")), (0.99, Sort("tsinelas")), (1.0, Sort("tsinelas"))])
def test_at_or_above_threshold_sorts(conf: float, expected: Sort) -> None:
    assert decide(pred("tsinelas", conf), Policy(0.80, CLASSES)) == expected


def test_below_threshold_goes_to_review_with_reason_and_guess() -> None:
    d = decide(pred("sapatos", 0.7999), Policy(0.80, CLASSES))
    assert isinstance(d, Review)
    assert d.label == "sapatos"
    assert "0.80" in d.reason and "below" in d.reason


def test_unknown_label_and_nan_go_to_review() -> None:
    assert isinstance(decide(pred("boots", 0.99), Policy(0.5, CLASSES)), Review)
    assert isinstance(decide(pred("tsinelas", float("nan")), Policy(0.5, CLASSES)), Review)


def test_any_label_allowed_without_class_list() -> None:
    assert decide(pred("boots", 0.9), Policy(0.5)) == Sort("boots")


def test_threshold_zero_sorts_everything_and_one_needs_certainty() -> None:
    assert decide(pred("tsinelas", 0.0), Policy(0.0, CLASSES)) == Sort("tsinelas")
    assert isinstance(decide(pred("tsinelas", 0.999), Policy(1.0, CLASSES)), Review)


def test_duplicate_policies() -> None:
    assert isinstance(decide_duplicate("/x/tsinelas/a.jpg", Policy(duplicates="skip")), Skip)
    review = decide_duplicate("/x/tsinelas/a.jpg", Policy(duplicates="review"))
    assert isinstance(review, Review) and "/x/tsinelas/a.jpg" in review.reason
    assert decide_duplicate("/x/tsinelas/a.jpg", Policy(duplicates="sort")) is None
