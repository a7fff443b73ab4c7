from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from distalign.errors import InputError
from distalign.metrics import bonferroni, compare_paired, paired_ttest


def test_paired_ttest_matches_the_formula() -> None:
    a = np.array([0.30, 0.25, 0.40, 0.35, 0.28])
    b = np.array([0.20, 0.22, 0.31, 0.30, 0.27])
    d = a - b
    t_expected = d.mean() / (d.std(ddof=1) / np.sqrt(d.size))
    p_expected = 2 * stats.t.sf(abs(t_expected), df=d.size - 1)
    t, p = paired_ttest(a, b)
    assert t == pytest.approx(t_expected)
    assert p == pytest.approx(p_expected)


def test_paired_ttest_drops_incomplete_pairs() -> None:
    a = np.array([0.30, np.nan, 0.40, 0.35, 0.28, 0.5])
    b = np.array([0.20, 0.22, 0.31, np.nan, 0.27, 0.1])
    keep = np.isfinite(a) & np.isfinite(b)
    assert paired_ttest(a, b) == pytest.approx(paired_ttest(a[keep], b[keep]))
    assert np.all(np.isfinite(paired_ttest(a, b)))
    t, p = paired_ttest([0.1, np.nan], [0.2, 0.3])
    assert np.isnan(t) and np.isnan(p)
    with pytest.raises(InputError, match="differ in length"):
        paired_ttest([0.1, 0.2], [0.1])


def test_bonferroni() -> None:
    reject, corrected = bonferroni([0.01, 0.02, 0.3, np.nan], alpha=0.05)
    np.testing.assert_allclose(corrected[:3], [0.03, 0.06, 0.9])  # three tests could be run
    assert np.isnan(corrected[3])
    np.testing.assert_array_equal(reject, [True, False, False, False])
    _, capped = bonferroni([0.5, 0.6])
    np.testing.assert_array_equal(capped, [1.0, 1.0])


def test_compare_paired_table() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.5, size=200)
    settings = {
        "gpt4/verbalize": (base, base - 0.05 + rng.normal(0, 0.02, size=200)),  # clear improvement
        "llama/seq": (base, base + rng.normal(0, 0.02, size=200)),  # no effect
    }
    df = compare_paired(settings)
    assert list(df.columns) == [
        "setting",
        "mean_before",
        "mean_after",
        "t",
        "p",
        "p_bonferroni",
        "significant",
    ]
    assert list(df["setting"]) == ["gpt4/verbalize", "llama/seq"]
    first, second = df.iloc[0], df.iloc[1]
    assert first["mean_before"] == pytest.approx(base.mean())
    assert first["mean_after"] == pytest.approx(settings["gpt4/verbalize"][1].mean())
    assert first["t"] > 0 and bool(first["significant"])
    assert not bool(second["significant"])
    assert df["p_bonferroni"].tolist() == pytest.approx(np.minimum(2 * df["p"], 1).tolist())
    assert compare_paired({}).empty
