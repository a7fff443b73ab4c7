"""Temperature scaling of log-p distributions (Meister et al. 2024, App. A.2).

One temperature per dataset x steering mode rescales the option log-probs, ``softmax(logp / tau)``, with
tau chosen to minimise the mean TV to the human distributions. The paper fits tau on the very items it
evaluates (``in_sample``, kept for reproduction); the default ``held_out`` cross-fits by question, so each
row is scored with a tau that never saw its question (any group).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator
from sklearn.model_selection import GroupKFold

from distalign.errors import InputError

LOG_TAU_BOUNDS: tuple[float, float] = (float(np.log(1e-2)), float(np.log(1e2)))


def scaled_softmax(logp: np.ndarray, tau: float) -> np.ndarray:
    """``softmax(logp / tau)`` per row over its finite entries; NaN entries (padding, missing options) get
    probability 0, and a row with no finite entry stays all zero."""
    x = np.asarray(logp, dtype=float) / tau
    valid = np.isfinite(x)
    top = np.max(np.where(valid, x, -np.inf), axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.where(valid, np.exp(np.where(valid, x, 0.0) - top), 0.0)
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def mean_tv(logp: np.ndarray, human: np.ndarray, tau: float) -> float:
    return float(0.5 * np.abs(scaled_softmax(logp, tau) - human).sum(axis=-1).mean())


class TemperatureScaler(BaseEstimator):
    """``fit(X=logp rows, y=human rows)`` then ``predict_proba(X)``; rows padded with NaN.

    The TV objective is piecewise smooth and may have several local minima, so a coarse grid over log tau
    picks the basin and a bounded Brent search refines it.
    """

    input_kind = "logprobs"

    def __init__(self, log_tau_bounds: tuple[float, float] = LOG_TAU_BOUNDS, grid_size: int = 41) -> None:
        self.log_tau_bounds = log_tau_bounds
        self.grid_size = grid_size

    def fit(self, X: np.ndarray, y: np.ndarray) -> TemperatureScaler:
        logp, human = np.asarray(X, dtype=float), np.nan_to_num(np.asarray(y, dtype=float))
        keep = np.isfinite(logp).any(axis=1)
        if logp.shape != human.shape or not keep.any():
            raise InputError("temperature scaling needs log-probs aligned with human rows", where="X")
        logp, human = logp[keep], human[keep]
        lo, hi = self.log_tau_bounds
        grid = np.linspace(lo, hi, self.grid_size)
        losses = [mean_tv(logp, human, float(np.exp(g))) for g in grid]
        best = int(np.argmin(losses))
        a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
        res = minimize_scalar(
            lambda g: mean_tv(logp, human, float(np.exp(g))), bounds=(a, b), method="bounded"
        )
        log_tau = float(res.x) if res.fun <= losses[best] else float(grid[best])
        self.tau_ = float(np.exp(log_tau))
        self.train_tv_ = mean_tv(logp, human, self.tau_)
        self.n_train_ = int(keep.sum())
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return scaled_softmax(np.asarray(X, dtype=float), self.tau_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X)


def cross_fit(
    logp: np.ndarray, human: np.ndarray, questions: np.ndarray, trainable: np.ndarray, n_splits: int = 5
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Held-out predictions: ``(probs, fold of each row, tau per fold)``.

    Folds are by question (``GroupKFold``), so no row is scored with a tau fitted on any row of its own
    question. Only ``trainable`` rows (parsed answers) enter a fit. Rows without log-probs (answers
    discarded under the ``exclude`` policy) neither shape the folds nor get a prediction (all zero), so a
    discarded answer is as if absent; they carry their question's fold.
    """
    usable = np.flatnonzero(np.isfinite(logp).any(axis=1))
    uniq = np.unique(questions[usable])
    if uniq.size < 2:
        raise InputError("held-out temperature scaling needs at least 2 questions", where="calibration.fit")
    folds = np.zeros(len(human), dtype=int)
    out = np.zeros_like(human, dtype=float)
    taus: list[float] = []
    splitter = GroupKFold(n_splits=min(n_splits, uniq.size))
    for k, (tr, te) in enumerate(splitter.split(usable, groups=questions[usable])):
        train, test = usable[tr], usable[te]
        fit_rows = train[trainable[train]]
        if fit_rows.size == 0:
            raise InputError(f"fold {k} has no parsed rows to fit a temperature on", where="calibration.fit")
        scaler = TemperatureScaler().fit(logp[fit_rows], human[fit_rows])
        out[test], folds[test] = scaler.predict_proba(logp[test]), k
        taus.append(scaler.tau_)
    fold_of = dict(zip(questions[usable].tolist(), folds[usable].tolist(), strict=True))
    missing = np.setdiff1d(np.arange(len(human)), usable)
    folds[missing] = [fold_of.get(q, 0) for q in questions[missing].tolist()]
    return out, folds, taus
