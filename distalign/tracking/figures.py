"""The figure logged with each cell run: the histogram of its item x group TV distances.

Drawn once per cell by the tracker's writer thread, so its layout is fixed (a constrained or tight layout
measures every label first and doubles the drawing time, about 0.15 s per figure)."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from distalign.report import style

BINS = 20


def tv_histogram(tv: np.ndarray) -> Figure:
    """A cell's TV distances in 20 bins over [0, 1] with their mean as a dashed line (non-finite values
    are left out); a cell without scored rows gets a figure that says so."""
    tv = np.asarray(tv, dtype=float)
    tv = tv[np.isfinite(tv)]
    with matplotlib.rc_context(style.RC):
        fig = Figure(figsize=(5.0, 3.2))
        fig.subplots_adjust(left=0.14, right=0.97, bottom=0.15, top=0.96)
        ax = fig.subplots()
        ax.hist(tv, bins=BINS, range=(0, 1), color=style.PALETTE[0])
        ax.set_xlim(0, 1)
        ax.set_ylim(0, max(ax.get_ylim()[1], 1))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("total variation (item x group)")
        ax.set_ylabel("count")
        if len(tv):
            mean = float(np.mean(tv))
            ax.axvline(mean, color="black", linestyle="--", label=f"mean {mean:.3f} (n={len(tv):,})")
            ax.legend(loc="upper right")
        else:
            ax.text(0.5, 0.5, "no scored rows", ha="center", va="center", transform=ax.transAxes)
    return fig
