"""Pure, vectorised metrics on padded distribution arrays: distances, calibration error,
bootstrap intervals, significance tests, the knowledge-to-simulation gap, extraction rate and
the benchmark's baselines."""

from distalign.metrics.arrays import pad, renormalise, unpad
from distalign.metrics.baselines import (
    expected_sampling_tv,
    majority_prediction,
    sampled_tv,
    uniform_prediction,
)
from distalign.metrics.bootstrap import Interval, bootstrap_mean, pooled_bootstrap
from distalign.metrics.calibration_error import expected_calibration_error, reliability_curve
from distalign.metrics.distances import (
    js_divergence,
    kl_divergence,
    total_variation,
    wasserstein_alignment,
)
from distalign.metrics.extraction import extraction_rate
from distalign.metrics.kss import knowledge_to_simulation_gap
from distalign.metrics.significance import bonferroni, compare_paired, paired_ttest

__all__ = [
    "Interval",
    "bonferroni",
    "bootstrap_mean",
    "compare_paired",
    "expected_calibration_error",
    "expected_sampling_tv",
    "extraction_rate",
    "js_divergence",
    "kl_divergence",
    "knowledge_to_simulation_gap",
    "majority_prediction",
    "pad",
    "paired_ttest",
    "pooled_bootstrap",
    "reliability_curve",
    "renormalise",
    "sampled_tv",
    "total_variation",
    "uniform_prediction",
    "unpad",
    "wasserstein_alignment",
]
