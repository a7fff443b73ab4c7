"""Figures for calibration runs, built on ``matplotlib.figure.Figure`` directly (no pyplot state), so
cells in worker threads can draw without a display or a shared global figure registry."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from distalign.metrics import expected_calibration_error, reliability_curve


def reliability_diagram(
    human: np.ndarray, mask: np.ndarray, curves: dict[str, np.ndarray], n_bins: int = 10
) -> Figure:
    """Mean human probability per bin of predicted probability, one line per ``curves`` entry."""
    fig = Figure(figsize=(4.6, 4.2))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="perfect")
    for name, pred in curves.items():
        p = np.where(mask, np.nan_to_num(pred), 0.0)
        _, mean_pred, mean_true, _ = reliability_curve(p, human, mask, n_bins)
        ece = expected_calibration_error(p, human, mask, n_bins)
        ax.plot(mean_pred, mean_true, marker="o", ms=3, label=f"{name} (ECE {ece:.3f})")
    ax.set(xlabel="predicted probability", ylabel="human probability", xlim=(0, 1), ylim=(0, 1))
    ax.set_title("Reliability (held-out rows)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


#: Okabe & Ito (2008) colours, safe for the common colour-vision deficiencies, one per calibrator family
FAMILY_COLORS: dict[str, str] = {
    "linear": "#0072B2",
    "lasso": "#E69F00",
    "ridge": "#009E73",
    "random_forest": "#CC79A7",
}
FAMILY_MARKERS: dict[str, str] = {"linear": "o", "lasso": "s", "ridge": "^", "random_forest": "D"}
