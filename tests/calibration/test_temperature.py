from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from distalign.calibration.frame import log_probs, padded, question_keys
from distalign.calibration.stage import calibrate_items
from distalign.calibration.temperature import TemperatureScaler, cross_fit, scaled_softmax
from distalign.errors import InputError
from distalign.records.config import CalibrationConfig
from tests.calibration.conftest import power, synthetic_items


def test_scaled_softmax_ignores_missing_options() -> None:
    logp = np.array([[np.log(0.5), np.log(0.5), np.nan], [np.nan, np.nan, np.nan]])
    out = scaled_softmax(logp, 0.5)
    np.testing.assert_allclose(out[0], [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(out[1], [0.0, 0.0, 0.0])
    sharp = scaled_softmax(np.log([[0.8, 0.2]]), 0.5)  # squares, then renormalises
    np.testing.assert_allclose(sharp[0], [0.64 / 0.68, 0.04 / 0.68])


@pytest.mark.parametrize("temperature", [0.4, 1.0, 3.0])
def test_scaler_recovers_exact_temperature(temperature: float) -> None:
    rng = np.random.default_rng(1)
    human = rng.dirichlet(np.ones(5), size=200)
    logp = temperature * np.log(human)
    scaler = TemperatureScaler().fit(logp, human)
    assert scaler.tau_ == pytest.approx(temperature, rel=1e-3)
    np.testing.assert_allclose(scaler.predict_proba(logp), human, atol=1e-3)
    assert clone(scaler).get_params() == scaler.get_params()


def test_logprobs_column_wins_over_pred_probs() -> None:
    items = synthetic_items(n_items=3, n_options=3).head(2).copy()
    items["logprobs"] = [[-1.0, None, -2.0], None]
    data = padded(items)
    lp = log_probs(items, data)
    np.testing.assert_allclose(lp[0], [-1.0, np.nan, -2.0])
    np.testing.assert_allclose(lp[1], np.log(items["pred_probs"].iloc[1]))


def test_held_out_temperature_never_sees_test_questions() -> None:
    """Poisoning the human rows of one fold's questions leaves that fold's tau (and predictions) unchanged."""
    items = synthetic_items(n_items=40, distort=lambda h, r: power(h, 2.0, r, 0.2))
    data = padded(items)
    logp, qs = log_probs(items, data), question_keys(items)
    out, folds, taus = cross_fit(logp, data.human, qs, data.trainable, n_splits=4)
    for k in range(4):  # every question sits in exactly one fold
        assert not set(qs[folds == k]) & set(qs[folds != k])
    poisoned = data.human.copy()
    target = folds == 0
    poisoned[target] = np.eye(4)[np.argmin(data.human[target], axis=1)]
    out2, folds2, taus2 = cross_fit(logp, poisoned, qs, data.trainable, n_splits=4)
    np.testing.assert_array_equal(folds2, folds)
    assert taus2[0] == taus[0]
    np.testing.assert_array_equal(out2[target], out[target])
    assert all(t2 != t for t2, t in zip(taus2[1:], taus[1:], strict=True))  # the poison is seen elsewhere


def test_in_sample_and_held_out_through_the_stage() -> None:
    items = synthetic_items(n_items=50, distort=lambda h, r: power(h, 2.0, r, 0.05))
    for fit in ("in_sample", "held_out"):
        outcome = calibrate_items(items, CalibrationConfig(name="temperature", fit=fit))
        m = outcome.metrics
        assert m["temperature"] == pytest.approx(2.0, rel=0.1)
        assert m["calibrated_tv_mean"] < 0.5 * m["raw_tv_test_mean"]
        assert m["ece_after"] < m["ece_before"]
        assert m["eval_size"] == len(items)
        split = outcome.items["split"]
        assert (
            (split == "in_sample").all()
            if fit == "in_sample"
            else split.str.startswith("heldout-fold-").all()
        )
        assert set(outcome.figures) == {"reliability"}
        for p in outcome.items["calibrated_probs"]:
            assert sum(p) == pytest.approx(1.0)


def test_none_returns_items_unchanged() -> None:
    items = synthetic_items(n_items=3)
    outcome = calibrate_items(items, CalibrationConfig(name="none"))
    pd.testing.assert_frame_equal(outcome.items, items)
    assert outcome.metrics == {} and outcome.models == {}


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (CalibrationConfig(name="magic"), "unknown calibration 'magic'"),
        (CalibrationConfig(name="temperature", fit="sometimes"), "unknown fit"),
        (CalibrationConfig(name="regression", fit="in_sample"), "always fitted on a train split"),
        (CalibrationConfig(name="temperature", params={"bins": 3}), "unknown parameter"),
    ],
)
def test_bad_config_is_an_input_error(cfg: CalibrationConfig, message: str) -> None:
    with pytest.raises(InputError, match=message):
        calibrate_items(synthetic_items(n_items=3), cfg)


def test_missing_column_is_an_input_error() -> None:
    with pytest.raises(InputError, match="human_probs"):
        calibrate_items(
            synthetic_items(n_items=3).drop(columns="human_probs"), CalibrationConfig(name="temperature")
        )
