from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest

from distalign.errors import InputError
from distalign.metrics import Interval, bootstrap_mean, pooled_bootstrap
from distalign.metrics.bootstrap import pooled_bootstraps, resample_means


def _sample(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).beta(2, 5, size=n)


def test_interval_record() -> None:
    i = Interval(mean=0.3, low=0.2, high=0.5, n=10)
    assert i.half_width == pytest.approx(0.15)
    with pytest.raises(dataclasses.FrozenInstanceError):
        i.mean = 0.4  # type: ignore[misc]


def test_bootstrap_mean_is_seeded_and_contains_the_mean() -> None:
    values = _sample(200)
    a, b = bootstrap_mean(values, seed=3), bootstrap_mean(values, seed=3)
    assert a == b
    assert bootstrap_mean(values, seed=4) != a
    assert a.mean == pytest.approx(values.mean())
    assert a.low < a.mean < a.high
    assert a.n == 200


def test_bootstrap_width_matches_normal_theory_and_shrinks_with_n() -> None:
    small, large = _sample(100), _sample(10_000)
    wide, narrow = bootstrap_mean(small, n_resamples=2000), bootstrap_mean(large, n_resamples=2000)
    assert narrow.half_width < wide.half_width / 5  # sqrt(100) = 10 times narrower in theory
    expected = 1.959964 * large.std() / np.sqrt(large.size)
    assert narrow.half_width == pytest.approx(expected, rel=0.1)
    ninety = bootstrap_mean(large, n_resamples=2000, level=0.9)
    assert ninety.half_width == pytest.approx(1.644854 * large.std() / np.sqrt(large.size), rel=0.1)


def test_bootstrap_mean_edge_cases() -> None:
    single = bootstrap_mean([0.4])
    assert (single.mean, single.low, single.high, single.n) == (0.4, 0.4, 0.4, 1)
    empty = bootstrap_mean([])
    assert empty.n == 0 and np.isnan(empty.mean) and np.isnan(empty.low)
    with pytest.raises(InputError, match="NaN"):
        bootstrap_mean([0.1, np.nan])
    with pytest.raises(InputError, match="level"):
        bootstrap_mean([0.1, 0.2], level=95)
    with pytest.raises(InputError, match="n_resamples"):
        bootstrap_mean([0.1, 0.2], n_resamples=0)


def test_pooled_aggregate_is_mean_of_pool_means() -> None:
    pools = {"opinionqa": _sample(599, 1), "nyt": _sample(940, 2) / 2, "global": _sample(300, 3) + 0.1}
    out = pooled_bootstrap(pools, seed=0)
    assert list(out) == ["opinionqa", "nyt", "global", "three"]
    for name, values in pools.items():
        assert out[name].mean == pytest.approx(values.mean())
        assert out[name].low < out[name].mean < out[name].high
        assert out[name].n == values.size
    three = out["three"]
    assert three.mean == pytest.approx(np.mean([v.mean() for v in pools.values()]))
    assert three.n == 599 + 940 + 300
    assert three.low < three.mean < three.high
    # Pool means are independent, so the aggregate is narrower than the average pool interval.
    assert three.half_width < np.mean([out[k].half_width for k in pools])
    assert pooled_bootstrap(pools, seed=0) == out


def test_pooled_intervals_do_not_depend_on_other_pools() -> None:
    a, b = _sample(300, 1), _sample(400, 2)
    both = pooled_bootstrap({"a": a, "b": b}, seed=5)
    alone = pooled_bootstrap({"a": a}, seed=5, aggregate=None)
    assert alone == {"a": both["a"]}
    single = pooled_bootstrap({"a": a}, seed=5)
    assert (single["three"].low, single["three"].high) == pytest.approx((single["a"].low, single["a"].high))


def test_pooled_rejects_bad_pools() -> None:
    with pytest.raises(InputError, match="'b'"):
        pooled_bootstrap({"a": [0.1, 0.2], "b": []})
    with pytest.raises(InputError, match="collides"):
        pooled_bootstrap({"three": [0.1, 0.2]})
    with pytest.raises(InputError, match="no pools"):
        pooled_bootstrap({})
    with pytest.raises(InputError, match="'a'"):
        pooled_bootstrap({"a": [0.1, np.inf]})


