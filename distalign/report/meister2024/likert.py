"""Figure 5: the marginal Likert distribution over the 235 NYT books ("how likely is a Democrat /
Republican to read this book", options 1-4), as ``analysis/figures.ipynb`` draws it: per party, the
models' verbalized distributions (``express_distribution``) averaged over the books and then over the five
models (interval: 95% bootstrap over the models), beside the human annotators' persona and few-shot
estimates and the annotators' own answers (ground truth), which the release keeps precomputed in
``results/human_annotations/all_q_ID_to_TV.json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from distalign.errors import InputError
from distalign.report import style
from distalign.survey.model import Survey

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


#: Figure 13: the annotators' marginals per group, recomputed from their estimates (``humans``)
GROUPS: tuple[str, ...] = ("Democrat", "Republican", "Male", "Female")
FIGURE13_COLUMNS: tuple[str, ...] = ("group", "steering", "option", "share", "pm", "n", "release_share")
#: steering -> (colour, label, the key of all_q_ID_to_TV.json), in drawing order
HUMAN_LINES: dict[str, tuple[str, str, str]] = {
    "ground_truth": ("#1F77B4", "the group's own answers (ground truth)", "gt"),
    "none": ("#7F7F7F", "annotators' estimate, no steering", "nosteer"),
    "persona": ("#9467BD", "annotators' estimate, persona", "persona"),
    "few_shot": ("#E377C2", "annotators' estimate, few-shot", "fewshot"),
}


def figure13_frame(
    root: Path, humans: pd.DataFrame, survey: Survey, n_resamples: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """``FIGURE13_COLUMNS``: per NYT group, the share of each Likert option averaged over the books, of the
    annotators' estimates (``humans``: ``human_predictions`` rows, renormalised per book; no steering asks
    once for every group) and of the group's own answers (``survey``: NYT); ``pm``: half the 95%
    bootstrap interval over the books; ``release_share``: the release's precomputed value
    (``all_q_ID_to_TV.json``)."""
    path = root / HUMAN_MARGINALS
    if not path.is_file():
        raise InputError("the release's NYT marginals (all_q_ID_to_TV.json) are missing", file=path)
    stored = json.loads(path.read_text(encoding="utf-8"))["humans"]
    nyt = humans[humans["dataset"] == "nyt_books"]
    rng = np.random.default_rng(seed)
    rows = []
    for group in GROUPS:
        per_line: dict[str, np.ndarray] = {
            "ground_truth": np.vstack(
                [
                    _in_order(d.probs, survey.items[d.item_id].options, survey.items[d.item_id].options)
                    for d in survey.distributions
                    if d.group == group
                ]
            )
        }
        for steering in ("none", "persona", "few_shot"):
            part = nyt[(nyt["steering"] == steering) & ((nyt["group"] == group) | (steering == "none"))]
            per_line[steering] = np.vstack(
                [
                    _in_order(p, o, survey.items[i].options)
                    for p, o, i in zip(part["probs"], part["options"], part["item_id"], strict=True)
                ]
            )
        for steering, values in per_line.items():
            mean, pm = values.mean(axis=0), _bootstrap_pm(values, rng, n_resamples)
            theirs = stored.get(group, {}).get(f"{HUMAN_LINES[steering][2]}_avg", [np.nan] * len(mean))
            rows += [
                (group, steering, i + 1, float(m), float(e), len(values), float(t))
                for i, (m, e, t) in enumerate(zip(mean, pm, theirs, strict=True))
            ]
    return pd.DataFrame(rows, columns=list(FIGURE13_COLUMNS))


def _in_order(probs: Sequence[float], shown: Sequence[str], options: Sequence[str]) -> np.ndarray:
    """``probs`` (aligned with ``shown``) renormalised and put in the survey's option order."""
    p = np.asarray(probs, dtype=float)
    by_label = dict(zip(shown, p / p.sum(), strict=True))
    return np.array([by_label[o] for o in options], dtype=float)


def figure13(frame: pd.DataFrame) -> Figure:
    """One panel per NYT group: the annotators' estimates by steering mode against the group's answers."""
    with matplotlib.rc_context(style.RC):
        groups = [g for g in GROUPS if (frame["group"] == g).any()]
        fig = Figure(figsize=(10.0, 3.9), layout="constrained")
        axes = fig.subplots(1, len(groups), sharey=True, squeeze=False)[0]
        drawn: list[str] = []
        for ax, group in zip(axes, groups, strict=True):
            for steering, (color, _, _) in HUMAN_LINES.items():
                sub = frame[(frame["group"] == group) & (frame["steering"] == steering)].sort_values("option")
                if sub.empty:
                    continue
                ax.errorbar(sub["option"], sub["share"], yerr=sub["pm"], color=color, marker="o", ms=4,
                            lw=1.5, capsize=2)  # fmt: skip
                if steering not in drawn:
                    drawn.append(steering)
            n = int(frame[(frame["group"] == group) & (frame["steering"] == "ground_truth")]["n"].max())
            ax.set_xticks([1, 2, 3, 4])
            ax.set_title(f"{group} ({n} books)")
            ax.set_xlabel("answer: 1 = very unlikely ... 4 = very likely", fontsize=8)
        axes[0].set_ylabel("share of answers (mean over books)")
        handles = [
            Line2D([], [], color=HUMAN_LINES[k][0], marker="o", ms=4, label=HUMAN_LINES[k][1]) for k in drawn
        ]
        fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False, fontsize=8)
        gap = float((frame["share"] - frame["release_share"]).abs().max())
        same = (
            "equal to the release's precomputed marginals (all_q_ID_to_TV.json)"
            if gap < 5e-4
            else f"the release's precomputed marginals differ by up to {gap:.3f}"
        )
        fig.suptitle(
            "NYT: the human annotators' estimates of how likely each group reads a book, averaged over the "
            f"books (bars: 95% bootstrap intervals)\nrecomputed from the survey exports (up to 4 annotators "
            f"per book); {same}",
            fontsize=9.5,
        )
        return fig


__all__ = [
    "FIGURE5_COLUMNS",
    "FIGURE13_COLUMNS",
    "figure13",
    "figure13_frame",
    "figure5",
    "figure5_frame",
    "model_marginal",
]
