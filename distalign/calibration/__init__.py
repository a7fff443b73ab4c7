"""Calibration of predicted distributions: temperature scaling of log-probs (Meister et al. 2024) and
supervised regression calibration (Kambhatla et al. 2025), with their learning curves, out-of-domain and
per-group analyses. The sweep calls :func:`calibrate_items` once per cell."""

from distalign.calibration.curves import SIZES, learning_curve
from distalign.calibration.groups import gains_and_losses, group_effects
from distalign.calibration.ood import out_of_domain
from distalign.calibration.regression import DistributionRegressor, split_questions
from distalign.calibration.stage import (
    CalibrationOutcome,
    FitRecord,
    apply_calibrator,
    calibrate_items,
    kambhatla_table,
)
from distalign.calibration.temperature import TemperatureScaler, cross_fit

__all__ = [
    "SIZES",
    "CalibrationOutcome",
    "DistributionRegressor",
    "FitRecord",
    "TemperatureScaler",
    "apply_calibrator",
    "calibrate_items",
    "cross_fit",
    "gains_and_losses",
    "group_effects",
    "kambhatla_table",
    "learning_curve",
    "out_of_domain",
    "split_questions",
]
