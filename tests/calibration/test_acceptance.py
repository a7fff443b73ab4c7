"""The issue's acceptance checks on the released human distributions: known distortions are undone."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from distalign.calibration.stage import calibrate_items
from distalign.records.config import CalibrationConfig
from tests.calibration.conftest import power, synthetic_items

Distortion = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def mixed(h: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    p = 0.4 * h + 0.6 / h.size + rng.normal(0, 0.01, h.size)
    p = np.clip(p, 1e-6, None)
    return p / p.sum()


DISTORTIONS: dict[str, Distortion] = {
    "sharpened": lambda h, r: power(h, 0.4, r, 0.1),
    "flattened": lambda h, r: power(h, 2.5, r, 0.1),
    "uniform_mix": mixed,
}


def distorted(humans: pd.DataFrame, distort: Distortion, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return humans.assign(pred_probs=[distort(np.asarray(h), rng).tolist() for h in humans["human_probs"]])


@pytest.mark.parametrize("name", list(DISTORTIONS))
def test_calibration_undoes_known_distortions(released_humans: pd.DataFrame, name: str) -> None:
    items = distorted(released_humans, DISTORTIONS[name])
    candidates = (
        ["linear", "lasso", "ridge", "random_forest"] if name == "uniform_mix" else ["linear", "ridge"]
    )
    for cfg in (
        CalibrationConfig(name="temperature"),
        CalibrationConfig(name="regression", params={"candidates": candidates}),
    ):
        m = calibrate_items(items, cfg).metrics
        assert m["calibrated_tv_mean"] < m["raw_tv_test_mean"], (name, cfg.name, m)


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_temperature_recovers_the_generating_temperature(
    released_humans: pd.DataFrame, temperature: float
) -> None:
    items = distorted(released_humans, lambda h, r: power(h, temperature, r, 0.1))
    outcome = calibrate_items(items, CalibrationConfig(name="temperature"))
    taus = {k: v for k, v in outcome.metrics.items() if k.startswith("temperature.")}
    assert len(taus) == 3  # one per dataset x steering
    for tau in taus.values():
        assert tau == pytest.approx(temperature, rel=0.1)


def test_per_fit_facts_carry_the_fit_name_only_when_there_are_several_fits() -> None:
    """A sweep cell is one fit: its facts go under plain names, not twice."""
    cfg = CalibrationConfig(name="temperature")
    one = calibrate_items(synthetic_items(), cfg).metrics
    assert one["temperature"] == pytest.approx(2.0, rel=0.1)
    assert not [k for k in one if k.startswith(("temperature.", "dev_score.", "temperature_fold_min."))]
    both = pd.concat([synthetic_items(), synthetic_items(dataset="other", seed=1)], ignore_index=True)
    two = calibrate_items(both, cfg).metrics
    assert len([k for k in two if k.startswith("temperature.")]) == 2
    assert "temperature" not in two
