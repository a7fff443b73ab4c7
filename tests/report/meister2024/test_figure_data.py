"""The frames behind Figures 2, 4 and 6."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distalign.errors import InputError
from distalign.report.leaderboard import ROW_KEYS, leaderboard
from distalign.report.meister2024.figure_data import (
    COIN_COLUMNS,
    RELIABILITY_COLUMNS,
    coin_frame,
    reliability_frame,
    steering_frame,
)
from distalign.report.meister2024.reproduce import score_rows


def test_coin_frame(release_dir: Path) -> None:
    coin = coin_frame(release_dir)
    assert tuple(coin.columns) == COIN_COLUMNS
    per = coin.groupby(["model", "method"]).size()
    assert (per == 11).all() and ("gpt-4", "logprobs+temperature") in per.index
    assert set(coin["p_true"].round(1)) == {round(x / 10, 1) for x in range(11)}
    gpt4 = coin[coin["model"] == "gpt-4"].pivot(index="p_true", columns="method", values="p_pred")
    # the paper's Figure 2: sampled sequences track the stated probability, one flip's log-probs jump
    # from ~0 to ~1, and temperature scaling bends them back towards the diagonal
    assert np.abs(gpt4["seq"] - gpt4.index).max() < 0.1
    assert gpt4.loc[0.2, "logprobs"] < 0.05 and gpt4.loc[0.8, "logprobs"] > 0.95
    err = {m: np.abs(gpt4[m] - gpt4.index).mean() for m in gpt4}
    assert err["logprobs+temperature"] < err["logprobs"]


def test_coin_frame_without_results(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="biased-coin"):
        coin_frame(tmp_path)


@pytest.fixture(scope="module")
def logp_scored(imported: pd.DataFrame, release_surveys: dict) -> pd.DataFrame:
    rows = imported[imported["method"].str.startswith("logprobs") & (imported["model"] == "gpt-4")]
    return score_rows(
        rows.drop(columns=["release_tv", "release_mass"]).reset_index(drop=True), release_surveys
    )


def test_reliability_frame(logp_scored: pd.DataFrame) -> None:
    frame = reliability_frame(logp_scored)
    assert tuple(frame.columns) == RELIABILITY_COLUMNS
    assert set(frame["calibration"]) == {"none", "temperature"}
    assert set(frame["dataset"]) == {"opinionqa", "nyt_books", "global_opinions", "all"}
    counts = frame.groupby(["dataset", "calibration"])["count"].sum()
    steered = logp_scored[logp_scored["steering"].isin(["persona", "few_shot"])]
    n_obs = sum(len(h) for h in steered[steered["method"] == "logprobs"]["human"])
    assert counts[("all", "none")] == n_obs
    total = frame[frame["dataset"] == "all"].groupby("calibration")
    assert (total["count"].sum() == counts[("all", "none")]).all()
    # over-confident raw log-p: the top bin's predictions far exceed how often humans choose those options
    top = frame[(frame["dataset"] == "all") & (frame["calibration"] == "none")].iloc[-1]
    assert top["mean_pred"] > 0.9 and top["mean_true"] < 0.6


def test_steering_frame_picks_each_models_best_method(logp_scored: pd.DataFrame) -> None:
    rows = leaderboard(logp_scored, n_resamples=50)
    human = [{**r, "model": "someone", "method": "estimate"} for r in rows if r["method"] == "logprobs"]
    frame = steering_frame(rows, human, method=None)
    assert tuple(frame.columns) == ROW_KEYS
    models = frame[frame["kind"] == "model"]
    assert set(models["method"]) == {"logprobs+temperature"}  # lower TV than raw log-p for GPT-4
    assert set(models["steering"]) == {"none", "persona", "few_shot"}
    assert set(frame[frame["kind"] == "human"]["model"]) == {"human"}
    assert not frame["dataset"].isin(["three", "all"]).any()


def test_steering_frame_plots_one_method_as_published(logp_scored: pd.DataFrame) -> None:
    """The paper's Figure 4 plots Sequence; any method can be asked for, and a model without it is absent."""
    rows = leaderboard(logp_scored, n_resamples=50)
    assert steering_frame(rows).empty == (not any(r["method"] == "seq" for r in rows))
    frame = steering_frame(rows, method="logprobs")
    assert set(frame[frame["kind"] == "model"]["method"]) == {"logprobs"}
