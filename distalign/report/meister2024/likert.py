"""Figure 5: the marginal Likert distribution over the 235 NYT books ("how likely is a Democrat /
Republican to read this book", options 1-4), as ``analysis/figures.ipynb`` draws it: per party, the
models' verbalized distributions (``express_distribution``) averaged over the books and then over the five
models (interval: 95% bootstrap over the models), beside the human annotators' persona and few-shot
estimates and the annotators' own answers (ground truth), which the release keeps precomputed in
``results/human_annotations/all_q_ID_to_TV.json``."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from distalign.errors import InputError
from distalign.report import style

HUMAN_MARGINALS = "results/human_annotations/all_q_ID_to_TV.json"
MODELS: tuple[str, ...] = ("gpt-3.5-turbo-0125", "gpt-4", "anthropic_haiku", "anthropic_opus", "llama3-70b")
PARTIES: tuple[str, ...] = ("Democrat", "Republican")
STEERING_TASKS: dict[str, str] = {"persona": "task1", "few_shot": "task3_easy_hard"}
FIGURE5_COLUMNS: tuple[str, ...] = ("party", "who", "steering", "option", "share", "pm", "n")
#: (who, steering) -> colour and label, in drawing order
LINES: dict[tuple[str, str], tuple[str, str]] = {
    ("humans", "ground_truth"): ("#1F77B4", "annotators' own answers (ground truth)"),
    ("humans", "persona"): ("#9467BD", "annotators' estimate, persona"),
    ("humans", "few_shot"): ("#E377C2", "annotators' estimate, few-shot"),
    ("models", "persona"): ("#FF7F0E", "models' verbalized, persona (mean of 5)"),
    ("models", "few_shot"): ("#2CA02C", "models' verbalized, few-shot (mean of 5)"),
}


def model_marginal(root: Path, model: str, steering: str, party: str) -> np.ndarray:
    """One model's verbalized distribution averaged over the books (options in the file's order A-D)."""
    path = (
        root / "results" / "nytimes" / "express_distribution" / model / STEERING_TASKS[steering]
        / "POLPARTY" / f"{party}.json"
    )  # fmt: skip
    if not path.is_file():
        raise InputError("a verbalized NYT file of Figure 5 is missing from the release", file=path)
    data = json.loads(path.read_text(encoding="utf-8"))
    return np.array([list(v["avg_actual_results"].values()) for v in data.values()], dtype=float).mean(axis=0)


def _bootstrap_pm(values: np.ndarray, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """Half the 95% percentile bootstrap interval of the mean over rows, per column."""
    picks = rng.integers(0, len(values), size=(n_resamples, len(values)))
    means = values[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5], axis=0)
    return (high - low) / 2


def figure5_frame(root: Path, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """``FIGURE5_COLUMNS``: one row per party x line x Likert option."""
    path = root / HUMAN_MARGINALS
    if not path.is_file():
        raise InputError("the release's NYT marginals (all_q_ID_to_TV.json) are missing", file=path)
    humans = json.loads(path.read_text(encoding="utf-8"))["humans"]
    rng = np.random.default_rng(seed)
    rows = []
    for party in PARTIES:
        for steering, key in (("ground_truth", "gt"), ("persona", "persona"), ("few_shot", "fewshot")):
            shares, pms = humans[party][f"{key}_avg"], humans[party][f"{key}_bs"]
            pairs = enumerate(zip(shares, pms, strict=True))
            rows += [(party, "humans", steering, i + 1, s, p, 0) for i, (s, p) in pairs]
        for steering in STEERING_TASKS:
            per_model = np.vstack([model_marginal(root, m, steering, party) for m in MODELS])
            mean, pm = per_model.mean(axis=0), _bootstrap_pm(per_model, rng, n_resamples)
            rows += [
                (party, "models", steering, i + 1, s, p, len(MODELS))
                for i, (s, p) in enumerate(zip(mean, pm, strict=True))
            ]
    return pd.DataFrame(rows, columns=list(FIGURE5_COLUMNS))


def figure5(frame: pd.DataFrame) -> Figure:
    """One panel per party: share of each Likert option, one line per (who, steering)."""
    with matplotlib.rc_context(style.RC):
        parties = [p for p in PARTIES if (frame["party"] == p).any()]
        fig = Figure(figsize=(8.0, 3.9), layout="constrained")
        axes = fig.subplots(1, len(parties), sharey=True, squeeze=False)[0]
        drawn = []
        for ax, party in zip(axes, parties, strict=True):
            for (who, steering), (color, _) in LINES.items():
                sub = frame[
                    (frame["party"] == party) & (frame["who"] == who) & (frame["steering"] == steering)
                ]
                if sub.empty:
                    continue
                sub = sub.sort_values("option")
                ax.errorbar(sub["option"], sub["share"], yerr=sub["pm"], color=color, marker="o", ms=4,
                            lw=1.5, capsize=2)  # fmt: skip
                if (who, steering) not in drawn:
                    drawn.append((who, steering))
            ax.set_xticks([1, 2, 3, 4])
            ax.set(title=f"{party}s (235 books)", xlabel="answer (1 very unlikely - 4 very likely)")
        axes[0].set_ylabel("share of answers (mean over books)")
        handles = [Line2D([], [], color=LINES[k][0], marker="o", ms=4, label=LINES[k][1]) for k in drawn]
        fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False, fontsize=8)
        models = frame[frame["who"] == "models"].groupby(["party", "steering"])["share"].sum()
        note = (
            f"\nmodels' numbers averaged as stated, as the release does (their lines sum to "
            f"{models.min():.2f}-{models.max():.2f})"
            if len(models)
            else ""
        )
        fig.suptitle(
            f"NYT: how likely each party reads a book (bars: 95% bootstrap intervals){note}", fontsize=9.5
        )
        return fig


__all__ = ["FIGURE5_COLUMNS", "figure5", "figure5_frame", "model_marginal"]
