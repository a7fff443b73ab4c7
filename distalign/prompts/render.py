"""Render a survey item into chat messages for one steering mode and answer format.

The rendered prompt is the unit the sweep de-duplicates and the response store keys on, so rendering is
pure and deterministic: the same item, group, examples and spec always give byte-identical messages.
Prompts without steering never mention a group, which makes them identical for every group of an item.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from distalign.errors import InputError
from distalign.prompts.templates import Rows, Templates, freeze, load_templates
from distalign.records.engine import Message
from distalign.survey.model import Example, Item

Protocol = Literal["benchmark", "supervision"]
STEERINGS: Mapping[str, tuple[str, ...]] = {
    "benchmark": ("none", "persona", "few_shot"),
    "supervision": ("base", "sd"),
}
FORMATS: Mapping[str, tuple[str, ...]] = {
    "benchmark": ("logprobs", "seq", "verbalize"),
    "supervision": ("verbalize", "single"),
}
#: steering modes that name no group (their prompt is shared by every group of an item)
GROUPLESS: frozenset[str] = frozenset({"none", "base"})


@dataclass(frozen=True)
class PromptSpec:
    """Which prompt to build. ``few_shot``/``cot`` are supervision-protocol variants; in the benchmark
    protocol few-shot is its own steering mode."""

    protocol: Protocol
    steering: str
    fmt: str
    paraphrase: int = 0
    cot: bool = False
    few_shot: bool = False
    n_examples: int = 5
    seq_len: int = 30

    def __post_init__(self) -> None:
        if self.protocol not in STEERINGS:
            raise InputError(
                f"unknown protocol {self.protocol!r} (known: {', '.join(STEERINGS)})", where="protocol"
            )
        if self.steering not in STEERINGS[self.protocol]:
            known = ", ".join(STEERINGS[self.protocol])
            raise InputError(
                f"steering {self.steering!r} is not part of the {self.protocol} protocol (known: {known})",
                where="steering",
            )
        if self.fmt not in FORMATS[self.protocol]:
            known = ", ".join(FORMATS[self.protocol])
            raise InputError(
                f"format {self.fmt!r} is not part of the {self.protocol} protocol (known: {known})",
                where="fmt",
            )
        if self.protocol == "benchmark":
            if self.cot:
                raise InputError("chain of thought is a supervision-protocol variant", where="cot")
            if self.few_shot and self.steering != "few_shot":
                raise InputError("in the benchmark protocol use steering 'few_shot'", where="few_shot")
            if self.paraphrase:
                raise InputError("paraphrases are a supervision-protocol variant", where="paraphrase")
        if self.paraphrase < 0:
            raise InputError("paraphrase index must be >= 0", where="paraphrase")
        if self.n_examples < 1 or self.seq_len < 1:
            raise InputError("n_examples and seq_len must be >= 1", where="n_examples/seq_len")

    @property
    def uses_examples(self) -> bool:
        return self.steering == "few_shot" or self.few_shot

    @property
    def names_group(self) -> bool:
        return self.steering not in GROUPLESS


@dataclass(frozen=True)
class RenderedPrompt:
    """Chat messages plus what a parser needs (letters/labels in the shown order).

    ``variants`` holds the messages of every paraphrase of the same prompt (supervision protocol), so the
    paraphrase method can ask all of them from one rendered prompt.
    """

    messages: tuple[Message, ...]
    assistant_prefix: str
    letters: tuple[str, ...]
    labels: tuple[str, ...]
    variants: tuple[tuple[Message, ...], ...] = ()
    #: the model is asked to reason first (answer between markers), so it needs a longer budget
    cot: bool = False

    @property
    def prompt_hash(self) -> str:
        """sha256 of every field, each string prefixed by its length so no two prompts share a
        serialisation; stable across processes and Python versions (and cheaper than JSON)."""
        texts: list[str] = [str(len(self.messages))]
        for m in self.messages:
            texts += (m.role, m.content)
        texts += (self.assistant_prefix, str(len(self.letters)), *self.letters)
        texts += (str(len(self.labels)), *map(str, self.labels), str(len(self.variants)))
        for v in self.variants:
            texts.append(str(len(v)))
            for m in v:
                texts += (m.role, m.content)
        texts.append("cot" if self.cot else "")
        blob = "".join(f"{len(t)}:{t}" for t in texts)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from text parts (Python's ``hash`` is salted per process, so it cannot be used)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def group_context(templates: Templates, attribute: str, group: str) -> dict[str, str]:
    """How a group reads in prose: "Democrats", "women", "people in Japan"."""
    memo_key = ("group_context", attribute, group)
    hit = templates.memo.get(memo_key)
    if hit is None:
        hit = _group_context(templates, attribute, group)
        templates.remember(memo_key, hit)
    return dict(hit)


def _group_context(templates: Templates, attribute: str, group: str) -> dict[str, str]:
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
    hit = templates.memo.get(("letters", n))
    if hit is not None:
        return hit
    letters = tuple(str(x) for x in templates.value("letters"))
    if n > len(letters):
        raise InputError(
            f"{n} options but only {len(letters)} letters are defined", file=templates.source, where=where
        )
    templates.remember(("letters", n), letters[:n])
    return letters[:n]


def _options(
    letters: Sequence[str], labels: Sequence[str], probs: Sequence[float] | None = None
) -> list[dict]:
    out = []
    for i, (letter, label) in enumerate(zip(letters, labels, strict=True)):
        row: dict[str, Any] = {"letter": letter, "label": label}
        if probs is not None:
            row["percent"] = int(round(100 * float(probs[i])))
        out.append(row)
    return out


def _option_rows(
    templates: Templates,
    letters: tuple[str, ...],
    labels: tuple[str, ...],
    probs: tuple[float, ...] | None = None,
) -> list[dict]:
    """``_options`` built once per distinct options (many prompts show the same question)."""
    memo_key = ("options", letters, labels, probs)
    try:
        hit = templates.memo.get(memo_key)
    except TypeError:  # unhashable labels or probs
        return _options(letters, labels, probs)
    if hit is None:
        hit = Rows(_options(letters, labels, probs))
        templates.remember(memo_key, hit)
    return hit


def _item_text(templates: Templates, dataset: str, ctx: Mapping[str, Any]) -> str:
    key = f"blocks.item_{dataset}"
    return templates.render_cached(key if templates.has(key) else "blocks.item", **ctx)


def _draw(seed: int, probs: Any, k: int) -> list[int]:
    """``default_rng(seed).choice(len(probs), size=k, p=probs)`` without the argument checks that make up
    most of its cost: the same inverse-CDF steps numpy takes (a sequential cumulative sum, division by its
    last entry, a right-sided search), so the same draws; a negative or non-finite probability goes
    through ``choice`` itself and its checks."""
    rng = np.random.default_rng(seed)
    values = np.asarray(probs, dtype=float).tolist()
    if not all(math.isfinite(x) and x >= 0 for x in values):
        return rng.choice(len(values), size=k, p=probs).tolist()
    cdf = list(itertools.accumulate(values))
    last = cdf[-1]
    cdf = [c / last for c in cdf]
    return [bisect.bisect_right(cdf, u) for u in rng.random(k).tolist()]


def _example_answer(
    templates: Templates, fmt: str, ex: Example, letters: Sequence[str], ctx: dict, seq_len: int
) -> str:
    """The demonstration's answer in the requested format; sampled formats draw from the example's true
    distribution with a seed fixed by the example and group (the release samples them too)."""
    if fmt == "verbalize":
        return templates.render_cached("blocks.verbalize_answer", **ctx)
    k = seq_len if fmt == "seq" else 1
    group = ctx.get("group", "")
    memo_key: Any = ("example_answer", ex.id, group, fmt, k, tuple(letters), ex.probs)
    try:
        hit = templates.memo.get(memo_key)
    except TypeError:  # unhashable probs: draw without the memo
        memo_key, hit = None, None
    if hit is None:
        p = np.asarray(ex.probs, dtype=float)
        p = p / p.sum()
        hit = " ".join(letters[i] for i in _draw(stable_seed(ex.id, group, fmt), p, k))
        if memo_key is not None:
            templates.remember(memo_key, hit)
    return hit


#: entries of a prompt's context that every demonstration replaces with its own
_EXAMPLE_OWN = frozenset({"question", "item_id", "meta"})
_TOKENS = itertools.count()


def _examples_text(
    templates: Templates, spec: PromptSpec, item: Item, examples: Sequence[Example], base: Mapping[str, Any]
) -> tuple[str, int]:
    chosen = [e for e in examples if e.id != item.id][: spec.n_examples]
    if not chosen:
        raise InputError(
            f"few-shot prompt needs examples but none are available for group {base['group'] or '(none)'!r}",
            where=f"item {item.id!r}",
        )
    # a demonstration block is a pure function of the spec, the rest of the context and the example, so
    # the same example shown to the same group in another prompt (same position) is rendered once; the
    # shared part of its memo key is looked up once per prompt and stands in as a small token
    try:
        shared: Any = (spec.protocol, spec.fmt, spec.seq_len) + tuple(
            (k, freeze(v)) for k, v in base.items() if k not in _EXAMPLE_OWN
        )
        token = templates.memo.get(("example_context", shared))
        if token is None:
            token = next(_TOKENS)
            templates.remember(("example_context", shared), token)
    except TypeError:
        token = None
    blocks = []
    for i, ex in enumerate(chosen, start=1):
        memo_key: Any = None
        if token is not None:
            memo_key = ("example_block", token, ex.id, ex.question, ex.options, ex.probs, i)
            try:
                hit = templates.memo.get(memo_key)
            except TypeError:  # unhashable example fields
                memo_key, hit = None, None
            if hit is not None:
                blocks.append(hit)
                continue
        block = _example_block(templates, spec, item, ex, i, base)
        if memo_key is not None:
            templates.remember(memo_key, block)
        blocks.append(block)
    return "\n\n".join(blocks), len(chosen)


def _example_block(
    templates: Templates, spec: PromptSpec, item: Item, ex: Example, index: int, base: Mapping[str, Any]
) -> str:
    letters = _letters(templates, len(ex.options), f"example {ex.id!r}")
    ctx = {**base, "question": ex.question, "item_id": ex.id, "meta": {}}
    ctx["options"] = _option_rows(templates, letters, ex.options, ex.probs)
    ctx["item_text"] = _item_text(templates, item.dataset, ctx)
    ctx["distribution_text"] = templates.render_cached("blocks.distribution", **ctx)
    ctx["index"] = index
    if spec.protocol == "benchmark":
        ctx["answer"] = _example_answer(templates, spec.fmt, ex, letters, ctx, spec.seq_len)
        return templates.render_cached("benchmark.example", **ctx)
    return templates.render_cached("supervision.example", **ctx)


def render_prompt(
    item: Item,
    attribute: str | None,
    group: str | None,
    examples: Sequence[Example],
    spec: PromptSpec,
    templates: Templates | None = None,
) -> RenderedPrompt:
    """Build the chat prompt. ``examples`` are the demonstrations already chosen for this (item, group)
    (see :func:`distalign.prompts.fewshot.select_examples`); the first ``spec.n_examples`` are shown."""
    t = templates or load_templates()
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
        examples_text, base["n_examples"] = _examples_text(t, spec, item, examples, ex_ctx)
    else:
        examples_text = ""
    ctx = {**base, "options": _option_rows(t, letters, item.options), "examples_text": examples_text}
    ctx["item_text"] = _item_text(t, item.dataset, ctx)
    system = Message("system", t.render_cached(f"system.{spec.protocol}", **ctx))
    if spec.protocol == "benchmark":
        user = t.render(
            "benchmark.user",
            **ctx,
            task_text=t.render_cached(f"benchmark.task.{spec.steering}.{spec.fmt}", **ctx),
            format_text=""
            if spec.uses_examples
            else t.render_cached(f"benchmark.format_example.{spec.fmt}", **ctx),
            turn_text=t.render_cached(f"benchmark.turn.{spec.steering}", **ctx),
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
    answer_text = t.render_cached(f"supervision.{'cot' if spec.cot else 'answer'}.{spec.fmt}", **ctx)
    intro = t.render_cached("supervision.examples_intro", **ctx) if examples_text else ""
    variants = tuple(
        (
            system,
            Message(
                "user",
                t.render(
                    "supervision.user",
                    **ctx,
                    framing_text=t.render_cached(f"{framing_key}.{i}", **ctx),
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
    t = templates or load_templates()
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


def trial_render(templates: Templates) -> None:
    """Render every prompt shape on made-up items so a user's templates fail at load, not mid-sweep."""
    item = Item("trial", "q1", "Is this a trial?", ("Yes", "No", "Refused"), (1.0, 2.0, None))
    book = Item("nyt_books", "A Book", "A Book", ("1", "2", "3", "4"), (1.0, 2.0, 3.0, 4.0), {"genre": "g"})
    examples = tuple(
        Example(f"e{i}", f"Example {i}?", ("Yes", "No", "Refused"), (0.5, 0.4, 0.1)) for i in range(5)
    )
    for it in (item, book):
        for protocol, steerings in STEERINGS.items():
            for steering in steerings:
                for fmt in FORMATS[protocol]:
                    variants = [{}] if protocol == "benchmark" else [{}, {"cot": True}, {"few_shot": True}]
                    for extra in variants:
                        spec = PromptSpec(protocol, steering, fmt, **extra)  # type: ignore[arg-type]
                        render_prompt(it, "SEX", "Female", examples, spec, templates)
    for fmt in FORMATS["benchmark"]:
        render_toy(0.7, fmt, templates=templates)
