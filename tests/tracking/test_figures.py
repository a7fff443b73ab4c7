"""The per-cell TV histogram (SVG text) and its count axis."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from distalign.tracking.figures import nice_ticks, tv_histogram_svg

_NS = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("top", [0, 1, 4, 6, 7, 11, 19, 47, 65, 101, 250, 999, 1234, 98765])
def test_count_ticks_are_whole_evenly_spaced_and_cover_the_tallest_bar(top: int) -> None:
    ticks = nice_ticks(top)
    assert ticks[0] == 0 and ticks[-1] >= top and 2 <= len(ticks) <= 6
    steps = set(np.diff(ticks))
    assert len(steps) == 1 and all(float(s).is_integer() for s in steps)
    assert ticks[-2] < max(top, 1)  # no empty tick band above the tallest bar


def test_bars_are_the_histogram_and_the_dashed_line_is_the_mean() -> None:
    tv = np.concatenate([np.random.default_rng(0).beta(2, 5, 400), [np.nan, np.inf]])
    root = ET.fromstring(tv_histogram_svg(tv))
    finite = tv[np.isfinite(tv)]
    counts, _ = np.histogram(finite, bins=20, range=(0, 1))
    bars = root.find(f"{_NS}g[@class='bars']")
    assert bars is not None
    drawn = [int(r.get("data-count", "0")) for r in bars]
    assert drawn == [int(c) for c in counts if c]
    heights = [float(r.get("height", "0")) for r in bars]
    scale = max(heights) / max(drawn)
    assert np.allclose(heights, np.array(drawn) * scale, atol=0.02)  # one scale for all
    mean = root.find(f"{_NS}line[@class='mean']")
    assert mean is not None and float(mean.get("data-mean", "nan")) == pytest.approx(finite.mean())
    left, right = 62, 485
    assert float(mean.get("x1", "nan")) == pytest.approx(left + finite.mean() * (right - left), abs=0.01)


def test_a_cell_without_scored_rows_still_gets_a_valid_figure() -> None:
    root = ET.fromstring(tv_histogram_svg(np.array([np.nan])))
    bars = root.find(f"{_NS}g[@class='bars']")
    assert bars is not None and len(bars) == 0
    assert any(t.text == "no scored rows" for t in root.iter(f"{_NS}text"))
