from __future__ import annotations

import pytest

from footsort.learning.metrics import (
    expected_calibration_error,
    lowest_threshold_for,
    reliability_bins,
    risk_coverage,
    score,
    threshold_table,
)


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


CONF = [0.99, 0.95, 0.9, 0.8, 0.7, 0.6]
RIGHT = [True, True, False, True, True, False]


def test_threshold_table_counts_what_reaches_each_threshold() -> None:
    rows = threshold_table(CONF, RIGHT, [0.5, 0.85, 0.999])
    assert [r.n_sorted for r in rows] == [6, 3, 0]
    assert rows[0].sorted_accuracy == pytest.approx(4 / 6)
    assert rows[1].sorted_share == pytest.approx(0.5) and rows[1].sorted_accuracy == pytest.approx(2 / 3)
    assert rows[2].sorted_accuracy is None


def test_lowest_threshold_reaching_a_precision() -> None:
    assert lowest_threshold_for(CONF, RIGHT, 0.75) == 0.7  # the top five hold 4 right of 5 = 0.8
    assert lowest_threshold_for(CONF, RIGHT, 1.0) == 0.95
    assert lowest_threshold_for([0.9, 0.8], [False, False], 0.5) is None


def test_risk_coverage_does_not_split_ties() -> None:
    curve = risk_coverage([0.9, 0.9, 0.5], [True, False, True])
    assert curve == [(pytest.approx(2 / 3), 0.5, 0.9), (1.0, pytest.approx(2 / 3), 0.5)]


def test_calibration_error_is_zero_when_confidence_matches_accuracy() -> None:
    assert expected_calibration_error([0.75] * 4, [True, True, True, False]) == pytest.approx(0.0)
    assert expected_calibration_error([0.95] * 2, [False, False]) == pytest.approx(0.95)
    assert reliability_bins([0.75] * 4, [True, True, True, False]) == [(0.75, 0.75, 4)]
