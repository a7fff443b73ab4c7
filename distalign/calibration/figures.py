"""Figures for calibration runs, built on ``matplotlib.figure.Figure`` directly (no pyplot state), so
cells in worker threads can draw without a display or a shared global figure registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
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


def learning_curve_figure(curve: pd.DataFrame) -> Figure:
    """MSE and alignment against the number of training distributions (mean +- std over repeats)."""
    fig = Figure(figsize=(8, 3.4))
    axes = fig.subplots(1, 2)
    for ax, metric, label in zip(
        axes, ("mse", "alignment"), ("option MSE", "alignment 1 - WD/(N-1)"), strict=True
    ):
        x = curve["n"].to_numpy(dtype=float)
        m, s = curve[f"{metric}_mean"].to_numpy(dtype=float), curve[f"{metric}_std"].to_numpy(dtype=float)
        ax.plot(x, m, marker="o", ms=3)
        ax.fill_between(x, m - s, m + s, alpha=0.25)
        if metric == "alignment" and "raw_alignment" in curve:
            ax.axhline(
                float(curve["raw_alignment"].iloc[0]), color="0.5", ls="--", lw=1, label="uncalibrated"
            )
            ax.legend(fontsize=8)
        ax.set(xscale="log", xlabel="training distributions", ylabel=label)
    fig.tight_layout()
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
