"""Answered units become compact rows, and a cell whose units are all parsed becomes a ``CellResult``.

A unit is parsed the moment its last request is answered (``parse_unit``), so the sweep keeps a few hundred
bytes per prompt instead of the prompt itself; a finished cell's rows are scored at once (``score_cell``).
Parsing and scoring are the pure functions of ``distalign.methods`` and ``distalign.scoring``; this module
only joins answers to units and rows to the scored table, and counts what the cell cost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from distalign.calibration.stage import calibrate_items
from distalign.methods.parsed import Parsed
from distalign.records.config import SweepSettings
from distalign.records.engine import OptionLogprobResult
from distalign.records.results import ITEM_COLUMNS, CellResult
from distalign.scoring.predictions import META_COLUMNS, Resolved
from distalign.scoring.scores import cell_scores, score_resolved
from distalign.scoring.table import SurveyTable
from distalign.survey.model import Survey
from distalign.sweep.cells import Cell
from distalign.sweep.plan import Unit


def _response_json(unit: Unit, results: list[Any]) -> str:
    out = []
    for req, res in zip(unit.requests, results, strict=True):
        if res.error is not None:
            out.append({"error": res.error})
        elif isinstance(res, OptionLogprobResult):
            out.append({"candidates": list(req.candidates), "logprobs": list(res.logprobs)})
        else:
            out.append({"texts": list(res.texts)})
    return json.dumps(out, ensure_ascii=False)


def _option_logprobs(unit: Unit, results: list[Any], options: tuple[str, ...]) -> list[float | None] | None:
    """The raw option log-probs in the dataset's option order (temperature scaling needs logits, not the
    renormalised distribution); ``None`` for a method that asks for none."""
    if len(results) != 1 or not isinstance(results[0], OptionLogprobResult) or results[0].error is not None:
        return None
    by_label = dict(zip(unit.prompt.labels, results[0].logprobs, strict=False))
    return [by_label.get(o) for o in options]


def _parse(method: Any, unit: Unit, results: list[Any]) -> Parsed:
    try:
        return method.parse(unit.prompt, results)
    except Exception as exc:  # noqa: BLE001 - parsers must not raise; if one does, the unit is unparsed
        return Parsed.unparsed(f"parser raised {type(exc).__name__}: {exc}", n_total=len(results))


def _aligned(parsed: Parsed, unit: Unit, options: tuple[str, ...]) -> list[float] | None:
    """The parsed distribution (over the options as shown) in the dataset's option order."""
    if parsed.probs is None:
        return None
    labels = tuple(unit.prompt.labels)
    if labels == options:
        return [float(p) for p in parsed.probs]
    out = np.zeros(len(options))
    index = {label: i for i, label in enumerate(options)}
    for label, p in zip(labels, parsed.probs, strict=True):
        out[index[label]] += p
    return out.tolist()


_TABLES: dict[str, SurveyTable] = {}


def _table(survey: Survey) -> SurveyTable:
    """The padded human distributions of a survey, built once however many cells use it."""
    hit = _TABLES.get(survey.digest)
    if hit is None:
        if len(_TABLES) > 16:
            _TABLES.clear()
        hit = _TABLES[survey.digest] = SurveyTable.build({survey.name: survey})
    return hit


@dataclass(frozen=True)
class UnitRow:
    """A parsed unit, all a cell keeps of it once answered (its prompt and requests are let go)."""

    item_id: str
    attribute: str | None
    group: str | None
    parsed: Parsed
    probs: list[float] | None  # over the dataset's options
    prompt_hash: str
    responses: str
    options: tuple[str, ...]  # the labels as shown to the model
    letters: tuple[str, ...]  # the keys it answered with, in the same order (A, B, ... or 1, 2, ...)
    logprobs: list[float | None] | None
    example_set: int | None


def parse_unit(cell: Cell, unit: Unit, results: list[Any]) -> UnitRow:
    """Parse one unit's answers (pure: the same results give the same row)."""
    parsed = _parse(cell.method, unit, results)
    options = cell.survey.items[unit.item_id].options
    return UnitRow(
        unit.item_id,
        unit.attribute,
        unit.group,
        parsed,
        _aligned(parsed, unit, options),
        unit.prompt.prompt_hash,
        _response_json(unit, results),
        tuple(unit.prompt.labels),
        tuple(unit.prompt.letters),
        _option_logprobs(unit, results, options),
        unit.example_set,
    )


@dataclass
class KeyStats:
    """What a cell's distinct requests cost: how many, how many this sweep sent, tokens, cost, failures."""

    requests: int = 0
    sent: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    errors: list[str] = field(default_factory=list)
    batch_ids: set[str] = field(default_factory=set)

    def add(self, result: Any, sent: bool, batch_id: str | None = None) -> None:
        if batch_id is not None:
            self.batch_ids.add(batch_id)
        self.requests += 1
        self.sent += int(sent)
        self.prompt_tokens += result.usage.prompt_tokens
        self.completion_tokens += result.usage.completion_tokens
        self.cost_usd += result.usage.cost_usd
        if result.error is not None:
            self.errors.append(result.error)


