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


#: Okabe & Ito (2008) colours, safe for the common colour-vision deficiencies, one per calibrator family
FAMILY_COLORS: dict[str, str] = {
    "linear": "#0072B2",
    "lasso": "#E69F00",
    "ridge": "#009E73",
    "random_forest": "#CC79A7",
}
FAMILY_MARKERS: dict[str, str] = {"linear": "o", "lasso": "s", "ridge": "^", "random_forest": "D"}


def dataset_curves_figure(curves: pd.DataFrame, dataset: str) -> Figure:
    """The supervision paper's Figure 3 for one dataset: test MSE of the calibrated option probabilities
    against the number of training distributions (log scale); one panel per elicitation method x prompt
    type, one colour per model, the mean over the draws with a shaded band of one standard deviation, and
    the uncalibrated MSE dotted. ``curves`` is a ``learning_curves`` table (one family per cell)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    frame = pd.DataFrame(curves)
    frame = frame[frame["dataset"].astype(str) == dataset]
    panels = sorted({(str(m), str(s)) for m, s in zip(frame["method"], frame["steering"], strict=True)})
    models = sorted(frame["model"].astype(str).unique())
    cmap = [FAMILY_COLORS[k] for k in FAMILY_COLORS] + ["#D55E00", "#56B4E9", "#F0E442", "#000000"]
    color = {m: cmap[i % len(cmap)] for i, m in enumerate(models)}
    ncols = min(4, max(len(panels), 1))
    nrows = max(1, -(-len(panels) // ncols))
    fig = Figure(figsize=(3.0 * ncols + 0.4, 2.5 * nrows + 1.3), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False).ravel()
    for ax, (method, steering) in zip(axes, panels, strict=False):
        panel = frame[(frame["method"].astype(str) == method) & (frame["steering"].astype(str) == steering)]
        for model, cell in panel.groupby(panel["model"].astype(str), sort=True):
            cell = cell.sort_values("n")
            x, m = cell["n"].to_numpy(float), cell["mse_mean"].to_numpy(float)
            s = np.nan_to_num(cell["mse_std"].to_numpy(float))
            ax.plot(x, m, color=color[model], marker="o", ms=2.5, lw=1.1)
            ax.fill_between(x, m - s, m + s, color=color[model], alpha=0.18, lw=0)
            ax.axhline(float(cell["raw_mse"].iloc[0]), color=color[model], ls=":", lw=0.9)
        ax.set_xscale("log")
        ax.set_title(f"{method} / {steering}", fontsize=9)
        ax.grid(color="0.92")
        ax.tick_params(labelsize=8)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[: len(panels)][-ncols:]:
        ax.set_xlabel("training distributions", fontsize=8)
    for ax in axes[::ncols]:
        ax.set_ylabel("test MSE", fontsize=8)
    families = sorted(frame["family"].astype(str).unique()) if "family" in frame else []
    draws = int(frame["repeats"].max()) if "repeats" in frame and len(frame) else 0
    handles = [Patch(facecolor=color[m], label=m) for m in models] + [
        Patch(facecolor="0.5", alpha=0.3, label=f"±1 s.d. over {draws} draws"),
        Line2D([], [], color="0.3", ls=":", label="uncalibrated"),
    ]
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(len(handles), 5), fontsize=8, frameon=False
    )
    fam = f" ({', '.join(families)} regression)" if families else ""
    fig.suptitle(f"{dataset}: test MSE against training distributions{fam}", fontsize=10)
    return fig
