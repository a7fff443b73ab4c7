"""Planning: a cell -> units (one rendered prompt each) -> requests, each addressed by its store key.

A no-steering prompt names no group, so it is ONE unit per item, scored against every group of the item.
Every request is addressed by ``request_key(identity, request)``; the runner sends a key once however many
cells ask for it. Planning is per cell, so a sweep holds only the cells it is working on, never the grid.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from distalign.calibration.sampling import SPLIT, few_shot_examples, split_questions
from distalign.engines.registry import engine_capabilities, model_identity
from distalign.engines.registry import prices as engine_prices
from distalign.engines.store import request_key
from distalign.prompts.fewshot import examples_for
from distalign.prompts.render import Memo, PromptSpec, RenderedPrompt, render_prompt
from distalign.records.config import ModelConfig
from distalign.records.engine import GenerateRequest, OptionLogprobRequest
from distalign.survey.model import Example, Item, Survey
from distalign.sweep.cells import Cell

Request = OptionLogprobRequest | GenerateRequest


@dataclass(frozen=True)
class Unit:
    """One rendered prompt of a cell and the requests that answer it."""

    item_id: str
    attribute: str | None  # None: scored against every group of the item
    group: str | None
    prompt: RenderedPrompt
    requests: tuple[Request, ...]
    keys: tuple[str, ...]  # request_key of each request, aligned with ``requests``
    #: which of the calibration's example sets a supervision few-shot prompt shows (None: no such sets)
    example_set: int | None = None


@dataclass(frozen=True)
class CellPlan:
    cell: Cell
    units: tuple[Unit, ...]
    #: the cell's distinct request keys (first-use order) and the request of each
    requests: dict[str, Request]

    @property
    def spec_hash(self) -> str:
        return self.cell.spec_hash

    @property
    def keys(self) -> list[str]:
        return list(self.requests)


@dataclass
class Examples:
    """Demonstrations chosen per (survey, item, group, k): every format of a few-shot steering shows the
    same ones, so they are chosen once per sweep, and an example shown to one group in many prompts is
    rendered once (``rendered``)."""

    chosen: dict[tuple[str, str, str, int], tuple[Example, ...]] = field(default_factory=dict)
    rendered: Memo = field(default_factory=dict)

    def get(self, survey: Survey, item: Item, group: str | None, spec: PromptSpec) -> tuple[Example, ...]:
        if group is None or not spec.uses_examples:
            return ()
        key = (survey.digest, item.id, group, spec.n_examples)
        hit = self.chosen.get(key)
        if hit is None:
            hit = self.chosen[key] = tuple(examples_for(survey, item.id, group, k=spec.n_examples))
        return hit


def _targets(survey: Survey, spec: PromptSpec) -> list[tuple[Item, str | None, str | None, Any]]:
    """(item, attribute, group, the group's distribution) per prompt; no group for groupless steering."""
    if not spec.names_group:
        scored = {d.item_id for d in survey.distributions}
        return [(item, None, None, None) for item in survey.items.values() if item.id in scored]
    return [(survey.items[d.item_id], d.attribute, d.group, d.probs) for d in survey.distributions]


def calibration_example_sets(cell: Cell) -> tuple[tuple[Example, ...], ...]:
    """The supervision paper's few-shot examples: the 3 random sets of 5 training distributions its
    5-example calibrator is trained on (``calibration.sampling``; same seed and split as the calibration)."""
    survey = cell.survey
    fractions = (cell.config.calibration.params or {}).get("split", SPLIT)
    sets = few_shot_examples(survey, seed=cell.config.sweep.seed, fractions=fractions)
    return tuple(
        tuple(
            Example(
                d.item_id, survey.items[d.item_id].question, survey.items[d.item_id].options, tuple(d.probs)
            )
            for d in drawn
        )
        for drawn in sets
    )


def _test_questions(cell: Cell) -> set[str]:
    """The questions of the calibration's test split: where few-shot prompting is compared with it (and no
    target is one of its own examples)."""
    ids = sorted(cell.survey.items)
    fractions = (cell.config.calibration.params or {}).get("split", SPLIT)
    questions = np.array([f"{cell.survey.name}\x1f{i}" for i in ids], dtype=object)
    split = split_questions(questions, cell.config.sweep.seed, fractions)
    return {i for i, s in zip(ids, split, strict=True) if s == "test"}


def iter_units(cell: Cell, examples: Examples | None = None) -> Iterator[Unit]:
    """Render the prompts of one cell one at a time and build their requests (no model call); a sweep
    takes them a chunk at a time, so a cell of any size never sits in memory whole.

    A supervision-protocol few-shot cell follows the paper: each test-split target is asked once with each
    of the calibration's 3 example sets (``Unit.example_set``), and its score is their average.
    """
    examples = examples if examples is not None else Examples()
    model = cell.config.model
    identity = model_identity(model)
    caps = engine_capabilities(model)
    targets = _targets(cell.survey, cell.spec)
    calibration_sets: tuple[tuple[Example, ...], ...] = ()
    if cell.spec.protocol == "supervision" and cell.spec.few_shot:
        calibration_sets = calibration_example_sets(cell)
        test = _test_questions(cell)
        targets = [t for t in targets if t[0].id in test]
    for item, attribute, group, probs in targets:
        if calibration_sets:
            variants = list(enumerate(calibration_sets))
        else:
            variants = [(None, examples.get(cell.survey, item, group, cell.spec))]
        for example_set, shown in variants:
            # the release's prompts leave out options nobody in the group chose: the preset needs the data
            spec, templates = cell.spec, cell.templates
            prompt = render_prompt(
                item, attribute, group, shown, spec, templates, group_probs=probs, memo=examples.rendered
            )
            reqs = tuple(cell.method.requests(prompt, capabilities=caps))
            keys = tuple(request_key(identity, r) for r in reqs)
            yield Unit(item.id, attribute, group, prompt, reqs, keys, example_set)


def plan_cell(cell: Cell, examples: Examples | None = None) -> CellPlan:
    """Every prompt of one cell at once (dry runs and tests; a sweep streams ``iter_units``)."""
    units = tuple(iter_units(cell, examples))
    requests: dict[str, Request] = {}
    for unit in units:
        for k, r in zip(unit.keys, unit.requests, strict=True):
            requests.setdefault(k, r)
    return CellPlan(cell, units, requests)


@dataclass
class ModelCount:
    cells: int = 0
    units: int = 0
    requests: int = 0
    unique: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class PlanSummary:
    """Counts and a cost estimate of a whole grid, accumulated cell by cell (nothing else is kept)."""

    models: dict[str, ModelConfig] = field(default_factory=dict)
    per_model: dict[str, ModelCount] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    requests_before_dedup: int = 0
    units: int = 0
    cells: int = 0
    #: (cell config name, spec hash or "", error) of cells that could not be planned
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    #: (model, method) pairs skipped because the model cannot serve the method, with the reason
    unsupported: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, plan: CellPlan) -> None:
        model = plan.cell.config.model
        m = self.per_model.setdefault(model.name, ModelCount())
        self.models.setdefault(model.name, model)
        self.cells += 1
        m.cells += 1
        m.units += len(plan.units)
        self.units += len(plan.units)
        n = sum(len(u.requests) for u in plan.units)
        m.requests += n
        self.requests_before_dedup += n
        for key, req in plan.requests.items():
            if key in self.seen:
                continue
            self.seen.add(key)
            m.unique += 1
            chars = sum(len(msg.content) for msg in req.messages) + len(req.assistant_prefix)
            m.prompt_tokens += chars // 4 + 4 * len(req.messages)
            if isinstance(req, OptionLogprobRequest):
                m.completion_tokens += 1
            else:
                m.completion_tokens += req.params.max_tokens * req.params.n

    @property
    def requests(self) -> int:
        return len(self.seen)

    def cost(self, model: str) -> float | None:
        prices = engine_prices(self.models[model])
        if prices is None:
            return None
        m = self.per_model[model]
        return m.prompt_tokens * prices[0] + m.completion_tokens * prices[1]


def summarize(cells: Iterable[Cell], summary: PlanSummary | None = None) -> PlanSummary:
    """Plan every cell to count it (dry runs); a cell whose planning raises is recorded as failed."""
    summary = summary if summary is not None else PlanSummary()
    examples = Examples()
    for cell in cells:
        try:
            summary.add(plan_cell(cell, examples))
        except Exception as exc:  # noqa: BLE001 - every failing cell is reported, not just the first
            summary.failed.append((cell.config.steering.name, cell.spec_hash, f"{type(exc).__name__}: {exc}"))
    return summary


__all__: list[Any] = ["CellPlan", "Examples", "PlanSummary", "Unit", "plan_cell", "summarize"]
