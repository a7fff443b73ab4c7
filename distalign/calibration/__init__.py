"""Calibration of predicted distributions: temperature scaling of log-probs (Meister et al. 2024) and
supervised regression calibration (Kambhatla et al. 2025), with their learning curves, out-of-domain and
per-group analyses. The sweep calls :func:`calibrate_items` once per cell and :func:`sweep_tables` once
at the end; few-shot planning draws its examples with :func:`few_shot_sets`."""

from distalign.calibration.compare import method_comparison, triple_comparison
from distalign.calibration.curves import SIZES, learning_curve
from distalign.calibration.extraction import extraction_table
from distalign.calibration.groups import gains_and_losses, group_effects
from distalign.calibration.ood import ood_table
from distalign.calibration.regression import DistributionRegressor, split_questions
from distalign.calibration.report import ReportOptions, leaderboard_items, sweep_tables
from distalign.calibration.sampling import (
    few_shot_examples,
    few_shot_sets,
    item_keys,
    training_pool,
    training_sets,
)
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
    "ReportOptions",
    "TemperatureScaler",
    "apply_calibrator",
    "calibrate_items",
    "cross_fit",
    "extraction_table",
    "few_shot_examples",
    "few_shot_sets",
    "gains_and_losses",
    "group_effects",
    "item_keys",
    "kambhatla_table",
    "leaderboard_items",
    "learning_curve",
    "method_comparison",
    "triple_comparison",
    "ood_table",
    "split_questions",
    "sweep_tables",
    "training_pool",
    "training_sets",
]
