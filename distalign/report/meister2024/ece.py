"""Table 3's ECE as the paper computed it, read from the release's own log-p files.

The release holds no ECE computation; its closest is the reliability curve of
``analysis/temp_scale_figs.ipynb``: persona + few-shot steering (``task1``, ``task3_easy_hard``), every
(question, group) file of ``results/<dataset>/model_logprobs`` (before) and ``rescaled_model_logprobs``
(after temperature scaling), each option's ``avg_actual_results`` against ``expected_results`` (the
human share), pooled over the three datasets, 10 equal-width bins spanning the *observed* range of the
model's probabilities (``np.digitize``, so the largest value sits in an eleventh bin of its own). ECE is
then the count-weighted mean |mean human share - mean model probability| over those bins.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distalign.errors import InputError

MODELS: tuple[str, ...] = ("gpt-4", "gpt-3.5-turbo-0125", "llama3-70b")
DATASETS: tuple[str, ...] = ("opinionqa", "nytimes", "globalvalues")
STEERINGS: tuple[str, ...] = ("task1", "task3_easy_hard")
KINDS: dict[str, str] = {"none": "model_logprobs", "temperature": "rescaled_model_logprobs"}
#: the notebook's groups per dataset
GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "opinionqa": {
        "POLPARTY": ("Democrat", "Republican"),
        "SEX": ("Male", "Female"),
        "RACE": ("Black", "White"),
    },
    "nytimes": {"POLPARTY": ("Democrat", "Republican"), "SEX": ("Male", "Female")},
    "globalvalues": {"globalvalues": ("0", "1", "2")},
}
WAVE = {"opinionqa": "Pew_American_Trends_Panel_disagreement_100"}


def notebook_ece(expected: np.ndarray, output: np.ndarray, n_bins: int = 10, unit: bool = False) -> float:
    """ECE with the notebook's bins (``unit``: equal-width bins on [0, 1] instead); NaN pairs dropped."""
    keep = ~(np.isnan(expected) | np.isnan(output))
    e, o = expected[keep], output[keep]
    if not len(o):
        return float("nan")
    edges = np.linspace(0.0, 1.0, n_bins + 1) if unit else np.linspace(o.min(), o.max(), n_bins + 1)
    bins = np.digitize(o, edges)
    total = 0.0
    for b in np.unique(bins):
        pick = bins == b
        total += pick.sum() / len(o) * abs(e[pick].mean() - o[pick].mean())
    return float(total)


def observations(
    root: Path, model: str, calibration: str, datasets: Sequence[str] = DATASETS
) -> tuple[np.ndarray, np.ndarray]:
    """(human share, model probability) per option of every (question, group) file, in the release's
    key order of ``expected_results`` (the model's value looked up by the same option key)."""
    expected: list[float] = []
    output: list[float] = []
    for dataset in datasets:
        for steering in STEERINGS:
            for attribute, groups in GROUPS[dataset].items():
                for group in groups:
                    path = (
                        root / "results" / dataset / KINDS[calibration] / model / steering
                        / WAVE.get(dataset, "") / attribute / f"{group}.json"
                    )  # fmt: skip
                    if not path.is_file():
                        raise InputError("a log-p file of Table 3 is missing from the release", file=path)
                    for answer in json.loads(path.read_text(encoding="utf-8")).values():
                        human, pred = answer["expected_results"], answer["avg_actual_results"]
                        for key, share in human.items():
                            expected.append(float(share))
                            value = pred.get(key)
                            output.append(float("nan") if value is None else float(value))
    return np.asarray(expected, dtype=float), np.asarray(output, dtype=float)


@dataclass(frozen=True)
class Reading:
    """The paper's reading of one model x calibration and what else was tried on the same files."""

    model: str
    calibration: str
    ece: float  # the notebook's definition, three datasets pooled
    n: int  # option-level observations
    tried_low: float  # the lowest ECE over every other reading tried
    tried_high: float
    saturated: float  # share of model probabilities exactly 0 or 1 (no temperature moves them)


def readings(root: Path, models: Sequence[str] = MODELS) -> list[Reading]:
    """The notebook's ECE per model x calibration, with the range over the other readings tried: 5, 15
    and 20 bins; equal-width bins on [0, 1]; each dataset on its own."""
    out = []
    for model in models:
        for calibration in KINDS:
            e, o = observations(root, model, calibration)
            tried = [notebook_ece(e, o, n) for n in (5, 15, 20)] + [notebook_ece(e, o, 10, unit=True)]
            tried += [notebook_ece(*observations(root, model, calibration, (d,))) for d in DATASETS]
            keep = ~np.isnan(o)
            out.append(
                Reading(
                    model,
                    calibration,
                    notebook_ece(e, o),
                    int(keep.sum()),
                    float(np.nanmin(tried)),
                    float(np.nanmax(tried)),
                    float(np.mean((o[keep] == 0) | (o[keep] == 1))),
                )
            )
    return out


__all__ = ["Reading", "notebook_ece", "observations", "readings"]
