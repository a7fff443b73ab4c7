"""One look for every figure: a colour-blind-safe palette, one colour per model in every figure, and the
same model order everywhere (a reader compares figures side by side)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

#: Okabe & Ito (2008), safe for the common colour-vision deficiencies; black last (reserved for humans)
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
#: names drawn in fixed colours whatever else is in the figure
FIXED: dict[str, str] = {"human": "#000000", "humans": "#000000"}
BASELINE_COLOR = "#7F7F7F"
#: the benchmark's models first, in the paper's order; any other model follows alphabetically
MODEL_ORDER: tuple[str, ...] = (
    "gpt-4",
    "gpt4",
    "gpt-3.5-turbo-0125",
    "gpt35_turbo",
    "llama3-70b",
    "llama3_70b",
    "anthropic_opus",
    "claude_3_opus",
    "anthropic_haiku",
    "claude_3_haiku",
)
METHOD_ORDER: tuple[str, ...] = (
    "verbalize",
    "seq",
    "logprobs",
    "logprobs+temperature",
    "self_random",
    "paraphrase",
    "verbalize_then_sample",
)
#: how methods, datasets and steering modes are named on axes and in legends (others: their own name)
METHOD_LABELS: dict[str, str] = {
    "verbalize": "verbalize",
    "seq": "sequence",
    "logprobs": "log-p",
    "logprobs+temperature": "log-p, temp.-scaled",
    "self_random": "self-random",
    "paraphrase": "paraphrase",
    "verbalize_then_sample": "verbalize, sampled",
}
DATASET_LABELS: dict[str, str] = {
    "opinionqa": "OpinionQA",
    "nyt_books": "NYT Book Opinions",
    "global_opinions": "GlobalOpinionQA",
    "three": "mean of the three datasets",
    "all": "all datasets",
}
BASELINE_LABELS: dict[str, str] = {
    "uniform": "uniform",
    "majority": "majority vote",
    "discretization_30": "30-sample discretization",
}
STEERING_LABELS: dict[str, str] = {"none": "none", "persona": "persona", "few_shot": "few-shot", "all": "all"}
LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X")
HATCHES: tuple[str, ...] = ("", "//", "..", "xx", "\\\\", "++", "oo")
RC: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 130,
    "savefig.bbox": "tight",
}


def ordered(names: Iterable[str], order: Sequence[str] = MODEL_ORDER) -> list[str]:
    """``names`` (deduplicated) in the canonical order, then unknown names alphabetically, humans last."""
    present = list(dict.fromkeys(str(n) for n in names))
    rank = {name: i for i, name in enumerate(order)}
    known = sorted((n for n in present if n in rank), key=rank.__getitem__)
    rest = sorted(n for n in present if n not in rank and n not in FIXED)
    return known + rest + [n for n in present if n in FIXED]


def colors(models: Iterable[str]) -> dict[str, str]:
    """A colour per model, stable for the same set of models in every figure of a report."""
    out: dict[str, str] = {}
    free = iter(c for c in PALETTE if c not in FIXED.values())
    for name in ordered(models):
        out[name] = FIXED.get(name) or next(free, "#999999")
    return out


def label(name: str, labels: dict[str, str]) -> str:
    return labels.get(str(name), str(name))


def method_label(name: str) -> str:
    """A method's display name; a calibrated one (``seq+regression``) reads "sequence + regression"."""
    name = str(name)
    if name in METHOD_LABELS or "+" not in name:
        return label(name, METHOD_LABELS)
    base, calibration = name.split("+", 1)
    return f"{label(base, METHOD_LABELS)} + {calibration}"
