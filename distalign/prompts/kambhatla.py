"""The supervision paper's own prompts (Kambhatla et al. 2025, Appendix B, Tables 14-16).

Answers are integer indices: the options are shown as a list and the model answers with a position
``1..l`` (or, verbalized, a list of ``l`` percentages), so the prompt's option symbols are "1".."l" and the
parsers and the log-probability method read those. Every paraphrase of a prompt is rendered at once
(``RenderedPrompt.variants``) for the paraphrase method. The prompts have no system message.
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

KIND = "kambhatla2025"


def index_letters(n: int) -> tuple[str, ...]:
    """The answer symbols of an ``n``-option question: "1".."n"."""
    return tuple(str(i) for i in range(1, n + 1))


def _lookup(t: Templates, table: str, key: str) -> str | None:
    value = t.value(table).get(key)
    return None if value is None else str(value)


def sd_phrases(t: Templates, attribute: str, group: str) -> dict[str, str]:
    """{att}, {c} and the two rearranged phrases of the SD paraphrases for one group."""
    att = _lookup(t, "attributes", attribute) or attribute.replace("_", " ").lower()
    c = _lookup(t, "classes", group) or group
    ctx = {"att": att, "c": c}
    for table in ("person", "description"):
        key = f"{table}.{attribute}" if t.has(f"{table}.{attribute}") else f"{table}.default"
        ctx[table] = t.render(key, **ctx)
    return ctx


def _question(t: Templates, dataset: str, question: str, meta: Mapping[str, Any]) -> str:
    key = f"questions.{dataset}" if t.has(f"questions.{dataset}") else "questions.default"
    return t.render(key, question=question, dataset=dataset, meta=meta)


def _prompt(t: Templates, key: str, framing: int, ctx: Mapping[str, Any], *, cot: bool) -> str:
    """Table 14/15 (or the CoT variant of Table 16) for one question."""
    parts = {
        "framing": t.render(f"{key}.{framing}", **ctx),
        "instructions": t.render(f"instructions.{ctx['fmt']}", **ctx),
    }
    return t.render("cot" if cot else "prompt", **ctx, **parts)


def _question_ctx(
    t: Templates, dataset: str, question: str, labels: Sequence[str], meta: Mapping[str, Any]
) -> dict[str, Any]:
    return {"q": _question(t, dataset, question, meta), "choices": list(labels), "l": len(labels)}


def _answer(t: Templates, ex: Example, group: str, fmt: str) -> str:
    """A demonstration's answer: the group's distribution as a list of percentages, or (index answers)
    one index drawn from it with a seed fixed by the example and group."""
    p = np.asarray(ex.probs, dtype=float)
    if fmt == "verbalize":
        return t.render("verbalized_answer", percents=[int(round(100 * float(x))) for x in p])
    rng = np.random.default_rng(stable_seed(ex.id, group, fmt))
    return str(int(rng.choice(len(p), p=p / p.sum())) + 1)


def render_kambhatla(
    item: Item,
    attribute: str | None,
    group: str | None,
    examples: Sequence[Example],
    spec: PromptSpec,
    t: Templates,
) -> RenderedPrompt:
    """Every paraphrase of the prompt for one item (and group, SD prompts); ``spec.paraphrase`` picks the
    one in ``messages``."""
    where = f"item {item.id!r}"
    if spec.protocol != "supervision":
        raise InputError(f"the {KIND} prompts are the supervision protocol's (steering base/sd)", where=where)
    if spec.names_group and not group:
        raise InputError(f"steering {spec.steering!r} needs a group", where=where)
    base: dict[str, Any] = {"fmt": spec.fmt, "dataset": item.dataset, "meta": dict(item.metadata)}
    if spec.names_group:
        base.update(sd_phrases(t, attribute or "", group or ""))
    key = f"framing.{spec.steering}.{spec.fmt}"
    n_variants = t.count(key)
    if spec.paraphrase >= n_variants:
        raise InputError(f"paraphrase {spec.paraphrase} requested but {key} has {n_variants}", file=t.source)
    chosen: list[Example] = []
    if spec.uses_examples:
        chosen = [e for e in examples if e.id != item.id][: spec.n_examples]
        if not chosen:
            raise InputError(
                f"few-shot prompt needs examples but none are available for group {group or '(none)'!r}",
                where=where,
            )
    target = {**base, **_question_ctx(t, item.dataset, item.question, item.options, item.metadata)}
    demos = [
        (
            {**base, **_question_ctx(t, item.dataset, ex.question, ex.options, {})},
            _answer(t, ex, group or "", spec.fmt),
        )
        for ex in chosen
    ]
    variants = []
    for i in range(n_variants):
        text = _prompt(t, key, i, target, cot=spec.cot)
        if demos:
            shown = [t.render("example", prompt=_prompt(t, key, i, c, cot=False), answer=a) for c, a in demos]
            text = t.render("few_shot", examples=" ".join(shown), task=text)
        variants.append((Message("user", text),))
    return RenderedPrompt(
        variants[spec.paraphrase],
        "",
        index_letters(item.n_options),
        item.options,
        tuple(variants),
        spec.cot,
    )
