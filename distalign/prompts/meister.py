"""The benchmark's own prompts (Meister, Guestrin & Hashimoto 2024), built as the release's code builds them.

The none and persona prompts wrap a demonstration file of the release (``prompt_task0.txt`` /
``prompt_task1.txt``), read from the user's data folder when the preset is loaded (see
:mod:`distalign.prompts.presets`), so a new model is asked what the paper's models were asked without the
files being copied into this repository. The few-shot prompt is the release's ``task3`` (the one behind the
paper's few-shot results), built from the demonstrations chosen by :mod:`distalign.prompts.fewshot`.

What follows the release, and why:

* OpinionQA options are listed in the order of the release's count tables, which is alphabetical ("No
  priority", "Refused", "Some priority", "Top priority"); NYT and GlobalOpinionQA keep the option order.
  ``RenderedPrompt.labels`` carries the shown order, so answers map back to the dataset's options.
* The release's count tables omit options nobody in a group chose, so its persona and few-shot prompts
  never list them (OpinionQA and NYT). ``group_probs`` (the group's distribution) reproduces that; without
  it every option is listed. Demonstrations always follow the release (their distributions are given).
* Sampled demonstration answers (sequence, log-p) are drawn deterministically per example and group, where
  the release drew them unseeded; percentages are truncated (``int(p * 100)``) as in the release.

Where the released code cannot have produced the paper's runs, the evident intent is followed: the persona
and few-shot prompts of GlobalOpinionQA name the country (the released code would print the slot "0").
The release's model-specific Llama-3-70B log-p prompts are not reproduced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from distalign.errors import InputError
from distalign.prompts.spec import PromptSpec, RenderedPrompt, stable_seed
from distalign.prompts.templates import Templates
from distalign.records.engine import Message
from distalign.survey.model import Example, Item

KIND = "meister2024"
#: our dataset name -> the release's folder under ``inputs/``
DATASET_FOLDERS: Mapping[str, str] = {
    "opinionqa": "opinion_surveys",
    "nyt_books": "nytimes",
    "global_opinions": "globalvalues",
}
#: our answer format -> the release's folder name for it
FORMAT_FOLDERS: Mapping[str, str] = {
    "verbalize": "express_distribution",
    "seq": "sequence",
    "logprobs": "model_logprobs",
}
#: our steering -> the release's task whose demonstration file (``prompt_<task>.txt``) the prompt wraps
TASKS: Mapping[str, str] = {"none": "task0", "persona": "task1"}
#: datasets whose release count tables list options alphabetically (the order the paper's models saw)
ALPHABETICAL: frozenset[str] = frozenset({"opinionqa"})
#: datasets whose count tables leave out options nobody in the group chose
OMITS_UNCHOSEN: frozenset[str] = frozenset({"opinionqa", "nyt_books"})
LETTERS = "ABCDEFGHIJKLMNOPQR"  # the release's option letters


def release_files() -> dict[tuple[str, str, str], str]:
    """(dataset folder, format folder, task) -> the file the preset reads, relative to the data folder."""
    return {
        (d, f, task): f"inputs/{d}/{f}/prompt_{task}.txt"
        for d in DATASET_FOLDERS.values()
        for f in FORMAT_FOLDERS.values()
        for task in TASKS.values()
    }


def _order(dataset: str, labels: Sequence[str]) -> list[int]:
    idx = list(range(len(labels)))
    return sorted(idx, key=lambda i: labels[i]) if dataset in ALPHABETICAL else idx


def _lettered(labels: Sequence[str], shown: Sequence[int], where: str) -> list[dict[str, Any]]:
    if len(shown) > len(LETTERS):
        raise InputError(f"{len(shown)} options but the release defines {len(LETTERS)} letters", where=where)
    return [{"letter": LETTERS[k], "label": labels[i], "index": i} for k, i in enumerate(shown)]


def _demonstration(t: Templates, spec: PromptSpec, dataset: str, ex: Example, group: str) -> dict[str, Any]:
    """One few-shot demonstration: the group's distribution (``context``), the listed options and an
    answer in the requested format, as the release writes them for this dataset."""
    order = _order(dataset, ex.options)
    present = [i for i in order if ex.probs[i] > 0] if dataset in OMITS_UNCHOSEN else order
    if dataset == "nyt_books":  # NYT lists every option; letters keep their position in the list
        listed = _lettered(ex.options, order, f"example {ex.id!r}")
        context = [o for o in listed if o["index"] in present]
    else:
        listed = context = _lettered(ex.options, present, f"example {ex.id!r}")
    for o in context:
        o["percent"] = int(float(ex.probs[o["index"]]) * 100)
    if spec.fmt == "verbalize":
        answer = t.render(f"datasets.{dataset}.verbalized_answer", context=context)
    else:
        p = np.array([float(ex.probs[o["index"]]) for o in context])
        rng = np.random.default_rng(stable_seed(ex.id, group, spec.fmt))
        draws = rng.choice(len(context), size=spec.seq_len if spec.fmt == "seq" else 1, p=p / p.sum())
        answer = " ".join(context[k]["letter"] for k in draws)
    return {"question": ex.question, "context": context, "listed": listed, "answer": answer}


def render_meister(
    item: Item,
    group: str | None,
    examples: Sequence[Example],
    spec: PromptSpec,
    t: Templates,
    group_probs: Sequence[float] | None = None,
) -> RenderedPrompt:
    """The release's prompt for one item and group (see the module docstring)."""
    where = f"item {item.id!r}"
    if spec.protocol != "benchmark":
        raise InputError(
            f"the {KIND} prompts are the benchmark protocol's (steering none/persona/few_shot)", where=where
        )
    if item.dataset not in DATASET_FOLDERS:
        known = ", ".join(DATASET_FOLDERS)
        raise InputError(f"the {KIND} prompts exist for {known}, not {item.dataset!r}", where=where)
    if spec.names_group and not group:
        raise InputError(f"steering {spec.steering!r} needs a group", where=where)
    group = group if spec.names_group else None
    dataset = item.dataset
    order = _order(dataset, item.options)
    if group_probs is not None and group and dataset in OMITS_UNCHOSEN:
        if len(group_probs) != item.n_options:
            raise InputError(f"{len(group_probs)} group probabilities, {item.n_options} options", where=where)
        order = [i for i in order if group_probs[i] > 0]
    options = _lettered(item.options, order, where)
    ctx: dict[str, Any] = {
        "group": group or "",
        "seq_len": spec.seq_len,
        "question": item.question,
        "options": options,
    }
    ctx["instructions"] = t.render(f"instructions.{spec.steering}.{spec.fmt}", **ctx)
    if spec.steering == "few_shot":
        chosen = [e for e in examples if e.id != item.id][: spec.n_examples]
        if not chosen:
            raise InputError(
                f"few-shot prompt needs examples but none exist for group {group!r}", where=where
            )
        ctx["examples"] = [_demonstration(t, spec, dataset, ex, group or "") for ex in chosen]
        ctx["turn"] = t.render("few_shot_turn", **ctx)
    else:
        key = f"release_files.{DATASET_FOLDERS[dataset]}.{FORMAT_FOLDERS[spec.fmt]}.{TASKS[spec.steering]}"
        ctx["release_file"] = t.value(key)
    user = t.render(f"datasets.{dataset}.{spec.steering}", **ctx)
    messages = (Message("system", t.render("system")), Message("user", user))
    return RenderedPrompt(
        messages, "", tuple(o["letter"] for o in options), tuple(o["label"] for o in options)
    )
