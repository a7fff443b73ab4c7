from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import cityblock, jensenshannon
from scipy.stats import entropy, wasserstein_distance

from distalign.errors import InputError
from distalign.metrics import js_divergence, kl_divergence, total_variation, wasserstein_alignment
from tests.metrics.strategies import normalise, padded_batch

FAST = settings(max_examples=60, deadline=None)


# --- total variation -------------------------------------------------------------------------------


@FAST
@given(padded_batch())
def test_tv_bounds_symmetry_identity_and_scipy(batch) -> None:
    mask, p, q = batch
    tv = total_variation(p, q)
    assert tv.shape == (p.shape[0],)
    assert np.all(np.isfinite(tv)) and np.all(tv >= 0) and np.all(tv <= 1 + 1e-12)
    np.testing.assert_allclose(tv, total_variation(q, p), atol=1e-15)
    np.testing.assert_array_equal(total_variation(p, p), 0.0)
    for i in range(p.shape[0]):
        assert tv[i] == pytest.approx(0.5 * cityblock(p[i][mask[i]], q[i][mask[i]]), abs=1e-12)


def test_tv_hand_values_and_1d() -> None:
    assert total_variation([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)
    assert total_variation([0.5, 0.3, 0.2], [0.2, 0.3, 0.5]) == pytest.approx(0.3)
    assert np.ndim(total_variation([0.5, 0.5], [0.5, 0.5])) == 0


def test_padding_does_not_change_the_distance() -> None:
    p, q = np.array([0.2, 0.8]), np.array([0.6, 0.4])
    padded = np.array([[0.2, 0.8, 0.0, 0.0]]), np.array([[0.6, 0.4, 0.0, 0.0]])
    for f in (total_variation, kl_divergence, js_divergence):
        assert f(*padded)[0] == pytest.approx(f(p, q))


@pytest.mark.parametrize("f", [total_variation, kl_divergence, js_divergence])
def test_bad_input_raises(f) -> None:
    with pytest.raises(InputError, match="shapes differ"):
        f(np.ones((2, 3)) / 3, np.ones((2, 4)) / 4)
    with pytest.raises(InputError, match="NaN"):
        f([0.5, np.nan], [0.5, 0.5])
    with pytest.raises(InputError, match="negative"):
        f([1.5, -0.5], [0.5, 0.5])


# --- KL -----------------------------------------------------------------------------------------------


@FAST
@given(padded_batch())
def test_kl_matches_scipy_where_q_is_positive(batch) -> None:
    mask, p, q = batch
    q = normalise(np.where(mask, q + 0.05, 0.0), mask)  # q > 0 on every valid option
    kl = kl_divergence(p, q)
    assert np.all(kl >= 0)
    np.testing.assert_array_equal(kl_divergence(p, p), 0.0)
    for i in range(p.shape[0]):
        assert kl[i] == pytest.approx(entropy(p[i][mask[i]], q[i][mask[i]]), rel=1e-9, abs=1e-12)


@FAST
@given(padded_batch())
def test_kl_is_finite_with_zeros_anywhere(batch) -> None:
    _, p, q = batch
    kl = kl_divergence(p, q)
    assert np.all(np.isfinite(kl)) and np.all(kl >= 0)


def test_kl_zero_handling_and_asymmetry() -> None:
    # 0 log 0 = 0: an option p never uses costs nothing.
    assert kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(np.log(2))
    # q = 0 where p > 0: floored at eps instead of infinity.
    eps = 1e-12
    expected = 0.5 * np.log(0.5 / 1.0) + 0.5 * np.log(0.5 / eps)
    assert kl_divergence([0.5, 0.5], [1.0, 0.0], eps=eps) == pytest.approx(expected)
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) != pytest.approx(kl_divergence([1.0, 0.0], [0.5, 0.5]))
    with pytest.raises(InputError, match="eps"):
        kl_divergence([0.5, 0.5], [1.0, 0.0], eps=0.0)


# --- JS -----------------------------------------------------------------------------------------------


@FAST
@given(padded_batch())
def test_js_bounds_symmetry_identity_and_scipy(batch) -> None:
    mask, p, q = batch
    js = js_divergence(p, q)
    assert np.all(np.isfinite(js)) and np.all(js >= 0) and np.all(js <= 1)
    np.testing.assert_allclose(js, js_divergence(q, p), atol=1e-15)
    np.testing.assert_array_equal(js_divergence(p, p), 0.0)
    for i in range(p.shape[0]):
        ref = jensenshannon(p[i][mask[i]], q[i][mask[i]], base=2) ** 2
        if np.isnan(ref):  # scipy takes the sqrt of a rounding-negative divergence for (near-)equal rows
            assert np.allclose(p[i], q[i])
            ref = 0.0
        assert js[i] == pytest.approx(ref, abs=1e-9)