def resolved_rows(cell: Cell, rows: Sequence[UnitRow], width: int) -> Resolved:
    """The parsed units as the scorer's columnar record (row = 1-based unit index, probabilities over the
    dataset's options padded to ``width``)."""
    config = cell.config
    probs = np.zeros((len(rows), width))
    parsed_ok = np.zeros(len(rows), dtype=bool)
    for i, r in enumerate(rows):
        if r.probs is not None:
            probs[i, : len(r.probs)] = r.probs
            parsed_ok[i] = True
    meta = pd.DataFrame(
        {
            "row": np.arange(1, len(rows) + 1),
            "model": config.model.name,
            "method": config.method.name,
            "steering": config.steering.name,
            "dataset": cell.survey.name,
            "item_id": [r.item_id for r in rows],
            "attribute": [r.attribute for r in rows],
            "group": [r.group for r in rows],
            "status": [r.parsed.status for r in rows],
            "detail": [r.parsed.detail for r in rows],
            "n_total": [r.parsed.n_total for r in rows],
            "n_valid": [r.parsed.n_valid for r in rows],
        },
        columns=list(META_COLUMNS),
    )
    return Resolved(meta=meta, probs=probs, parsed=parsed_ok)


def items_table(cell: Cell, rows: Sequence[UnitRow], settings: SweepSettings) -> pd.DataFrame:
    """The cell's scored rows: ``ITEM_COLUMNS`` and the scorer's ``row`` (the unit: what the extraction
    rate counts)."""
    table = _table(cell.survey)
    resolved = resolved_rows(cell, rows, table.human.shape[1])
    scored = score_resolved(resolved, table, settings.unparsed)
    idx = scored["row"].to_numpy(dtype=int) - 1
    scored["prompt_hash"] = [rows[i].prompt_hash for i in idx]
    scored["responses"] = [rows[i].responses for i in idx]
    scored["options"] = [list(rows[i].options) for i in idx]
    scored["letters"] = [list(rows[i].letters) for i in idx]
    scored["ordinal"] = [list(cell.survey.items[rows[i].item_id].ordinal) for i in idx]
    scored["logprobs"] = [rows[i].logprobs for i in idx]
    scored["example_set"] = [rows[i].example_set for i in idx]
    scored = scored.rename(columns={"pred": "pred_probs", "human": "human_probs"})
    for col in ("pred_probs", "human_probs"):
        scored[col] = [None if v is None else [float(x) for x in v] for v in scored[col]]
    return scored[["row", *ITEM_COLUMNS]].reset_index(drop=True)


def _result(
    cell: Cell,
    status: Any,
    error: str | None,
    items: pd.DataFrame,
    metrics: dict[str, float],
    outcome: Any = None,
) -> CellResult:
    return CellResult(cell.spec_hash, cell.config, status, error, items, metrics, outcome, cell.content)


def score_cell(
    cell: Cell, rows: Sequence[UnitRow], stats: KeyStats, settings: SweepSettings, wall_time_s: float
) -> CellResult:
    result = _score_cell(cell, rows, stats, settings, wall_time_s)
    return replace(result, batch_ids=tuple(sorted(stats.batch_ids))) if stats.batch_ids else result


def _score_cell(
    cell: Cell, rows: Sequence[UnitRow], stats: KeyStats, settings: SweepSettings, wall_time_s: float
) -> CellResult:
    scored = items_table(cell, rows, settings)
    items = scored[list(ITEM_COLUMNS)]
    metrics = {
        **cell_scores(scored, n_resamples=settings.n_resamples, seed=settings.seed),
        "requests": float(stats.requests),
        "requests_sent": float(stats.sent),
        "cache_hits": float(stats.requests - stats.sent),
        "prompt_tokens": float(stats.prompt_tokens),
        "completion_tokens": float(stats.completion_tokens),
        "cost_usd": float(stats.cost_usd),
        "wall_time_s": wall_time_s,
    }
    if stats.errors:
        # Logged with everything it has, but not finished: failed answers are never stored, so a rerun
        # re-sends exactly those requests and finishes the cell.
        metrics["failed_requests"] = float(len(stats.errors))
        error = f"{len(stats.errors)} of {stats.requests} requests failed (first: {stats.errors[0]})"
        return _result(cell, "failed", error, items, metrics)
    if cell.config.calibration.name == "none":
        return _result(cell, "finished", None, items, metrics)
    return _calibrated(cell, items, metrics, settings)


def _calibrated(
    cell: Cell, items: pd.DataFrame, metrics: dict[str, float], settings: SweepSettings
) -> CellResult:
    """Calibrated metrics are logged beside the raw ones. A calibration that cannot be fitted (too few
    questions, say) fails the cell but keeps its raw items and metrics, so nothing computed is lost."""
    try:
        outcome = calibrate_items(items, cell.config.calibration, seed=settings.seed)
    except Exception as exc:  # noqa: BLE001 - recorded on the cell, the sweep goes on
        error = f"calibration failed: {type(exc).__name__}: {exc}"
        return _result(cell, "failed", error, items, metrics)
    merged = {**metrics, **{k: float(v) for k, v in outcome.metrics.items()}}
    calibrated = outcome.items.assign(calibration=cell.config.calibration.name)
    return _result(cell, "finished", None, calibrated, merged, outcome)
