from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from distalign.errors import InputError
from distalign.metrics import bonferroni, compare_paired, paired_ttest
from distalign.metrics.significance import anova_then_paired, repeated_measures_anova


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


def _rm_anova_by_hand(wide: np.ndarray) -> tuple[float, float]:
    """F and p of a one-way repeated-measures ANOVA from its sums of squares (textbook formulas)."""
    n, k = wide.shape
    grand = wide.mean()
    ss_cond = n * ((wide.mean(axis=0) - grand) ** 2).sum()
    ss_subj = k * ((wide.mean(axis=1) - grand) ** 2).sum()
    ss_err = ((wide - grand) ** 2).sum() - ss_cond - ss_subj
    df1, df2 = k - 1, (k - 1) * (n - 1)
    f = (ss_cond / df1) / (ss_err / df2)
    return f, float(stats.f.sf(f, df1, df2))


def test_repeated_measures_anova_matches_the_sums_of_squares() -> None:
    rng = np.random.default_rng(1)
    subject = rng.normal(0.7, 0.1, 30)  # a large subject effect the paired design removes
    wide = np.column_stack([subject + d + rng.normal(0, 0.02, 30) for d in (0.0, 0.01, 0.03)])
    res = repeated_measures_anova(
        {"verbalize": wide[:, 0], "self_random": wide[:, 1], "paraphrase": wide[:, 2]}
    )
    f, p = _rm_anova_by_hand(wide)
    assert res.f == pytest.approx(f) and res.p == pytest.approx(p)
    assert (res.df_num, res.df_den, res.n_subjects) == (2, 58, 30)
    # a between-subjects one-way ANOVA on the same numbers cannot see the shift through the subject noise
    assert stats.f_oneway(*wide.T).pvalue > 0.05 > res.p


def test_repeated_measures_anova_uses_complete_subjects_only() -> None:
    rng = np.random.default_rng(2)
    wide = rng.uniform(size=(20, 3))
    holey = wide.copy()
    holey[3, 1] = np.nan
    res = repeated_measures_anova({"a": holey[:, 0], "b": holey[:, 1], "c": holey[:, 2]})
    keep = np.ones(20, dtype=bool)
    keep[3] = False
    assert res.n_subjects == 19 and res.f == pytest.approx(_rm_anova_by_hand(wide[keep])[0])
    with pytest.raises(InputError, match="number of subjects"):
        repeated_measures_anova({"a": [0.1, 0.2], "b": [0.1]})


def test_anova_gates_the_paired_tests() -> None:
    rng = np.random.default_rng(3)
    base = rng.uniform(0.5, 0.9, 40)
    noise = rng.normal(0, 0.01, (3, 40))
    wild = rng.normal(0, 0.3, 40)
    families = {
        "differ": {"a": base, "b": base + 0.05 + noise[0], "c": base + noise[1]},
        "same": {"a": base, "b": base + noise[1], "c": base + noise[2]},
        # a and b differ consistently, but c's noise swamps the omnibus test: the pair must not count
        "noisy": {"a": base, "b": base + 0.01 + noise[0] / 10, "c": base + wild - wild.mean()},
    }
    anova, pairs = anova_then_paired(families)
    assert anova.set_index("family")["anova_significant"].to_dict() == {
        "differ": True,
        "same": False,
        "noisy": False,
    }
    assert len(pairs) == 9  # three pairs per family
    np.testing.assert_allclose(pairs["p_bonferroni"], np.minimum(9 * pairs["p"], 1.0))  # across all pairs
    row = {(r.family, r.a, r.b): r for r in pairs.itertuples()}
    assert row[("differ", "a", "b")].significant and row[("differ", "b", "c")].significant
    assert not row[("differ", "a", "c")].significant
    assert not pairs[pairs["family"] == "same"]["significant"].any()
    gated = row[("noisy", "a", "b")]
    assert gated.p_bonferroni < 0.05 and not gated.significant