def test_js_extremes_and_base() -> None:
    assert js_divergence([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)
    assert js_divergence([1.0, 0.0], [0.0, 1.0], base=np.e) == pytest.approx(np.log(2))
    p, q = [0.1, 0.6, 0.3], [0.4, 0.4, 0.2]
    assert js_divergence(p, q, base=np.e) == pytest.approx(jensenshannon(p, q) ** 2)


# --- Wasserstein alignment ------------------------------------------------------------------------


@st.composite
def ordinal_batch(draw: st.DrawFn):
    """Distributions plus ordinal positions (unsorted, duplicates allowed, NaN = non-substantive)."""
    mask, p, q = draw(padded_batch(max_k=8))
    positions = draw(arrays(np.float64, mask.shape, elements=st.integers(1, 10).map(float)))
    substantive = draw(arrays(np.bool_, mask.shape, elements=st.booleans()))
    substantive[:, 0] = True  # every row keeps at least one substantive option
    ordinal = np.where(mask & substantive, positions, np.nan)
    return mask, p, q, ordinal


def _reference_alignment(p: np.ndarray, q: np.ndarray, ordinal: np.ndarray) -> float:
    sub = ~np.isnan(ordinal)
    x = ordinal[sub]
    u, v = p[sub], q[sub]
    u = u / u.sum() if u.sum() > 0 else np.full(x.size, 1 / x.size)
    v = v / v.sum() if v.sum() > 0 else np.full(x.size, 1 / x.size)
    span = x.max() - x.min()
    if span == 0:
        return 1.0
    return 1 - wasserstein_distance(x, x, u, v) / span


@settings(max_examples=150, deadline=None)
@given(ordinal_batch())
def test_alignment_matches_scipy_wasserstein(batch) -> None:
    _, p, q, ordinal = batch
    got = wasserstein_alignment(p, q, ordinal)
    assert np.all((got >= 0) & (got <= 1))
    np.testing.assert_allclose(got, wasserstein_alignment(q, p, ordinal), atol=1e-12)
    np.testing.assert_allclose(wasserstein_alignment(p, p, ordinal), 1.0, atol=1e-12)
    for i in range(p.shape[0]):
        assert got[i] == pytest.approx(_reference_alignment(p[i], q[i], ordinal[i]), abs=1e-9)


def test_alignment_hand_values() -> None:
    ordinal = np.array([1.0, 2.0, 3.0, 4.0, np.nan])  # last option "Refused"
    assert wasserstein_alignment([1, 0, 0, 0, 0], [0, 0, 0, 1, 0], ordinal) == pytest.approx(0.0)
    assert wasserstein_alignment([1, 0, 0, 0, 0], [0, 1, 0, 0, 0], ordinal) == pytest.approx(1 - 1 / 3)
    # Mass on "Refused" is dropped before comparing: these two agree on every substantive option.
    assert wasserstein_alignment([0.25, 0.25, 0, 0, 0.5], [0.5, 0.5, 0, 0, 0], ordinal) == pytest.approx(1.0)


def test_alignment_no_substantive_mass_is_uniform() -> None:
    ordinal = np.array([1.0, 2.0, 3.0, np.nan])
    only_refused = [0.0, 0.0, 0.0, 1.0]
    uniform = [1 / 3, 1 / 3, 1 / 3, 0.0]
    q = [0.7, 0.1, 0.2, 0.0]
    assert wasserstein_alignment(only_refused, q, ordinal) == pytest.approx(
        wasserstein_alignment(uniform, q, ordinal)
    )
    assert wasserstein_alignment(only_refused, uniform, ordinal) == pytest.approx(1.0)


def test_alignment_degenerate_rows() -> None:
    p = np.array([[0.2, 0.8, 0.0], [0.5, 0.5, 0.0], [0.3, 0.3, 0.4]])
    q = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.1, 0.1, 0.8]])
    ordinal = np.array([[3.0, 1.0, np.nan], [np.nan, np.nan, np.nan], [2.0, np.nan, np.nan]])
    got = wasserstein_alignment(p, q, ordinal)
    assert got[0] == pytest.approx(1 - 0.7 * 2 / 2)  # unsorted positions: 0.7 of mass moves a distance of 2
    assert np.isnan(got[1])  # nothing substantive to compare
    assert got[2] == 1.0  # one substantive option: both collapse onto it


def test_alignment_broadcasts_one_ordinal_row_and_rejects_misfits() -> None:
    p = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    q = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(wasserstein_alignment(p, q, [1.0, 2.0, 3.0]), [0.0, 1.0])
    with pytest.raises(InputError, match="ordinal"):
        wasserstein_alignment(p, q, [1.0, 2.0])
    with pytest.raises(InputError, match="ordinal"):
        wasserstein_alignment(p, q, [1.0, np.inf, 3.0])


@FAST
@given(padded_batch())
def test_alignment_finite_with_zeros(batch) -> None:
    mask, p, q = batch
    ordinal = np.where(mask, np.arange(1, mask.shape[1] + 1, dtype=float), np.nan)
    got = wasserstein_alignment(p, q, ordinal)
    assert np.all(np.isfinite(got))
