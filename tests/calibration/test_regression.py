from __future__ import annotations

import numpy as np
import pytest

from distalign.calibration.regression import DistributionRegressor, option_features, renormalised
from distalign.calibration.sampling import split_questions
from distalign.calibration.stage import calibrate_items
from distalign.errors import InputError
from distalign.records.config import CalibrationConfig
from tests.calibration.conftest import synthetic_items

FAST = ["linear", "ridge"]


def test_split_is_by_question_and_seeded() -> None:
    qs = np.repeat([f"q{i}" for i in range(50)], 4)
    split = split_questions(qs, seed=3)
    for label in ("train", "dev", "test"):
        others = set(qs[split != label])
        assert not set(qs[split == label]) & others
    counts = {label: len(set(qs[split == label])) for label in ("train", "dev", "test")}
    assert counts == {"train": 40, "dev": 5, "test": 5}
    np.testing.assert_array_equal(split, split_questions(qs, seed=3))
    assert not np.array_equal(split, split_questions(qs, seed=4))


def test_split_needs_three_questions() -> None:
    with pytest.raises(InputError, match="at least 3 questions"):
        split_questions(np.array(["a", "a", "b"]))


def test_stage_never_shares_a_question_between_splits() -> None:
    items = synthetic_items(n_items=40)
    out = calibrate_items(items, CalibrationConfig(name="regression", params={"candidates": FAST})).items
    by_q = out.groupby("item_id")["split"].nunique()
    assert (by_q == 1).all()
    assert set(out["split"]) == {"train", "dev", "test"}
    assert out.loc[out["split"] == "test", "item_id"].nunique() == 4


def test_renormalised_clips_and_falls_back() -> None:
    raw = np.array([[0.2, 0.8, np.nan], [0.5, 0.5, np.nan]])
    cal = np.array([[-0.1, 0.3, 9.0], [-0.2, -0.1, 0.0]])
    out = renormalised(raw, cal)
    np.testing.assert_allclose(out[0], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(out[1], [0.5, 0.5, 0.0])  # no calibrated mass: the raw row


def test_position_features() -> None:
    X = np.array([[0.1, 0.9, np.nan], [0.2, 0.3, 0.5]])
    plain, valid = option_features(X)
    assert plain.shape == (5, 1) and valid.sum() == 5
    pos, _ = option_features(X, "position")
    np.testing.assert_allclose(pos[:, 1], [0.0, 1.0, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(pos[:, 2], [0.5, 0.5, 1 / 3, 1 / 3, 1 / 3])
    with pytest.raises(InputError, match="unknown features"):
        option_features(X, "magic")


def test_dev_split_chooses_the_regressor() -> None:
    """A step-shaped map is fitted far better by a forest than a line, so the dev MSE must pick it."""
    rng = np.random.default_rng(0)

    def rows(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.uniform(size=(n, 2))
        return x, np.where(x > 0.5, 0.9, 0.1)

    X, y = rows(300)
    Xd, yd = rows(60)
    model = DistributionRegressor(("linear", "random_forest")).fit(X, y, Xd, yd)
    assert model.chosen_ == "random_forest"
    linear = DistributionRegressor(("linear",)).fit(X, y, Xd, yd)
    assert linear.chosen_ == "linear" and model.dev_mse_ < linear.dev_mse_
    out = model.predict_proba(X)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_unknown_candidate() -> None:
    with pytest.raises(InputError, match="unknown regressor"):
        DistributionRegressor(("svm",)).fit(
            np.ones((2, 2)) / 2, np.ones((2, 2)) / 2, np.ones((2, 2)) / 2, np.ones((2, 2)) / 2
        )


def test_unparsed_rows_are_calibrated_but_never_trained_on() -> None:
    items = synthetic_items(n_items=30)
    items.loc[items.index[:30], "status"] = "unparsed"
    items["pred_probs"] = [[0.25] * 4 if i < 30 else p for i, p in enumerate(items["pred_probs"])]
    out = calibrate_items(items, CalibrationConfig(name="regression", params={"candidates": FAST}))
    n_parsed_train = ((out.items["split"] == "train") & (out.items["status"] == "ok")).sum()
    assert out.metrics["train_size"] == n_parsed_train
    assert out.items["calibrated_probs"].notna().all()


def test_reference_rows_train_and_items_are_applied() -> None:
    ref = synthetic_items(n_items=40, seed=1, dataset="a")
    items = synthetic_items(n_items=20, seed=2, dataset="b")
    out = calibrate_items(
        items, CalibrationConfig(name="regression", params={"candidates": FAST}), reference=ref
    )
    assert (out.items["split"] == "applied").all()
    assert out.metrics["eval_size"] == len(items)
    assert out.metrics["calibrated_tv_mean"] < out.metrics["raw_tv_test_mean"]
    with pytest.raises(InputError, match="share every question"):
        calibrate_items(items, CalibrationConfig(name="temperature"), reference=items)
