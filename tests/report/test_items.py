"""A report's input, from sweep items and scored predictions alike: calibrated cells become methods of
their own, and each model prediction counts once in the extraction rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from distalign.errors import InputError
from distalign.report.items import board, combine, human_distributions
from distalign.report.leaderboard import leaderboard
from tests.report.conftest import make_items


def _calibrated(items: pd.DataFrame, split: list[str], name: str = "regression") -> pd.DataFrame:
    return items.assign(
        calibration=name, split=split, calibrated_tv=items["tv"] / 2, calibrated_alignment=items["alignment"]
    )


def test_calibrated_cells_join_as_their_own_method_beside_raw_rows_on_the_same_test_rows() -> None:
    raw = make_items(models=("m",), methods=("seq",), steerings=("persona",), datasets=("nyt_books",))
    n = len(raw)
    split = ["train"] * (n // 2) + ["test"] * (n - n // 2)
    scored = board(combine([raw, _calibrated(raw, split)]))
    test = n - n // 2
    counts = scored.groupby("method").size().to_dict()
    assert counts == {"seq": n, "seq@test": test, "seq+regression@test": test}
    test_rows = raw.iloc[n // 2 :]
    got = scored[scored["method"] == "seq+regression@test"]["tv"].to_numpy()
    assert np.allclose(got, test_rows["tv"].to_numpy() / 2)
    before = scored[scored["method"] == "seq@test"]
    assert np.allclose(before["tv"].to_numpy(), test_rows["tv"].to_numpy())  # the same rows, uncalibrated


def test_a_calibrated_only_cell_gives_its_raw_rows_once() -> None:
    raw = make_items(models=("m",), methods=("logprobs",), steerings=("persona",), datasets=("nyt_books",))
    folds = [f"heldout-fold-{i % 5}" for i in range(len(raw))]
    both = combine([_calibrated(raw, folds, "temperature"), _calibrated(raw, folds, "regression")])
    counts = board(both).groupby("method").size().to_dict()
    assert counts == {"logprobs": len(raw), "logprobs+regression": len(raw), "logprobs+temperature": len(raw)}


def test_a_prediction_scored_on_several_groups_counts_once_in_the_extraction_rate() -> None:
    items = make_items(
        models=("m",), methods=("seq",), steerings=("none",), datasets=("nyt_books",), n_items=2
    )
    items["prompt_hash"] = items["item_id"]  # no steering: one prompt per item, scored on four groups
    items.loc[items["item_id"] == "Q0", "status"] = "unparsed"
    rows = leaderboard(board(combine([items])), n_resamples=20)
    row = next(r for r in rows if r["dataset"] == "nyt_books")
    assert row["extraction_rate"] == pytest.approx(0.5) and row["n"] == 8


def test_scored_predictions_and_items_combine_with_distinct_prediction_ids() -> None:
    scored = pd.DataFrame(
        {
            "row": [0, 0, 1], "model": "h", "method": "estimate", "steering": "none", "dataset": "nyt_books",
            "item_id": ["A", "A", "B"], "group": ["x", "y", "x"], "status": "ok", "tv": [0.1, 0.2, 0.3],
            "pred": [[0.5, 0.5]] * 3, "human": [[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]],
        }
    )  # fmt: skip
    items = make_items(
        models=("m",), methods=("seq",), steerings=("persona",), datasets=("nyt_books",), n_items=1
    )
    both = combine([scored, items])
    assert {"pred_probs", "human_probs"} <= set(both.columns)
    ids = both["row"].to_numpy()
    assert ids[0] == ids[1] != ids[2]  # the file's own prediction ids survive
    assert len(set(ids[3:])) == len(items) and not set(ids[3:]) & set(ids[:3])


def test_missing_columns_are_named() -> None:
    with pytest.raises(InputError, match="tv"):
        combine([make_items(n_items=1).drop(columns="tv")])


def test_human_distributions_are_the_distinct_ones_scored() -> None:
    items = make_items(models=("a", "b"), methods=("seq",), steerings=("persona",), datasets=("nyt_books",))
    dists = human_distributions(items)
    assert list(dists) == ["nyt_books"] and len(dists["nyt_books"]) == 6 * 4  # items x groups, once
