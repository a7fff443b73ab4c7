"""The per-cell TV histogram."""

from __future__ import annotations

import numpy as np
import pytest

from distalign.tracking.figures import tv_histogram


def test_bars_are_the_histogram_and_the_dashed_line_is_the_mean() -> None:
    tv = np.concatenate([np.random.default_rng(0).beta(2, 5, 400), [np.nan, np.inf]])
    finite = tv[np.isfinite(tv)]
    ax = tv_histogram(tv).axes[0]
    counts, edges = np.histogram(finite, bins=20, range=(0, 1))
    assert [p.get_height() for p in ax.patches] == counts.tolist()
    assert [p.get_x() for p in ax.patches] == pytest.approx(edges[:-1])
    (mean,) = ax.get_lines()
    assert mean.get_linestyle() == "--" and mean.get_xdata()[0] == pytest.approx(finite.mean())
    assert ax.get_legend().get_texts()[0].get_text() == f"mean {finite.mean():.3f} (n=400)"
    assert all(float(t).is_integer() for t in ax.get_yticks())  # counts are whole


def test_a_cell_without_scored_rows_still_gets_a_figure_that_says_so() -> None:
    ax = tv_histogram(np.array([np.nan])).axes[0]
    assert all(p.get_height() == 0 for p in ax.patches) and not ax.get_lines()
    assert ax.get_legend() is None
    assert [t.get_text() for t in ax.texts] == ["no scored rows"]
    assert ax.get_ylim()[0] == 0 and all(float(t).is_integer() for t in ax.get_yticks())
