"""The calibration stage of a sweep cell: ``calibrate_items`` fits and applies the configured calibrator
to a cell's items table and reports calibrated metrics on rows the calibrator never trained on.

Rows gain ``calibrated_probs``, ``calibrated_tv``, ``calibrated_alignment`` and ``split``: ``train`` /
``dev`` / ``test`` (regression), ``in_sample`` (fitted on the evaluated rows, the benchmark paper's
temperature protocol), ``heldout-fold-k`` (cross-fitted temperature) or ``applied`` (a calibrator fitted on
``reference`` rows). The summary metrics use only the evaluation rows (every split but train and dev),
raw and calibrated alike, and ``params["eval_split"]`` names them (e.g. ``test (10%)``).

A row without a prediction (an answer discarded under ``sweep.unparsed: exclude``, the supervision
paper's protocol) is neither trained on nor evaluated: it keeps its split label, gets no calibrated
distribution, and leaves every mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator

from distalign.calibration.figures import reliability_diagram
from distalign.calibration.frame import (
    Padded,
    as_lists,
    cell_groups,
    is_evaluated,
    log_probs,
    padded,
    question_keys,
    scores,
    split_label,
)
from distalign.calibration.regression import CANDIDATES, DistributionRegressor
from distalign.calibration.sampling import SPLIT, split_questions
from distalign.calibration.summary import kambhatla_table
from distalign.calibration.temperature import TemperatureScaler, cross_fit
from distalign.errors import InputError
from distalign.metrics import expected_calibration_error
from distalign.records.config import CalibrationConfig

METHODS: tuple[str, ...] = ("none", "temperature", "regression")
FITS: tuple[str, ...] = ("held_out", "in_sample")
PARAMS: dict[str, frozenset[str]] = {
    "temperature": frozenset({"n_splits"}),
    # curve_families, curve_repeats: the learning curves' calibrator families and draws per training size
    # (sweep report only; see calibration.curves)
    "regression": frozenset({"candidates", "features", "split", "curve_families", "curve_repeats"}),
}


@dataclass(frozen=True)
class FitRecord:
    """A fitted calibrator with what is logged beside it: the rows it is evaluated on (its inputs and the
    human distributions), so the logged score can be recomputed from the logged model."""

    key: str
    model: BaseEstimator
    train_size: int
    dev_score: float
    eval_rows: str  # "test" | "in_sample" | "applied"
    X_eval: np.ndarray
    human_eval: np.ndarray


@dataclass(frozen=True)
class CalibrationOutcome:
    items: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    #: text-valued facts (chosen regressor per cell, fit protocol) for MLflow params
    params: dict[str, str] = field(default_factory=dict)
    models: dict[str, BaseEstimator] = field(default_factory=dict)
    records: dict[str, FitRecord] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict, compare=False)


def _check(cfg: CalibrationConfig) -> None:
    if cfg.name not in METHODS:
        raise InputError(
            f"unknown calibration {cfg.name!r}; known: {', '.join(METHODS)}", where="calibration.name"
        )
    if cfg.fit not in FITS:
        raise InputError(f"unknown fit {cfg.fit!r}; known: {', '.join(FITS)}", where="calibration.fit")
    if cfg.name == "regression" and cfg.fit != "held_out":
        raise InputError("regression calibration is always fitted on a train split", where="calibration.fit")
    unknown = set(cfg.params or {}) - PARAMS.get(cfg.name, frozenset())
    if unknown:
        raise InputError(f"unknown parameter(s) {sorted(unknown)} for {cfg.name}", where="calibration.params")


def _inputs(name: str, items: pd.DataFrame, data: Padded) -> np.ndarray:
    return log_probs(items, data) if name == "temperature" else data.pred


def _make(cfg: CalibrationConfig, seed: int) -> BaseEstimator:
    if cfg.name == "temperature":
        return TemperatureScaler()
    p = cfg.params or {}
    return DistributionRegressor(
        tuple(p.get("candidates", CANDIDATES)), str(p.get("features", "plain")), seed
    )


def _fit_cell(
    cfg: CalibrationConfig, key: str, X: np.ndarray, data: Padded, qs: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, FitRecord, dict[str, float]]:
    """Calibrated rows, split labels, the record of the deployable calibrator and per-cell facts."""
    n = len(data)
    fit = data.trainable & np.isfinite(X).any(axis=1)
    if cfg.name == "regression":
        split = split_questions(qs, seed, tuple((cfg.params or {}).get("split", SPLIT)))
        train, dev = fit & (split == "train"), fit & (split == "dev")
        test = data.has_pred & (split == "test")
        if not train.any():
            raise InputError(f"cell {key}: no parsed rows in the train split", where="calibration")
        model = _make(cfg, seed).fit(X[train], data.human[train], X[dev], data.human[dev])
        record = FitRecord(key, model, int(train.sum()), model.dev_mse_, "test", X[test], data.human[test])
        return model.predict_proba(X), split, record, {"dev_score": model.dev_mse_}
    if not fit.any():
        raise InputError(f"cell {key}: no parsed rows to fit a temperature on", where="calibration")
    model = TemperatureScaler().fit(X[fit], data.human[fit])
    record = FitRecord(
        key, model, int(fit.sum()), float("nan"), "in_sample", X[data.has_pred], data.human[data.has_pred]
    )
    if cfg.fit == "in_sample":
        return (
            model.predict_proba(X),
            np.full(n, "in_sample", dtype=object),
            record,
            {"temperature": model.tau_},
        )
    out, folds, taus = cross_fit(
        X, data.human, qs, data.trainable, int((cfg.params or {}).get("n_splits", 5))
    )
    split = np.array([f"heldout-fold-{k}" for k in folds], dtype=object)
    facts = {"temperature": model.tau_, "temperature_fold_min": min(taus), "temperature_fold_max": max(taus)}
    return out, split, record, facts


def _reference_fit(
    cfg: CalibrationConfig, reference: pd.DataFrame, items: pd.DataFrame, seed: int
) -> tuple[BaseEstimator, FitRecord]:
    """One calibrator fitted on ``reference`` minus any question the evaluated items also contain."""
    shared = set(zip(items["dataset"], items["item_id"], strict=True))
    ref = reference[
        [(d, q) not in shared for d, q in zip(reference["dataset"], reference["item_id"], strict=True)]
    ]
    ref = ref.reset_index(drop=True)
    if ref.empty:
        raise InputError(
            "the reference rows share every question with the evaluated items", where="reference"
        )
    data = padded(ref)
    X = _inputs(cfg.name, ref, data)
    fit = data.trainable & np.isfinite(X).any(axis=1)
    if cfg.name == "regression":
        split = split_questions(question_keys(ref), seed, (0.9, 0.1, 0.0))
        dev = split == "dev"
        model = _make(cfg, seed).fit(
            X[fit & ~dev], data.human[fit & ~dev], X[fit & dev], data.human[fit & dev]
        )
        dev_score = model.dev_mse_
    else:
        model, dev_score = TemperatureScaler().fit(X[fit], data.human[fit]), float("nan")
    return model, FitRecord("reference", model, int(fit.sum()), dev_score, "applied", X[:0], data.human[:0])


def calibrate_items(
    items: pd.DataFrame,
    cfg: CalibrationConfig,
    seed: int = 0,
    reference: pd.DataFrame | None = None,
    *,
    on_cell: Callable[[str], None] | None = None,
) -> CalibrationOutcome:
    """Fit and apply ``cfg`` per cell (dataset x model x method x steering present in ``items``).

    With ``reference``, a single calibrator is fitted on the reference rows (questions shared with ``items``
    removed) and applied to every row of ``items`` (split ``applied``). ``on_cell(name)`` is called after
    each cell's fit (progress reporting).
    """
    _check(cfg)
    if cfg.name == "none":
        return CalibrationOutcome(items=items)
    items = items.reset_index(drop=True)
    data = padded(items)
    X = _inputs(cfg.name, items, data)
    calibrated = np.full(data.human.shape, np.nan)
    split = np.empty(len(items), dtype=object)
    records: dict[str, FitRecord] = {}
    metrics: dict[str, float] = {}
    params: dict[str, str] = {"calibration": cfg.name, "calibration.fit": cfg.fit}
    if reference is not None:
        model, rec = _reference_fit(cfg, reference, items, seed)
        calibrated, split[:] = model.predict_proba(X), "applied"
        params["eval_split.reference"] = split_label(split, question_keys(items))
        rows = data.has_pred
        records["reference"] = FitRecord(
            "reference", model, rec.train_size, rec.dev_score, "applied", X[rows], data.human[rows]
        )
    else:
        qs = question_keys(items)
        for key, rows in cell_groups(items):
            sub = data.take(rows)
            out, labels, rec, facts = _fit_cell(cfg, key, X[rows], sub, qs[rows], seed)
            calibrated[rows], split[rows], records[key] = out, labels, rec
            metrics |= {f"{name}.{key}": v for name, v in facts.items()}
            params[f"eval_split.{key}"] = split_label(labels, qs[rows])
            if on_cell is not None:
                on_cell(key)
    return _outcome(items, data, calibrated, split, records, metrics, params, cfg.name)


def apply_calibrator(
    items: pd.DataFrame, model: BaseEstimator, label: str = "calibrated"
) -> CalibrationOutcome:
    """Apply an already fitted (e.g. logged) calibrator to every row of ``items`` (split ``applied``)."""
    items = items.reset_index(drop=True)
    data = padded(items)
    kind = "temperature" if getattr(model, "input_kind", "probs") == "logprobs" else "regression"
    X = _inputs(kind, items, data)
    split = np.full(len(items), "applied", dtype=object)
    record = FitRecord(
        "applied",
        model,
        int(getattr(model, "n_train_", 0)),
        float(getattr(model, "dev_mse_", np.nan)),
        "applied",
        X[data.has_pred],
        data.human[data.has_pred],
    )
    params = {"calibration": kind, "calibration.fit": "applied", "eval_split.applied": "applied (100%)"}
    return _outcome(items, data, model.predict_proba(X), split, {"applied": record}, {}, params, label)


def _outcome(
    items: pd.DataFrame,
    data: Padded,
    calibrated: np.ndarray,
    split: np.ndarray,
    records: dict[str, FitRecord],
    metrics: dict[str, float],
    params: dict[str, str],
    label: str,
) -> CalibrationOutcome:
    """Scores, summary metrics and the reliability figure, on the evaluation rows only."""
    calibrated = np.where(data.mask & data.has_pred[:, None], calibrated, np.nan)
    tv, alignment = scores(calibrated, data)
    raw_tv, raw_alignment = scores(data.pred, data)
    out = items.copy()
    for column, raw in (("tv", raw_tv), ("alignment", raw_alignment)):
        if column not in out.columns:  # a table scored elsewhere has them already; keep its values
            out[column] = raw
    out["calibrated_probs"] = as_lists(calibrated, data)
    out["calibrated_tv"], out["calibrated_alignment"], out["split"] = tv, alignment, split
    ev = is_evaluated(split) & data.has_pred
    metrics = metrics | _summary(data, calibrated, ev, tv, alignment, raw_tv, raw_alignment, records)
    chosen = {k: r.model.chosen_ for k, r in records.items() if hasattr(r.model, "chosen_")}
    params = params | {f"chosen_regressor.{k}": v for k, v in chosen.items()}
    if len(records) == 1:
        key = next(iter(records))
        # a single fit needs no per-fit names: its facts go under their plain names only
        keyed = [k for k in metrics if k.endswith(f".{key}")]
        metrics |= {k.split(".", 1)[0]: metrics.pop(k) for k in keyed}
        if key in chosen:
            params["chosen_regressor"] = chosen[key]
        params["eval_split"] = params.pop(f"eval_split.{key}")
    curves = {"raw": data.pred[ev], label: calibrated[ev]}
    figures = {"reliability": reliability_diagram(data.human[ev], data.mask[ev], curves)}
    models = {k: r.model for k, r in records.items()}
    return CalibrationOutcome(out, metrics, params, models, records, figures)


def _mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def _summary(
    data: Padded,
    calibrated: np.ndarray,
    ev: np.ndarray,
    tv: np.ndarray,
    alignment: np.ndarray,
    raw_tv: np.ndarray,
    raw_alignment: np.ndarray,
    records: dict[str, FitRecord],
) -> dict[str, float]:
    m = data.mask[ev]
    return {
        "calibrated_tv_mean": _mean(tv[ev]),
        "calibrated_alignment_mean": _mean(alignment[ev]),
        "raw_tv_test_mean": _mean(raw_tv[ev]),
        "raw_alignment_test_mean": _mean(raw_alignment[ev]),
        "ece_before": expected_calibration_error(np.where(m, data.pred[ev], 0.0), data.human[ev], m),
        "ece_after": expected_calibration_error(np.where(m, calibrated[ev], 0.0), data.human[ev], m),
        "eval_size": float(ev.sum()),
        "train_size": float(sum(r.train_size for r in records.values())),
        "dev_score": _mean(np.array([r.dev_score for r in records.values()], dtype=float)),
    }


__all__ = ["CalibrationOutcome", "FitRecord", "apply_calibrator", "calibrate_items", "kambhatla_table"]
