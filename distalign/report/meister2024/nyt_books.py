"""Figure 3: the NYT books whose Republican and Democrat annotators differ most in how likely they say
they are to read them (Likert 1-4), from the release's ``results/human_annotations/data_nums.json``, the
file ``analysis/figures.ipynb`` draws the figure from: the 4 books with the largest mean(Republican) -
mean(Democrat) and the 4 with the smallest, each group's mean with a 95% percentile bootstrap interval."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from distalign.errors import InputError
from distalign.report import style

DATA_NUMS = "results/human_annotations/data_nums.json"
GROUPS: dict[str, str] = {"Republican": "repub_data_nums", "Democrat": "dem_data_nums"}
COLORS: dict[str, str] = {"Republican": "#C0392B", "Democrat": "#2E5EAA"}
FIGURE3_COLUMNS: tuple[str, ...] = (
    "rank",
    "book",
    "group",
    "mean",
    "ci_low",
    "ci_high",
    "n",
    "rep_minus_dem",
)


def likert(root: Path) -> tuple[list[str], dict[str, list[np.ndarray]]]:
    """Book titles and, per party, each book's Likert answers (1-4)."""
    path = root / DATA_NUMS
    if not path.is_file():
        raise InputError("the release's NYT annotations (data_nums.json) are missing", file=path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    titles = [str(t) for t in raw["booktitles"]]
    answers = {g: [np.asarray(a, dtype=float) for a in raw[key]] for g, key in GROUPS.items()}
    return titles, answers


def figure3_frame(root: Path, k: int = 4, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """``FIGURE3_COLUMNS``: ``rank`` 1..k = largest Republican - Democrat difference first, then the k
    smallest (most negative last), as the paper orders them."""
    titles, answers = likert(root)
    means = {g: np.array([a.mean() if len(a) else np.nan for a in answers[g]]) for g in GROUPS}
    diff = means["Republican"] - means["Democrat"]
    order = np.argsort(diff, kind="stable")
    picks = [*order[::-1][:k], *order[:k][::-1]]
    rng = np.random.default_rng(seed)
    rows = []
    for rank, i in enumerate(picks, start=1):
        for group in GROUPS:
            a = answers[group][i]
            boot = rng.choice(a, size=(n_resamples, len(a)), replace=True).mean(axis=1)
            low, high = np.percentile(boot, [2.5, 97.5])
            rows.append((rank, titles[i], group, a.mean(), low, high, len(a), diff[i]))
    return pd.DataFrame(rows, columns=list(FIGURE3_COLUMNS))


def _shown(title: str) -> str:
    """A book title as the paper prints it: the release's titles capitalise the letter after an apostrophe
    ("Washington'S Crossing", "Don'T"); a name such as "O'Farrell" is left as it is."""
    return re.sub(r"(?<=[a-z])'([A-Z])\b", lambda m: "'" + m.group(1).lower(), title)


def figure3(frame: pd.DataFrame, palette: object = None) -> Figure:
    """Grouped bars per book (Republican, Democrat), bars: 95% bootstrap intervals."""
    with matplotlib.rc_context(style.RC):
        books = list(dict.fromkeys(frame.sort_values("rank")["book"]))
        fig = Figure(figsize=(9.0, 4.6), layout="constrained")
        ax = fig.subplots()
        x = np.arange(len(books))
        width = 0.38
        for j, group in enumerate(GROUPS):
            sub = frame[frame["group"] == group].set_index("book").reindex(books)
            err = np.vstack([sub["mean"] - sub["ci_low"], sub["ci_high"] - sub["mean"]])
            ax.bar(
                x + (j - 0.5) * width, sub["mean"], width, yerr=err, capsize=3,
                color=COLORS[group], edgecolor="black", linewidth=0.5, label=group,
            )  # fmt: skip
        ax.set_xticks(x)
        ax.set_xticklabels([textwrap.fill(_shown(b), 16) for b in books], fontsize=7)
        ax.set_ylim(1, 4)
        ax.set_ylabel("mean answer (1 very unlikely - 4 very likely)")
        k = len(books) // 2
        ax.axvline(k - 0.5, color="0.6", ls=":", lw=1)
        ax.text(k / 2 - 0.5, 3.93, "Republicans more likely to read", ha="center", va="top", fontsize=8)
        ax.text(k + k / 2 - 0.5, 3.93, "Democrats more likely to read", ha="center", va="top", fontsize=8)
        n = frame["n"]
        ax.set_title(
            f"NYT books with the largest Republican - Democrat differences (annotators per book and group: "
            f"{n.min()}-{n.max()}; bars: 95% bootstrap intervals)",
            fontsize=8.5,
        )
        fig.legend(loc="outside lower center", ncol=2, frameon=False)
        return fig


__all__ = ["FIGURE3_COLUMNS", "figure3", "figure3_frame", "likert"]
