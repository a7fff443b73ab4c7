"""Render a survey item into chat messages for one steering mode and answer format.

The rendered prompt is the unit the sweep de-duplicates and the response store keys on, so rendering is
pure and deterministic: the same item, group, examples and spec always give byte-identical messages.
Prompts without steering never mention a group, which makes them identical for every group of an item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from distalign.errors import InputError
from distalign.prompts import kambhatla, meister
from distalign.prompts.spec import (
    FORMATS,
    GROUPLESS,
    STEERINGS,
    PromptProtocol,
    PromptSpec,
    RenderedPrompt,
    stable_seed,
)
from distalign.prompts.templates import DEFAULT_KIND, Templates, packaged_templates
from distalign.records.engine import Message
from distalign.survey.model import Example, Item

__all__ = [
    "FORMATS",
    "GROUPLESS",
    "STEERINGS",
    "PromptProtocol",
    "PromptSpec",
    "RenderedPrompt",
    "group_context",
    "render_prompt",
    "render_toy",
    "stable_seed",
]


def group_context(templates: Templates, attribute: str, group: str) -> dict[str, str]:
    """How a group reads in prose: "Democrats", "women", "people in Japan"."""
    if not group:
        return {"group": "", "attribute": "", "group_phrase": "", "attribute_phrase": "", "group_value": ""}
    attributes = templates.value("phrases.attributes")
    values = templates.value("phrases.group_values")
    plurals = templates.value("phrases.group_plurals")
    patterns = templates.value("phrases.plural_patterns")
    ctx = {
        "group": group,
        "attribute": attribute,
        "attribute_phrase": attributes.get(attribute, attribute.lower() or "group"),
        "group_value": values.get(group, group),
    }
    if group in plurals:
        phrase = plurals[group]
    elif attribute in patterns:
        phrase = templates.render(f"phrases.plural_patterns.{attribute}", **ctx)
    else:
        phrase = templates.render("phrases.plural_default", **ctx)
    return {**ctx, "group_phrase": phrase}


def _letters(templates: Templates, n: int, where: str) -> tuple[str, ...]:
    letters = templates.letters
    if n > len(letters):
        raise InputError(
            f"{n} options but only {len(letters)} letters are defined", file=templates.source, where=where
        )
    return letters[:n]


def _options(
    letters: Sequence[str], labels: Sequence[str], probs: Sequence[float] | None = None
) -> list[dict[str, Any]]:
    out = []
    for i, (letter, label) in enumerate(zip(letters, labels, strict=True)):
        row: dict[str, Any] = {"letter": letter, "label": label}
        if probs is not None:
            row["percent"] = int(round(100 * float(probs[i])))
        out.append(row)
    return out


def _item_text(templates: Templates, dataset: str, ctx: Mapping[str, Any]) -> str:
    key = f"blocks.item_{dataset}"
    return templates.render(key if templates.has(key) else "blocks.item", **ctx)


def _example_answer(
    templates: Templates, fmt: str, ex: Example, letters: Sequence[str], ctx: dict[str, Any], seq_len: int
) -> str:
    """The demonstration's answer in the requested format; sampled formats draw from the example's true
    distribution with a seed fixed by the example and group (the release samples them too)."""
    if fmt == "verbalize":
        return templates.render("blocks.verbalize_answer", **ctx)
    k = seq_len if fmt == "seq" else 1
    p = np.asarray(ex.probs, dtype=float)
    rng = np.random.default_rng(stable_seed(ex.id, ctx.get("group", ""), fmt))
    return " ".join(letters[i] for i in rng.choice(len(p), size=k, p=p / p.sum()))


#: what a demonstration's context takes from the target's: everything but the target's own text
_TARGET_ONLY = frozenset({"item_id", "question", "meta"})
#: rendered demonstration parts shared by every prompt that shows the same example to the same group
Memo = dict[tuple[Any, ...], dict[str, str]]
#: entries a memo keeps before it starts afresh (about 60 MB; the release's grid needs 17,356): a survey
#: 100x the release would otherwise keep every demonstration it ever rendered
MEMO_LIMIT = 100_000


def _examples_text(
    templates: Templates,
    spec: PromptSpec,
    item: Item,
    examples: Sequence[Example],
    base: Mapping[str, Any],
    memo: Memo | None,
) -> tuple[str, int]:
    chosen = [e for e in examples if e.id != item.id][: spec.n_examples]
    if not chosen:
        raise InputError(
            f"few-shot prompt needs examples but none are available for group {base['group'] or '(none)'!r}",
            where=f"item {item.id!r}",
        )
    # a block sees the target's context only through these values, so equal values render equal text
    shared = (templates.digest, templates.kind, item.dataset) + tuple(
        (k, tuple(v) if isinstance(v, list) else v) for k, v in base.items() if k not in _TARGET_ONLY
    )
    memo = {} if memo is None else memo
    if len(memo) > MEMO_LIMIT:
        memo.clear()
    blocks = []
    for i, ex in enumerate(chosen, start=1):
        letters = _letters(templates, len(ex.options), f"example {ex.id!r}")
        ctx = {**base, "question": ex.question, "item_id": ex.id, "meta": {}}
        ctx["options"] = _options(letters, ex.options, ex.probs)
        parts = memo.get((shared, ex))
        if parts is None:
            parts = memo[(shared, ex)] = _example_parts(templates, item.dataset, ctx)
        ctx.update(parts)
        if spec.protocol == "benchmark":
            key = (shared, ex, spec.fmt, spec.seq_len)
            if key not in memo:
                memo[key] = {"answer": _example_answer(templates, spec.fmt, ex, letters, ctx, spec.seq_len)}
            ctx.update(memo[key])
        ctx["index"] = i
        blocks.append(templates.render(f"{spec.protocol}.example", **ctx))
    return "\n\n".join(blocks), len(chosen)


def _example_parts(templates: Templates, dataset: str, ctx: dict[str, Any]) -> dict[str, str]:
    """The parts of a demonstration that depend neither on its position nor on the answer format."""
    parts = {"item_text": _item_text(templates, dataset, ctx)}
    parts["distribution_text"] = templates.render("blocks.distribution", **ctx, **parts)
    return parts


def render_prompt(
    item: Item,
    attribute: str | None,
    group: str | None,
    examples: Sequence[Example],
    spec: PromptSpec,
    templates: Templates | None = None,
    *,
    group_probs: Sequence[float] | None = None,
    memo: Memo | None = None,
) -> RenderedPrompt:
    """Build the chat prompt. ``examples`` are the demonstrations already chosen for this (item, group)
    (see :func:`distalign.prompts.fewshot.select_examples`); the first ``spec.n_examples`` are shown.

    ``templates`` may be a paper's own prompts (``presets.load_templates("meister2024")`` or
    ``"kambhatla2025"``), which have their own renderer. ``group_probs``, the group's true distribution, is
    read by the ``meister2024`` prompts only: like the release, they do not list options nobody in the group
    chose; the other prompts ignore it. ``memo`` keeps the demonstrations' rendered parts for the next prompt
    that shows the same example to the same group (a planner passes one per sweep): the same text, rendered
    once."""
    t = templates or packaged_templates()
    if t.kind == meister.KIND:
        return meister.render_meister(item, group, examples, spec, t, group_probs)
    if t.kind == kambhatla.KIND:
        return kambhatla.render_kambhatla(item, attribute, group, examples, spec, t)
    named = spec.names_group
    if named and not group:
        raise InputError(f"steering {spec.steering!r} needs a group", where=f"item {item.id!r}")
    letters = _letters(t, item.n_options, f"item {item.id!r}")
    base: dict[str, Any] = {
        **(group_context(t, attribute or "", group or "") if named else group_context(t, "", "")),
        "dataset": item.dataset,
        "item_id": item.id,
        "question": item.question,
        "meta": dict(item.metadata),
        "letters": list(letters),
        "seq_len": spec.seq_len,
        "n_examples": spec.n_examples,
    }
    if spec.uses_examples:
        # supervision base prompts show the group's data without naming the group
        ex_ctx = base if named else {**base, **group_context(t, "", "")}
        examples_text, base["n_examples"] = _examples_text(t, spec, item, examples, ex_ctx, memo)
    else:
        examples_text = ""
    ctx = {**base, "options": _options(letters, item.options), "examples_text": examples_text}
    ctx["item_text"] = _item_text(t, item.dataset, ctx)
    system = Message("system", t.render(f"system.{spec.protocol}", **ctx))
    if spec.protocol == "benchmark":
        user = t.render(
            "benchmark.user",
            **ctx,
            task_text=t.render(f"benchmark.task.{spec.steering}.{spec.fmt}", **ctx),
            format_text="" if spec.uses_examples else t.render(f"benchmark.format_example.{spec.fmt}", **ctx),
            turn_text=t.render(f"benchmark.turn.{spec.steering}", **ctx),
        )
        messages = (system, Message("user", user))
        return RenderedPrompt(
            messages, t.value(f"benchmark.assistant_prefix.{spec.fmt}"), letters, item.options
        )
    framing_key = f"supervision.framing.{spec.steering}.{spec.fmt}"
    n_variants = t.count(framing_key)
    if spec.paraphrase >= n_variants:
        raise InputError(
            f"paraphrase {spec.paraphrase} requested but {framing_key} has {n_variants}", file=t.source
        )
    answer_text = t.render(f"supervision.{'cot' if spec.cot else 'answer'}.{spec.fmt}", **ctx)
    intro = t.render("supervision.examples_intro", **ctx) if examples_text else ""
    variants = tuple(
        (
            system,
            Message(
                "user",
                t.render(
                    "supervision.user",
                    **ctx,
                    framing_text=t.render(f"{framing_key}.{i}", **ctx),
                    answer_text=answer_text,
                    examples_intro_text=intro,
                ),
            ),
        )
        for i in range(n_variants)
    )
    prefix = t.value(f"supervision.assistant_prefix.{'cot' if spec.cot else spec.fmt}")
    return RenderedPrompt(variants[spec.paraphrase], prefix, letters, item.options, variants, spec.cot)


def render_toy(
    p_heads: float,
    fmt: str,
    seq_len: int = 30,
    question: str | None = None,
    templates: Templates | None = None,
) -> RenderedPrompt:
    """The biased-coin prompt: ``question`` is the release's wording when available."""
    t = templates or packaged_templates()
    if t.kind != DEFAULT_KIND:
        raise InputError(f"the {t.kind} prompts have no biased-coin prompt; use the packaged templates")
    if fmt not in FORMATS["benchmark"]:
        raise InputError(
            f"unknown toy format {fmt!r} (known: {', '.join(FORMATS['benchmark'])})", where="fmt"
        )
    heads = int(round(100 * p_heads))
    ctx = {"heads": heads, "tails": 100 - heads, "seq_len": seq_len}
    ctx["question"] = question if question is not None else t.render("toy.question", **ctx)
    messages = (
        Message("system", t.render("system.benchmark", **ctx)),
        Message("user", t.render(f"toy.task.{fmt}", **ctx)),
    )
    return RenderedPrompt(
        messages, t.value(f"benchmark.assistant_prefix.{fmt}"), ("H", "T"), ("heads", "tails")
    )
