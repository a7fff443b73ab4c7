"""The few-shot prompt's examples are the learning curve's n = 5 training sets (Kambhatla et al. 2025, §6.2):
one sampling function draws both."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from distalign.calibration.curves import learning_curve
from distalign.calibration.frame import padded, question_keys
from distalign.calibration.regression import DistributionRegressor, option_mse
from distalign.calibration.sampling import (
    few_shot_examples,
    few_shot_sets,
    item_keys,
    split_questions,
    training_pool,
    training_sets,
)
from distalign.calibration.stage import calibrate_items
from distalign.errors import InputError
from distalign.records.config import CalibrationConfig
from distalign.survey import load_survey
from tests.calibration.conftest import power, synthetic_items


def _noisy() -> pd.DataFrame:
    # noisy enough that every 5-distribution training set gives its own calibrator
    return synthetic_items(n_items=60, distort=lambda h, r: power(h, 2.5, r, 0.4), seed=4)


def _mse_on_sets(items: pd.DataFrame, sets: tuple, seed: int) -> float:
    """Test MSE of ridge calibrators fitted on exactly ``sets``, averaged (computed without the curve)."""
    items = items.reset_index(drop=True)
    data = padded(items)
    split = split_questions(question_keys(items), seed)
    keys = item_keys(items)
    dev, test = split == "dev", split == "test"
    out = []
    for drawn in sets:
        rows = [i for i, k in enumerate(keys) if k in set(drawn)]
        model = DistributionRegressor(("ridge",)).fit(
            data.pred[rows], data.human[rows], data.pred[dev], data.human[dev]
        )
        out.append(option_mse(model.predict_proba(data.pred[test]), data.human[test], data.mask[test]))
    return float(np.mean(out))


@pytest.mark.parametrize("seed", [0, 7])
def test_the_learning_curve_at_n5_fits_on_the_few_shot_example_sets(seed: int) -> None:
    items = _noisy()
    sets = few_shot_sets(training_pool(item_keys(items), seed), seed)
    assert len(sets) == 3 and all(len(s) == 5 for s in sets)
    curve = learning_curve(items, sizes=(5,), repeats=3, seed=seed, candidates=("ridge",))
    assert curve["mse_mean"].iloc[0] == pytest.approx(_mse_on_sets(items, sets, seed), rel=1e-12)
    # the first 3 of the curve's 10 draws are the few-shot sets
    assert training_sets(training_pool(item_keys(items), seed), 5, 10, seed)[:3] == sets
    other = few_shot_sets(training_pool(item_keys(items), seed), seed + 1)
    assert other != sets
    assert curve["mse_mean"].iloc[0] != pytest.approx(_mse_on_sets(items, other, seed), rel=1e-6)


def test_the_pool_is_the_calibrators_train_split_whatever_parsed() -> None:
    items = _noisy()
    items.loc[items.index[::7], "status"] = "unparsed"  # discarded answers stay in the pool
    items.loc[items.index[::7], "pred_probs"] = None
    out = calibrate_items(items, CalibrationConfig(name="regression", params={"candidates": ["ridge"]}))
    train = out.items[out.items["split"] == "train"]
    assert training_pool(item_keys(items)) == tuple(sorted(item_keys(train)))


def test_draws_do_not_depend_on_the_order_or_the_number_asked_for() -> None:
    pool = training_pool(item_keys(_noisy()))
    shuffled = list(pool)
    np.random.default_rng(1).shuffle(shuffled)
    assert training_sets(shuffled, 5, 3) == training_sets(pool, 5, 10)[:3]
    sets = training_sets(pool, 10)
    assert len(sets) == 10 and len({s for s in sets}) == 10
    assert all(len(set(s)) == 10 and set(s) <= set(pool) for s in sets)
    assert training_sets(pool, 10**6, 2)[0] == tuple(sorted(pool))  # capped at the pool
    with pytest.raises(InputError, match="repeats"):
        training_sets(pool, 5, 0)
    with pytest.raises(InputError, match="empty"):
        training_sets([], 5)


def test_few_shot_examples_of_a_survey_are_its_train_split_distributions() -> None:
    survey = load_survey("opinionqa", data_dir="fixture")
    sets = few_shot_examples(survey, seed=2)
    assert len(sets) == 3 and all(len(s) == 5 for s in sets)
    rows = pd.DataFrame(
        [
            {"dataset": survey.name, "item_id": d.item_id, "attribute": d.attribute, "group": d.group}
            for d in survey.distributions
        ]
    )
    split = dict(zip(rows["item_id"], split_questions(question_keys(rows), 2), strict=True))
    assert all(split[d.item_id] == "train" for s in sets for d in s)
    keys = few_shot_sets(training_pool(item_keys(rows), 2), 2)
    assert tuple(tuple((survey.name, d.item_id, d.attribute, d.group) for d in s) for s in sets) == keys
