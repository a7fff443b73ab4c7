"""Planning: cells -> units (one prompt each) -> requests, de-duplicated across the whole sweep.

A no-steering prompt names no group, so it is ONE unit per item, scored against every group of the item.
Every request is addressed by ``request_key(identity, request)``; identical requests of different cells
(e.g. cells that differ only in calibration or in the unparsed policy) are sent once. Cells whose prompts
coincide reuse one rendering.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from distalign.records.config import CellConfig, ModelConfig, spec_hash
from distalign.records.engine import GenerateRequest, ModelIdentity, OptionLogprobRequest
from distalign.survey.model import Item, Survey
from distalign.sweep.cells import cell_method, load_dataset, load_templates, prompt_spec

Request = OptionLogprobRequest | GenerateRequest


@dataclass(frozen=True)
class Unit:
    """One rendered prompt of a cell and the requests that answer it."""

    cell: str  # spec hash
    item_id: str
    attribute: str | None  # None: scored against every group of the item
    group: str | None
    prompt: Any  # RenderedPrompt
    requests: tuple[Request, ...]
    keys: tuple[str, ...]  # request_key of each request, aligned with ``requests``


#: demonstrations chosen per survey, shared by the cells of a plan (every format of a few-shot steering
#: shows the same ones); keyed by ``id(survey)``, the survey kept alongside so an id is never reused
_EXAMPLES: dict[int, tuple[Survey, dict[tuple[str, str, int], tuple[Any, ...]]]] = {}


def _examples(survey: Survey, item: Item, group: str | None, spec: Any) -> tuple[Any, ...]:
    if group is None or not spec.uses_examples:
        return ()
    from distalign.prompts.fewshot import examples_for

    entry = _EXAMPLES.get(id(survey))
    if entry is None or entry[0] is not survey:
        entry = _EXAMPLES[id(survey)] = (survey, {})
    key = (item.id, group, spec.n_examples)
    hit = entry[1].get(key)
    if hit is None:
        hit = entry[1][key] = tuple(examples_for(survey, item.id, group, k=spec.n_examples))
    return hit


def _targets(survey: Survey, spec: Any) -> list[tuple[Item, str | None, str | None]]:
    if not spec.names_group:
        scored = {d.item_id for d in survey.distributions}
        return [(item, None, None) for item in survey.items.values() if item.id in scored]
    return [(survey.items[d.item_id], d.attribute, d.group) for d in survey.distributions]


def plan_cell(
    cell: CellConfig,
    survey: Survey,
    key_fn: Callable[[ModelIdentity, Request], str] | None = None,
) -> list[Unit]:
    """Render every prompt of one cell and build its requests (no model call)."""
    from distalign.engines.registry import engine_capabilities, model_identity
    from distalign.prompts.render import render_prompt

    if key_fn is None:
        from distalign.engines.store import request_key as key_fn
    method = cell_method(cell)
    spec = prompt_spec(cell, method)
    templates = load_templates(cell)
    identity = model_identity(cell.model)
    caps = engine_capabilities(cell.model)
    shash = spec_hash(cell)
    units = []
    for item, attribute, group in _targets(survey, spec):
        examples = _examples(survey, item, group, spec)
        prompt = render_prompt(item, attribute, group, examples, spec, templates=templates)
        requests = tuple(method.requests(prompt, capabilities=caps))
        keys = tuple(key_fn(identity, r) for r in requests)
        units.append(Unit(shash, item.id, attribute, group, prompt, requests, keys))
    return units


def _render_key(cell: CellConfig) -> str:
    """Cells equal in everything that shapes their prompts and requests share one rendering."""
    d = asdict(cell)
    model = dict(d["model"])
    serving = model.pop("serving")
    parts = [model, serving["engine"], serving["capabilities"], d["dataset"], d["steering"], d["method"]]
    return json.dumps(parts, sort_keys=True, default=str)


@dataclass
class CellPlan:
    cell: CellConfig
    spec_hash: str
    survey: Survey
    method: Any
    units: list[Unit]
    keys: list[str]  # distinct request keys of the cell, in first-use order


@dataclass
class Plan:
    cells: list[CellPlan]
    #: cells whose planning raised: (cell, spec hash, error)
    failed: list[tuple[CellConfig, str, str]] = field(default_factory=list)
    #: every distinct request of the sweep by key, and the model that answers it
    requests: dict[str, Request] = field(default_factory=dict)
    model_of: dict[str, str] = field(default_factory=dict)
    models: dict[str, ModelConfig] = field(default_factory=dict)
    requests_before_dedup: int = 0

    def counts(self) -> dict[str, Any]:
        per_model: dict[str, dict[str, int]] = {}
        for cp in self.cells:
            m = per_model.setdefault(cp.cell.model.name, {"cells": 0, "units": 0, "requests": 0, "unique": 0})
            m["cells"] += 1
            m["units"] += len(cp.units)
            m["requests"] += sum(len(u.requests) for u in cp.units)
        for model in self.model_of.values():
            per_model[model]["unique"] += 1
        return {
            "cells": len(self.cells) + len(self.failed),
            "cells_planned": len(self.cells),
            "cells_failed": len(self.failed),
            "units": sum(len(cp.units) for cp in self.cells),
            "requests_before_dedup": self.requests_before_dedup,
            "requests": len(self.requests),
            "per_model": per_model,
        }

    def estimate(self) -> dict[str, dict[str, float | None]]:
        """Tokens (about 4 characters each) and cost (from the serving prices) of the distinct requests."""
        out: dict[str, dict[str, float | None]] = {}
        for key, req in self.requests.items():
            name = self.model_of[key]
            est = out.setdefault(name, {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0})
            est["requests"] += 1
            chars = sum(len(m.content) for m in req.messages) + len(req.assistant_prefix)
            est["prompt_tokens"] += chars // 4 + 4 * len(req.messages)
            if isinstance(req, OptionLogprobRequest):
                est["completion_tokens"] += 1
            else:
                est["completion_tokens"] += req.params.max_tokens * req.params.n
        for name, est in out.items():
            prices = _prices(self.models[name])
            est["cost_usd"] = (
                None
                if prices is None
                else est["prompt_tokens"] * prices[0] + est["completion_tokens"] * prices[1]
            )
        return out


def _prices(model: ModelConfig) -> tuple[float, float] | None:
    """Configured prices, else litellm's bundled price table for API models; local engines cost 0."""
    s = model.serving
    if s.input_cost_per_token is not None or s.output_cost_per_token is not None:
        return s.input_cost_per_token or 0.0, s.output_cost_per_token or 0.0
    if s.engine != "litellm":
        return 0.0, 0.0
    from distalign.engines.providers import bundled_prices

    return bundled_prices(model.weights)