def test_large_pool_is_chunked_to_bounded_memory() -> None:
    values = _sample(100_000)
    tracemalloc.start()
    try:
        out = pooled_bootstrap({"big": values}, n_resamples=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out["big"].low < values.mean() < out["big"].high
    # Unchunked, the (1000, 100000) index and value arrays alone would take 1.6 GB.
    assert peak < 400 * 2**20


def _reference_interval(values: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float]:
    """An independent percentile bootstrap (plain ``rng.choice``), to compare the shared one against."""
    rng = np.random.default_rng(seed)
    means = [rng.choice(values, size=values.size).mean() for _ in range(n_resamples)]
    return tuple(np.percentile(means, [2.5, 97.5]))


def test_shared_resamples_match_an_independent_bootstrap() -> None:
    # six pools of one size (resampled through a shared count matrix) and one of another (gathered)
    pools = [(f"m{i}", _sample(800, i) * (1 + i / 10)) for i in range(6)] + [("m6", _sample(500, 9))]
    requests = [({"opinionqa": v}, None) for _, v in pools]
    shared = pooled_bootstraps(requests, n_resamples=2000, seed=3)
    for (_, values), out in zip(pools, shared, strict=True):
        iv = out["opinionqa"]
        assert iv.mean == pytest.approx(values.mean())
        theory = 1.959964 * values.std() / np.sqrt(values.size)
        assert iv.half_width == pytest.approx(theory, rel=0.1)
        low, high = _reference_interval(values, 2000, seed=11)
        assert iv.low == pytest.approx(low, abs=0.25 * theory) and iv.high == pytest.approx(
            high, abs=0.25 * theory
        )


def test_pools_of_one_name_and_size_share_their_resamples() -> None:
    a = _sample(400, 1)
    b = a[::-1].copy()  # the same values in reverse order: different resampled means under paired draws
    (ra, rb, rc) = resample_means([("x", a), ("x", a + 1.0), ("y", a)], n_resamples=500, seed=0)
    np.testing.assert_allclose(rb, ra + 1.0)  # same name and size: the same row indices
    assert not np.allclose(rc, ra)  # another name: other draws
    (rr,) = resample_means([("x", b)], n_resamples=500, seed=0)
    assert not np.allclose(rr, ra)
    # paired resamples make a difference between aligned pools far less noisy than independent ones
    paired = np.std(resample_means([("x", a), ("x", a + 0.01 * _sample(400, 2))], 500, 0)[1] - ra)
    assert paired < 0.2 * np.std(ra)


def test_batched_requests_equal_single_calls() -> None:
    pools = {"opinionqa": _sample(300, 1), "nyt_books": _sample(300, 2), "global_opinions": _sample(120, 3)}
    other = {"opinionqa": _sample(300, 4), "nyt_books": _sample(250, 5)}
    batched = pooled_bootstraps([(pools, "three"), (other, "all")], n_resamples=400, seed=7)
    singles = [
        pooled_bootstrap(pools, 400, 7, aggregate="three"),
        pooled_bootstrap(other, 400, 7, aggregate="all"),
    ]
    for got, want in zip(batched, singles, strict=True):
        assert list(got) == list(want)
        for name in want:
            assert (got[name].low, got[name].high) == pytest.approx(
                (want[name].low, want[name].high), rel=1e-12
            )
    assert pooled_bootstraps([(pools, "three")], n_resamples=400, seed=8)[0] != singles[0]


def test_aggregate_resamples_are_the_mean_of_the_pools_resamples() -> None:
    pools = {"a": _sample(300, 1), "b": _sample(200, 2) + 0.5}
    out = pooled_bootstrap(pools, n_resamples=1000, seed=2, aggregate="both")
    ra, rb = resample_means([("a", pools["a"]), ("b", pools["b"])], 1000, 2)
    low, high = np.percentile((ra + rb) / 2, [2.5, 97.5])
    assert (out["both"].low, out["both"].high) == pytest.approx((low, high))
    assert out["both"].mean == pytest.approx((pools["a"].mean() + pools["b"].mean()) / 2)


def test_same_seed_same_intervals_whatever_the_chunking_and_order(monkeypatch) -> None:
    import distalign.metrics.bootstrap as bootstrap

    pools = {"a": _sample(700, 1), "b": _sample(300, 2), "c": _sample(700, 3)}
    want = pooled_bootstrap(pools, n_resamples=500, seed=4, aggregate="all")
    monkeypatch.setattr(bootstrap, "CHUNK_DRAWS", 1000)  # one or two resamples per chunk
    chunked = pooled_bootstrap(pools, n_resamples=500, seed=4, aggregate="all")
    reordered = pooled_bootstrap(dict(reversed(pools.items())), n_resamples=500, seed=4, aggregate="all")
    for got in (chunked, reordered):  # the same resamples; sums may differ in the last bits
        for k, iv in want.items():
            assert (got[k].low, got[k].high) == pytest.approx((iv.low, iv.high), rel=1e-12)
