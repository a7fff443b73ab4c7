"""Figure 13: the annotators' marginal Likert distribution over the NYT books."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from distalign.report.meister2024.humans import human_predictions, read_exports
from distalign.report.meister2024.likert import HUMAN_MARGINALS, figure13, figure13_frame


@pytest.fixture(scope="module")
def frame(release_dir: Path, release_surveys: dict):
    keys = [("nyt_books", s) for s in ("none", "persona", "few_shot")]
    humans = human_predictions(release_dir, exports=read_exports(release_dir, keys=keys))
    return figure13_frame(release_dir, humans, release_surveys["nyt_books"], n_resamples=50)


def test_ground_truth_is_the_mean_of_the_books_own_answers(frame, release_dir: Path) -> None:
    data = json.loads((release_dir / "nytimes" / "data.json").read_text(encoding="utf-8"))
    shares = []
    for entry in data.values():
        counts = np.array([entry["Republican"].get(o, 0) for o in entry["MC_options"]], dtype=float)
        shares.append(counts / counts.sum())
    ours = frame[(frame["group"] == "Republican") & (frame["steering"] == "ground_truth")]
    np.testing.assert_allclose(ours.sort_values("option")["share"], np.mean(shares, axis=0))


def test_estimates_equal_the_releases_precomputed_marginals(frame, release_dir: Path) -> None:
    stored = json.loads((release_dir / HUMAN_MARGINALS).read_text(encoding="utf-8"))["humans"]
    for key, steering in (("persona", "persona"), ("fewshot", "few_shot"), ("nosteer", "none")):
        ours = frame[(frame["group"] == "Female") & (frame["steering"] == steering)].sort_values("option")
        np.testing.assert_allclose(ours["share"], stored["Female"][f"{key}_avg"], atol=1e-9)
    assert len(figure13(frame).axes) == 4