def build_plan(
    cells: Sequence[CellConfig], key_fn: Callable[[ModelIdentity, Request], str] | None = None
) -> Plan:
    """Plan every cell; a cell whose planning raises is recorded as failed and the others go on."""
    plan = Plan(cells=[])
    for _ in plan_cells(plan, cells, key_fn):
        pass
    return plan


def plan_cells(
    plan: Plan, cells: Sequence[CellConfig], key_fn: Callable[[ModelIdentity, Request], str] | None = None
) -> Iterator[list[str]]:
    """Plan the cells one by one into ``plan``, yielding after each the keys it added to the sweep, so a
    caller can start the engines that must answer them while the rest is still being planned."""
    rendered: dict[str, list[Unit]] = {}
    _EXAMPLES.clear()
    try:
        for cell in cells:
            yield _plan_one(plan, cell, rendered, key_fn)
    finally:
        _EXAMPLES.clear()


def _plan_one(
    plan: Plan,
    cell: CellConfig,
    rendered: dict[str, list[Unit]],
    key_fn: Callable[[ModelIdentity, Request], str] | None,
) -> list[str]:
    shash = spec_hash(cell)
    try:
        survey = load_dataset(cell.dataset)
        rkey = _render_key(cell)
        if rkey in rendered:
            units = [replace(u, cell=shash) for u in rendered[rkey]]
        else:
            units = rendered[rkey] = plan_cell(cell, survey, key_fn)
        method = cell_method(cell)
    except Exception as exc:  # noqa: BLE001 - one cell's failure must not stop the sweep
        plan.failed.append((cell, shash, f"planning failed: {type(exc).__name__}: {exc}"))
        return []
    keys: dict[str, None] = {}
    new: list[str] = []
    for u in units:
        plan.requests_before_dedup += len(u.requests)
        for k, r in zip(u.keys, u.requests, strict=True):
            keys[k] = None
            if k not in plan.requests:
                plan.requests[k] = r
                plan.model_of[k] = cell.model.name
                new.append(k)
    plan.models.setdefault(cell.model.name, cell.model)
    plan.cells.append(CellPlan(cell, shash, survey, method, units, list(keys)))
    return new
