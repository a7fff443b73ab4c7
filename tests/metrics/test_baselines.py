from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from scipy import stats

from distalign.errors import InputError
from distalign.metrics import (
    expected_sampling_tv,
    majority_prediction,
    pad,
    sampled_tv,
    total_variation,
    uniform_prediction,
)
from tests.metrics.strategies import padded_batch


def test_uniform_prediction_covers_every_valid_option() -> None:
    _, mask = pad([[0.2, 0.3, 0.4, 0.1], [0.5, 0.5]])  # first item with a "Refused" option
    u = uniform_prediction(mask)
    np.testing.assert_allclose(u, [[0.25] * 4, [0.5, 0.5, 0.0, 0.0]])
    with pytest.raises(InputError, match="no valid option"):
        uniform_prediction(np.array([[True, False], [False, False]]))


def test_majority_prediction_one_hot_first_on_ties() -> None:
    human, mask = pad([[0.2, 0.5, 0.3], [0.4, 0.4, 0.2], [0.0, 1.0]])
    np.testing.assert_array_equal(majority_prediction(human, mask), [[0, 1, 0], [1, 0, 0], [0, 1, 0]])
    # Padding never wins, even over an all-zero row.
    np.testing.assert_array_equal(
        majority_prediction(np.zeros((1, 3)), np.array([[False, True, True]])), [[0, 1, 0]]
    )


def test_baselines_scored_by_tv_hand_values() -> None:
    human, mask = pad([[0.6, 0.3, 0.1], [0.5, 0.5]])
    np.testing.assert_allclose(total_variation(human, majority_prediction(human, mask)), [0.4, 0.5])
    np.testing.assert_allclose(total_variation(human, uniform_prediction(mask)), [0.6 - 1 / 3, 0.0])


def test_expected_sampling_tv_hand_values() -> None:
    half = np.array([[0.5, 0.5]])
    # n = 1: one draw is always a point mass, TV 0.5.
    assert expected_sampling_tv(half, n_samples=1)[0] == pytest.approx(0.5)
    # n = 2: (2,0) and (0,2) with prob 1/4 each give TV 0.5; (1,1) gives 0.
    assert expected_sampling_tv(half, n_samples=2)[0] == pytest.approx(0.25)
    # A point mass is reproduced exactly by any sample.
    assert expected_sampling_tv(np.array([[0.0, 1.0, 0.0]]), n_samples=30)[0] == 0.0


def _enumerated_expected_tv(p: np.ndarray, n: int) -> float:
    """Brute force over every multinomial outcome (no linearity trick)."""
    total = 0.0
    for counts in itertools.product(range(n + 1), repeat=p.size):
        if sum(counts) == n:
            total += stats.multinomial.pmf(counts, n, p) * 0.5 * np.abs(np.array(counts) / n - p).sum()
    return total


@pytest.mark.parametrize("n", [1, 3, 5])
def test_expected_sampling_tv_equals_enumeration(n: int) -> None:
    human, mask = pad([[0.2, 0.5, 0.3], [0.7, 0.05, 0.05, 0.2], [0.9, 0.1]])
    got = expected_sampling_tv(human, mask, n_samples=n)
    for i in range(human.shape[0]):
        assert got[i] == pytest.approx(_enumerated_expected_tv(human[i][mask[i]], n), abs=1e-12)


@settings(max_examples=15, deadline=None)
@given(padded_batch(n_dists=1, max_rows=4, max_k=6))
def test_exact_expectation_agrees_with_monte_carlo(batch) -> None:
    mask, human = batch
    exact = expected_sampling_tv(human, mask, n_samples=30)
    mc = sampled_tv(human, mask, n_samples=30, n_draws=20_000, seed=1)
    # TV of 30 samples has a standard deviation below 0.1, so the MC standard error is below 0.001.
    np.testing.assert_allclose(mc, exact, atol=0.005)
    assert np.all((exact >= 0) & (exact <= 1))


def test_sampled_tv_is_seeded() -> None:
    human, mask = pad([[0.2, 0.5, 0.3], [0.5, 0.5]])
    a = sampled_tv(human, mask, n_draws=50, seed=7)
    np.testing.assert_array_equal(a, sampled_tv(human, mask, n_draws=50, seed=7))
    assert not np.array_equal(a, sampled_tv(human, mask, n_draws=50, seed=8))


def test_discretization_error_shrinks_with_samples() -> None:
    human, mask = pad([[0.2, 0.5, 0.3], [0.1, 0.1, 0.4, 0.4]])
    tvs = [expected_sampling_tv(human, mask, n_samples=n) for n in (5, 30, 300)]
    assert np.all(tvs[0] > tvs[1]) and np.all(tvs[1] > tvs[2])


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="n_samples"):
        expected_sampling_tv(np.array([[0.5, 0.5]]), n_samples=0)
    with pytest.raises(InputError, match="no valid option"):
        expected_sampling_tv(np.array([[0.5, 0.5]]), np.array([[False, False]]))
    with pytest.raises(InputError, match="NaN"):
        majority_prediction(np.array([[np.nan, 0.5]]))
