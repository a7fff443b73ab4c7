"""Figures for calibration runs, built on ``matplotlib.figure.Figure`` directly (no pyplot state), so
cells in worker threads can draw without a display or a shared global figure registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

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


def learning_curve_figure(curve: pd.DataFrame, title: str | None = None) -> Figure:
    """Test MSE and alignment against the number of training distributions, one line per calibrator
    family (mean over the random draws, band +- 1 standard deviation), the uncalibrated test score dashed."""
    fig = Figure(figsize=(8.4, 3.6))
    axes = fig.subplots(1, 2)
    families = list(dict.fromkeys(curve["family"])) if "family" in curve else [None]
    for ax, metric, label in zip(
        axes, ("mse", "alignment"), ("test MSE (per option)", "test alignment 1 - WD/(N-1)"), strict=True
    ):
        for family in families:
            c = curve if family is None else curve[curve["family"] == family]
            x = c["n"].to_numpy(dtype=float)
            m, s = c[f"{metric}_mean"].to_numpy(dtype=float), c[f"{metric}_std"].to_numpy(dtype=float)
            color = FAMILY_COLORS.get(str(family), "#0072B2")
            chosen = family is not None and bool(c["chosen"].iloc[0]) if "chosen" in c else False
            name = f"{family} (chosen on dev)" if chosen else str(family or "calibrated")
            ax.plot(x, m, marker=FAMILY_MARKERS.get(str(family), "o"), ms=3.5, color=color, label=name)
            ax.fill_between(x, m - np.nan_to_num(s), m + np.nan_to_num(s), color=color, alpha=0.18, lw=0)
        if f"raw_{metric}" in curve:
            ax.axhline(
                float(curve[f"raw_{metric}"].iloc[0]), color="0.35", ls="--", lw=1, label="uncalibrated"
            )
        ax.set(xscale="log", xlabel="training distributions n (log scale)", ylabel=label)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.grid(True, which="major", color="0.9", lw=0.6)
    handles, labels = axes[0].get_legend_handles_labels()
    split = str(curve["split"].iloc[0]) if "split" in curve and len(curve) else "test"
    reps = int(curve["repeats"].iloc[0]) if "repeats" in curve and len(curve) else 0
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8, frameon=False)
    heading = f"{title}: " if title else ""
    fig.suptitle(f"{heading}scored on {split}; mean of {reps} draws per n, band +- 1 s.d.", fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    return fig


def group_effects_figure(effects: pd.DataFrame) -> Figure:
    """Alignment change per group (after - before), significant changes filled."""
    df = effects.sort_values("delta")
    fig = Figure(figsize=(7.5, max(2.5, 0.28 * len(df) + 1.2)))
    ax = fig.subplots()
    colors = ["#4C72B0" if d >= 0 else "#C44E52" for d in df["delta"]]
    bars = ax.barh(df["setting"].astype(str), df["delta"], color=colors)
    for bar, sig in zip(bars, df["significant"], strict=True):
        if not sig:
            bar.set_alpha(0.35)
    ax.axvline(0, color="k", lw=0.8)
    ax.set(xlabel="alignment change after calibration\n(solid bars: significant after Bonferroni)")
    fig.tight_layout()
    return fig
