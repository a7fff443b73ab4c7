from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distalign.errors import InputError
from distalign.metrics import expected_calibration_error, reliability_curve
from tests.metrics.strategies import padded_batch


def _loop_ece(pred: np.ndarray, true: np.ndarray, n_bins: int) -> float:
    """Textbook definition, bin by bin, with edges [b/n, (b+1)/n) and 1.0 in the last bin."""
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        upper = pred <= edges[b + 1] if b == n_bins - 1 else pred < edges[b + 1]
        in_bin = (pred >= edges[b]) & upper
        if in_bin.any():
            total += in_bin.sum() / pred.size * abs(pred[in_bin].mean() - true[in_bin].mean())
    return total


@settings(max_examples=60, deadline=None)
@given(padded_batch(), st.integers(1, 20))
def test_ece_matches_definition_and_bounds(batch, n_bins) -> None:
    mask, pred, true = batch
    ece = expected_calibration_error(pred, true, mask, n_bins=n_bins)
    assert ece == pytest.approx(_loop_ece(pred[mask], true[mask], n_bins), abs=1e-12)
    assert 0 <= ece <= np.abs(pred[mask] - true[mask]).mean() + 1e-12  # binning can only hide error
    assert expected_calibration_error(true, true, mask, n_bins=n_bins) == pytest.approx(0.0, abs=1e-15)


def test_ece_hand_value() -> None:
    # bins 0 and 9 hold one observation each: 0.5 * 0.05 + 0.5 * 0.05
    assert expected_calibration_error([0.05, 0.95], [0.0, 1.0]) == pytest.approx(0.05)
    # one bin, over- and under-confidence cancel inside it
    assert expected_calibration_error([0.42, 0.48], [0.48, 0.42]) == pytest.approx(0.0)
    assert expected_calibration_error([0.42, 0.48], [0.48, 0.42], n_bins=100) == pytest.approx(0.06)


def test_ece_mask_excludes_padding() -> None:
    pred = np.array([[0.8, 0.2, 0.0]])
    true = np.array([[0.5, 0.5, 0.0]])
    mask = np.array([[True, True, False]])
    assert expected_calibration_error(pred, true, mask) == pytest.approx(0.3)
    assert expected_calibration_error(pred, true) == pytest.approx(0.2)  # padded zero counted


def test_ece_empty_is_nan_and_bad_input_raises() -> None:
    assert np.isnan(expected_calibration_error(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2), bool)))
    with pytest.raises(InputError, match="n_bins"):
        expected_calibration_error([0.5], [0.5], n_bins=0)
    with pytest.raises(InputError, match="pred"):
        expected_calibration_error([1.5], [0.5])
    with pytest.raises(InputError, match="shapes differ"):
        expected_calibration_error([0.5, 0.5], [1.0])


def test_reliability_curve() -> None:
    pred = np.array([0.05, 0.15, 0.12, 1.0])
    true = np.array([0.1, 0.2, 0.0, 0.9])
    centers, mean_pred, mean_true, counts = reliability_curve(pred, true, n_bins=5)
    np.testing.assert_allclose(centers, [0.1, 0.3, 0.5, 0.7, 0.9])
    np.testing.assert_array_equal(counts, [3, 0, 0, 0, 1])
    assert mean_pred[0] == pytest.approx((0.05 + 0.15 + 0.12) / 3)
    assert mean_true[0] == pytest.approx(0.1)
    assert mean_pred[4] == 1.0 and mean_true[4] == pytest.approx(0.9)
    assert np.isnan(mean_pred[1:4]).all() and np.isnan(mean_true[1:4]).all()
