"""Figures logged with runs. Headless (Agg) so sweeps run on servers without a display."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def tv_histogram(tv: np.ndarray, path: Path) -> None:
    """One per cell, so it is drawn cheaply: a ``Figure`` without pyplot's registry, a fixed layout (a
    tight layout measures every label first) and bar heights computed by numpy."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.2))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.16, top=0.95)
    ax = fig.add_subplot()
    tv = tv[np.isfinite(tv)]
    counts, edges = np.histogram(tv, bins=20, range=(0, 1))
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#4C72B0")
    ax.set_xlim(0, 1)
    if len(tv):
        ax.axvline(float(np.mean(tv)), color="k", ls="--", label=f"mean {np.mean(tv):.3f}")
        ax.legend(loc="upper right")
    ax.set_xlabel("total variation (item x group)")
    ax.set_ylabel("count")
    fig.savefig(path, dpi=100)


def leaderboard_figure(df: pd.DataFrame, path: Path) -> None:
    """Mean TV with 95% intervals per model x method on the aggregate row of each (the Table 1a view)."""
    rows = df[df["kind"] == "model"] if "kind" in df else df
    agg = rows[rows["dataset"].isin(["three", "all"])] if "dataset" in rows else rows
    if "steering" in agg and (agg["steering"] == "all").any():
        agg = agg[agg["steering"] == "all"]
    if agg.empty:
        agg = rows
    labels = [f"{m} / {me}" for m, me in zip(agg.get("model", []), agg.get("method", []), strict=False)]
    mean = agg["mean"].to_numpy(dtype=float)
    lo = mean - agg["ci_low"].to_numpy(dtype=float)
    hi = agg["ci_high"].to_numpy(dtype=float) - mean
    fig, ax = plt.subplots(figsize=(6, 0.4 * max(len(labels), 3) + 1))
    ax.barh(labels, mean, xerr=[np.nan_to_num(lo), np.nan_to_num(hi)], color="#55A868")
    base = df[df["kind"] == "baseline"] if "kind" in df else pd.DataFrame()
    for _, b in base[base["dataset"].isin(["three", "all"])].iterrows() if len(base) else []:
        ax.axvline(float(b["mean"]), ls=":", color="gray")
        ax.text(float(b["mean"]), len(labels) - 0.5, str(b["model"]), rotation=90, fontsize=7, va="top")
    ax.set_xlabel("mean total variation (lower is better)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
