"""Logging fitted calibrators to MLflow so later sweeps can reuse them (``distalign calibrate --model-uri``).

Each calibrator becomes an MLflow 3 LoggedModel (``mlflow.sklearn.log_model(..., name=...)``) linked to
the cell's run, with its training size, dev score and the mean TV it scores on its evaluation rows; that
score is recomputed from the model exactly as logged, so loading the model back reproduces it.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from distalign.calibration.stage import CalibrationOutcome, FitRecord


def safe_name(key: str) -> str:
    """An MLflow model/metric name: letters, digits, ``_ - .`` only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", key).strip("-") or "calibrator"


def eval_tv(model: Any, X: np.ndarray, human: np.ndarray) -> float:
    """Mean TV of the model's calibrated rows against the human rows (NaN with no rows)."""
    if len(X) == 0:
        return float("nan")
    return float(np.mean(0.5 * np.abs(model.predict_proba(X) - np.nan_to_num(human)).sum(axis=1)))


def _requirements() -> list[str]:
    """Pinned explicitly: MLflow's requirement inference imports the model in a subprocess (slow)."""
    from importlib.metadata import version

    return [f"scikit-learn=={version('scikit-learn')}", f"numpy=={version('numpy')}", "distalign"]


def _log_one(record: FitRecord, prefix: str) -> str:
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    name = safe_name(f"{prefix}{record.key}")
    X = np.asarray(
        record.X_eval if len(record.X_eval) else np.full((1, record.human_eval.shape[1] or 1), np.nan)
    )
    example = X[:2]
    score = eval_tv(record.model, record.X_eval, record.human_eval)
    info = mlflow.sklearn.log_model(
        record.model,
        name=name,
        signature=infer_signature(example, record.model.predict_proba(example)),
        serialization_format="cloudpickle",
        pip_requirements=_requirements(),
        params={
            "train_size": str(record.train_size),
            "dev_score": str(record.dev_score),
            "eval_rows": record.eval_rows,
            "input_kind": str(getattr(record.model, "input_kind", "probs")),
        },
    )
    mlflow.log_params({f"{name}.train_size": record.train_size, f"{name}.eval_rows": record.eval_rows})
    metrics = {f"{name}.dev_score": record.dev_score, f"{name}.eval_tv_mean": score}
    for key, value in metrics.items():
        if np.isfinite(value):
            mlflow.log_metric(key, value, model_id=info.model_id)
    return info.model_uri


def log_calibrators(
    client_or_none: Any,
    run_id: str,
    outcome: CalibrationOutcome,
    tracking_uri: str | None = None,
    prefix: str = "",
) -> dict[str, str]:
    """Log every calibrator of ``outcome`` into the existing run ``run_id``; returns key -> model URI.

    The store must already be initialised (the driver does that). The tracking URI is taken from
    ``tracking_uri``, else from the client, else MLflow's current one. The run is re-entered with
    ``mlflow.start_run(run_id=...)``, which leaves it FINISHED on exit when it was not active before.
    """
    import mlflow

    uri = tracking_uri or getattr(client_or_none, "tracking_uri", None)
    if uri:
        mlflow.set_tracking_uri(uri)
    if not outcome.records:
        return {}
    uris: dict[str, str] = {}
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        for key, record in outcome.records.items():
            uris[key] = _log_one(record, prefix)
        return uris
    with mlflow.start_run(run_id=run_id):
        for key, record in outcome.records.items():
            uris[key] = _log_one(record, prefix)
    return uris


def load_calibrator(uri: str, tracking_uri: str | None = None) -> Any:
    """A logged calibrator back as its sklearn-compatible estimator."""
    import mlflow
    import mlflow.sklearn

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    return mlflow.sklearn.load_model(uri)
