"""One look for every figure: a colour-blind-safe palette, one colour per model in every figure of every
report (keyed by the model's name, not its position), one display name per model, and the same model
order everywhere (a reader compares figures side by side)."""

from __future__ import annotations

import zlib
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
#: the benchmark release's model folders -> the project's model configs (``conf/model``)
RELEASE_MODELS: dict[str, str] = {
    "gpt-4": "gpt4",
    "gpt-3.5-turbo-0125": "gpt35_turbo",
    "llama3-70b": "llama3_70b",
    "anthropic_opus": "claude_3_opus",
    "anthropic_haiku": "claude_3_haiku",
}
#: how models are named to a reader (keyed by config name); others show their config name
DISPLAY_NAMES: dict[str, str] = {
    "gpt4": "GPT-4",
    "gpt35_turbo": "GPT-3.5 Turbo",
    "gpt4o_mini": "GPT-4o mini",
    "llama3_70b": "Llama 3 70B",
    "llama3_8b": "Llama 3 8B",
    "llama32_90b": "Llama 3.2 90B",
    "claude_3_opus": "Claude 3 Opus",
    "claude_3_haiku": "Claude 3 Haiku",
    "claude_35_sonnet": "Claude 3.5 Sonnet",
    "claude_35_haiku": "Claude 3.5 Haiku",
    "mistral_large": "Mistral Large",
    "mistral_small": "Mistral Small",
    "olmo2_7b": "OLMo 2 7B",
    "qwen25_72b": "Qwen2.5 72B",
    "qwen25_32b": "Qwen2.5 32B",
    "qwen2_5_7b": "Qwen2.5 7B",
    "smollm2_135m": "SmolLM2-135M",
    "smollm2_135m_vllm": "SmolLM2-135M (vLLM)",
    "human": "humans",
    "humans": "humans",
}
#: names drawn in fixed colours whatever else is in the figure (config names): humans black, the
#: benchmark's five models the first five colours of the palette
FIXED: dict[str, str] = {"human": "#000000", "humans": "#000000"}
MODEL_COLORS: dict[str, str] = {
    "gpt4": "#0072B2",
    "gpt35_turbo": "#E69F00",
    "llama3_70b": "#009E73",
    "claude_3_opus": "#CC79A7",
    "claude_3_haiku": "#56B4E9",
}
#: colours of any other model, chosen by a hash of its name (Okabe & Ito's vermillion, then Tol's muted)
OTHER_COLORS: tuple[str, ...] = (
    "#D55E00", "#882255", "#44AA99", "#332288", "#999933", "#AA4499", "#117733", "#661100",
)  # fmt: skip
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


def canonical(name: str) -> str:
    """A model's config name (a release folder name is mapped to the config of the same model)."""
    return RELEASE_MODELS.get(str(name), str(name))


def display(name: str) -> str:
    """A model's one display name (terminal, tables, figures, MLflow)."""
    return DISPLAY_NAMES.get(canonical(name), canonical(name))


def ordered(names: Iterable[str], order: Sequence[str] = MODEL_ORDER) -> list[str]:
    """``names`` (deduplicated) in the canonical order, then unknown names alphabetically, humans last."""
    present = list(dict.fromkeys(str(n) for n in names))
    rank = {name: i for i, name in enumerate(order)}
    known = sorted((n for n in present if n in rank), key=rank.__getitem__)
    rest = sorted(n for n in present if n not in rank and n not in FIXED)
    return known + rest + [n for n in present if n in FIXED]


def colors(models: Iterable[str]) -> dict[str, str]:
    """A colour per model that depends on the model's name only, so a model has the same colour in every
    figure of every report: the benchmark's models and humans fixed, any other by a hash of its name
    (the next free colour if two names of one report hash alike)."""
    out: dict[str, str] = {}
    taken = set()
    for name in ordered(models):
        key = canonical(name)
        color = FIXED.get(key) or MODEL_COLORS.get(key)
        if color is None:
            start = zlib.crc32(key.encode("utf-8")) % len(OTHER_COLORS)
            free = [OTHER_COLORS[(start + i) % len(OTHER_COLORS)] for i in range(len(OTHER_COLORS))]
            color = next((c for c in free if c not in taken), free[0])
        out[name] = color
        taken.add(color)
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
