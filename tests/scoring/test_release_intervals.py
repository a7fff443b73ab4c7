"""The bootstrap intervals of the release's Table 1a stay put when the resampling code changes: the fixture
holds the values of the earlier bootstrap (the paper prints its own rounded to 3 decimals, from its own
resamples), and any correct percentile bootstrap of 1000 resamples lands within 0.002 of them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from distalign.report.meister2024.release import import_release
from distalign.scoring.score import score_predictions
from distalign.scoring.scores import baseline_rows, leaderboard
from distalign.survey.model import DATASETS
from distalign.survey.registry import load_survey

FIXTURE = Path(__file__).with_name("data") / "table1a_intervals.json"
TOLERANCE = 0.002


@pytest.fixture(scope="module")
def table_1a(release_dir: Path) -> dict[tuple[str, str | None], dict]:
    surveys = {name: load_survey(name, release_dir) for name in DATASETS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the release's unevaluated groups, counted elsewhere
        scored = score_predictions(import_release(release_dir), surveys, strict=False, unique=True)
    rows = [*leaderboard(scored), *baseline_rows(surveys)]
    return {
        (r["model"], r["method"]): r
        for r in rows
        if r["dataset"] == "three" and r["steering"] in ("all", None)
    }


def test_table_1a_intervals_of_the_release_are_unchanged(table_1a: dict) -> None:
    expected = json.loads(FIXTURE.read_text(encoding="utf-8"))["rows"]
    assert len(expected) == 19
    for want in expected:
        got = table_1a[want["model"], want["method"]]
        assert got["n"] == want["n"]
        assert got["mean"] == pytest.approx(want["mean"], abs=1e-9)
        for end in ("ci_low", "ci_high"):
            assert abs(got[end] - want[end]) <= TOLERANCE, (want["model"], want["method"], end)
        assert got["ci_low"] < got["mean"] < got["ci_high"]
