from __future__ import annotations

import pytest

from footsort.metrics import score


def test_hand_checked_case() -> None:
    # true:  a a a a b b      pred: a a b a b a
    s = score([0, 0, 0, 0, 1, 1], [0, 0, 1, 0, 1, 0], ("a", "b"))
    assert s.confusion == [[3, 1], [1, 1]]
    assert s.accuracy == pytest.approx(4 / 6)
    assert s.per_class["a"].precision == pytest.approx(3 / 4)
    assert s.per_class["a"].recall == pytest.approx(3 / 4)
    assert s.per_class["b"].precision == pytest.approx(1 / 2)
    assert s.per_class["b"].recall == pytest.approx(1 / 2)
    assert s.per_class["b"].f1 == pytest.approx(0.5)
    assert s.per_class["a"].support == 4
    assert s.balanced_accuracy == pytest.approx((0.75 + 0.5) / 2)


def test_class_never_predicted_has_zero_precision() -> None:
    s = score([0, 1], [0, 0], ("a", "b"))
    assert s.per_class["b"].precision == 0.0 and s.per_class["b"].f1 == 0.0
