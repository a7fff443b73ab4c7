"""A cell whose requests are all answered becomes a ``CellResult``: parse each unit, score, summarise.

Parsing and scoring are the pure functions of ``distalign.methods`` and ``distalign.report``; this module
only joins answers to units and units to the scored rows, and counts what the cell cost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Set
from typing import Any

import numpy as np
import pandas as pd

from distalign.calibration.stage import calibrate_items
from distalign.methods.parsed import Parsed
from distalign.metrics.bootstrap import bootstrap_mean
from distalign.metrics.extraction import extraction_rate
from distalign.records.config import SweepSettings
from distalign.records.engine import OptionLogprobResult
from distalign.records.results import ITEM_COLUMNS, CellResult
from distalign.scoring.predictions import META_COLUMNS, Resolved
from distalign.scoring.score import SurveyTable, score_resolved
from distalign.survey.model import Survey
from distalign.sweep.plan import CellPlan, Unit


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


def resolved_units(cp: CellPlan, answers: Mapping[str, Any], width: int) -> tuple[Any, list[dict[str, str]]]:
    """Each unit parsed into the scorer's columnar record (row = 1-based unit index, probabilities over the
    dataset's options padded to ``width``), plus each unit's prompt hash and raw responses."""
    cell, survey = cp.cell.config, cp.cell.survey
    meta, extra = [], []
    probs = np.zeros((len(cp.units), width))
    parsed_ok = np.zeros(len(cp.units), dtype=bool)
    for i, unit in enumerate(cp.units):
        results = [answers[k] for k in unit.keys]
        parsed = _parse(cp.cell.method, unit, results)
        aligned = _aligned(parsed, unit, survey.items[unit.item_id].options)
        if aligned is not None:
            probs[i, : len(aligned)] = aligned
            parsed_ok[i] = True
        meta.append(
            {
                "row": i + 1,
                "model": cell.model.name,
                "method": cell.method.name,
                "steering": cell.steering.name,
                "dataset": survey.name,
                "item_id": unit.item_id,
                "attribute": unit.attribute,
                "group": unit.group,
                "status": parsed.status,
                "detail": parsed.detail,
                "n_total": parsed.n_total,
                "n_valid": parsed.n_valid,
            }
        )
        item = survey.items[unit.item_id]
        extra.append(
            {
                "prompt_hash": unit.prompt.prompt_hash,
                "responses": _response_json(unit, results),
                "ordinal": list(item.ordinal),
                "logprobs": _option_logprobs(unit, results, item.options),
                "example_set": unit.example_set,
            }
        )
    frame = pd.DataFrame(meta, columns=list(META_COLUMNS))
    return Resolved(meta=frame, probs=probs, parsed=parsed_ok), extra


def items_table(
    cp: CellPlan, answers: Mapping[str, Any], settings: SweepSettings
) -> tuple[pd.DataFrame, float]:
    """The cell's scored rows (``ITEM_COLUMNS``) and its extraction rate over units."""
    table = _table(cp.cell.survey)
    resolved, extra = resolved_units(cp, answers, table.human.shape[1])
    scored = score_resolved(resolved, table, settings.unparsed)
    idx = scored["row"].to_numpy(dtype=int) - 1
    scored["prompt_hash"] = [extra[i]["prompt_hash"] for i in idx]
    scored["responses"] = [extra[i]["responses"] for i in idx]
    scored["ordinal"] = [extra[i]["ordinal"] for i in idx]
    scored["logprobs"] = [extra[i]["logprobs"] for i in idx]
    scored["example_set"] = [extra[i]["example_set"] for i in idx]
    scored = scored.rename(columns={"pred": "pred_probs", "human": "human_probs"})
    for col in ("pred_probs", "human_probs"):
        scored[col] = [None if v is None else [float(x) for x in v] for v in scored[col]]
    return scored[list(ITEM_COLUMNS)].reset_index(drop=True), extraction_rate(
        resolved.meta["status"].tolist()
    )


def _result(
    cp: CellPlan,
    status: Any,
    error: str | None,
    items: pd.DataFrame,
    metrics: dict[str, float],
    outcome: Any = None,
) -> CellResult:
    return CellResult(cp.spec_hash, cp.cell.config, status, error, items, metrics, outcome, cp.cell.content)


def score_cell(
    cp: CellPlan,
    answers: Mapping[str, Any],
    sent: Set[str],
    settings: SweepSettings,
    wall_time_s: float,
) -> CellResult:
    items, rate = items_table(cp, answers, settings)
    tv = items["tv"].to_numpy(dtype=float)
    tv = tv[np.isfinite(tv)]
    ci = bootstrap_mean(tv, n_resamples=settings.n_resamples, seed=settings.seed)
    alignment = items["alignment"].to_numpy(dtype=float)
    usage = [answers[k].usage for k in cp.keys]
    n_sent = sum(1 for k in cp.keys if k in sent)
    metrics = {
        "tv_mean": ci.mean,
        "tv_ci_low": ci.low,
        "tv_ci_high": ci.high,
        "alignment_mean": float(np.nanmean(alignment)) if np.isfinite(alignment).any() else float("nan"),
        "extraction_rate": rate,
        "requests": float(len(cp.keys)),
        "requests_sent": float(n_sent),
        "cache_hits": float(len(cp.keys) - n_sent),
        "prompt_tokens": float(sum(u.prompt_tokens for u in usage)),
        "completion_tokens": float(sum(u.completion_tokens for u in usage)),
        "cost_usd": float(sum(u.cost_usd for u in usage)),
        "wall_time_s": wall_time_s,
    }
    errors = [answers[k].error for k in cp.keys if answers[k].error is not None]
    if errors:
        # Logged with everything it has, but not finished: failed answers are never stored, so a rerun
        # re-sends exactly those requests and finishes the cell.
        metrics["failed_requests"] = float(len(errors))
        error = f"{len(errors)} of {len(cp.keys)} requests failed (first: {errors[0]})"
        return _result(cp, "failed", error, items, metrics)
    if cp.cell.config.calibration.name == "none":
        return CellResult(
            cp.spec_hash, cp.cell.config, "finished", None, items, metrics, content=cp.cell.content
        )
    return _calibrated(cp, items, metrics, settings)


def _calibrated(
    cp: CellPlan, items: pd.DataFrame, metrics: dict[str, float], settings: SweepSettings
) -> CellResult:
    """Calibrated metrics are logged beside the raw ones. A calibration that cannot be fitted (too few
    questions, say) fails the cell but keeps its raw items and metrics, so nothing computed is lost."""
    try:
        outcome = calibrate_items(items, cp.cell.config.calibration, seed=settings.seed)
    except Exception as exc:  # noqa: BLE001 - recorded on the cell, the sweep goes on
        error = f"calibration failed: {type(exc).__name__}: {exc}"
        return _result(cp, "failed", error, items, metrics)
    merged = {**metrics, **{k: float(v) for k, v in outcome.metrics.items()}}
    calibrated = outcome.items.assign(calibration=cp.cell.config.calibration.name)
    return _result(cp, "finished", None, calibrated, merged, outcome)
