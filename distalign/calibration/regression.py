"""Supervised regression calibration (Kambhatla et al. 2025, §3.6).

Every option of every training distribution is one pair (LLM probability -> human probability). A
regressor among linear, lasso, ridge and random forest (each with a small grid) is chosen by MSE on a dev
split; its outputs are clipped at 0 and renormalised per distribution (a row whose calibrated mass is 0
keeps its raw distribution). Splits are 80/10/10 *by question*, so no question is in two of them.

Features: ``plain`` (the paper's variant) is the option's LLM probability alone; ``position`` adds the
option's relative position ``i / (N - 1)`` and ``1 / N``, which lets the regressor learn that e.g. a 0.25
on a 4-option question means something different from a 0.25 on a binary one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import Pipeline

from distalign.errors import InputError

FEATURES: tuple[str, ...] = ("plain", "position")
CANDIDATES: tuple[str, ...] = ("linear", "lasso", "ridge", "random_forest")


def candidate_grid(names: Sequence[str] = CANDIDATES, seed: int = 0) -> list[dict[str, list[Any]]]:
    """A ``GridSearchCV`` grid over the regressor step itself (one sub-grid per candidate)."""
    grids = {
        "linear": {"reg": [LinearRegression()]},
        "lasso": {"reg": [Lasso(max_iter=5000)], "reg__alpha": [1e-4, 1e-3, 1e-2]},
        "ridge": {"reg": [Ridge()], "reg__alpha": [0.1, 1.0, 10.0]},
        "random_forest": {
            "reg": [RandomForestRegressor(n_estimators=50, random_state=seed, n_jobs=1)],
            "reg__max_depth": [3, 6],
            "reg__min_samples_leaf": [5, 20],
        },
    }
    unknown = [n for n in names if n not in grids]
    if unknown or not names:
        raise InputError(
            f"unknown regressor {unknown or names!r}; known: {', '.join(grids)}", where="candidates"
        )
    return [grids[n] for n in names]


def regressor_name(reg: Any) -> str:
    return {
        LinearRegression: "linear",
        Lasso: "lasso",
        Ridge: "ridge",
        RandomForestRegressor: "random_forest",
    }.get(type(reg), type(reg).__name__)


def option_features(pred: np.ndarray, features: str = "plain") -> tuple[np.ndarray, np.ndarray]:
    """``(pairs features, (row, option) mask)`` for the valid (non-NaN) options of padded rows."""
    if features not in FEATURES:
        raise InputError(f"unknown features {features!r}; known: {', '.join(FEATURES)}", where="features")
    pred = np.asarray(pred, dtype=float)
    valid = np.isfinite(pred)
    cols = [pred[valid]]
    if features == "position":
        n = valid.sum(axis=1, keepdims=True)
        pos = np.broadcast_to(np.arange(pred.shape[1])[None, :], pred.shape) / np.maximum(n - 1, 1)
        cols += [pos[valid], np.broadcast_to(1.0 / np.maximum(n, 1), pred.shape)[valid]]
    return np.column_stack(cols), valid


def renormalised(raw: np.ndarray, calibrated: np.ndarray) -> np.ndarray:
    """Clip at 0 and renormalise each row over its valid options; a row with no mass keeps ``raw``."""
    valid = np.isfinite(raw)
    c = np.where(valid, np.clip(np.nan_to_num(calibrated), 0.0, None), 0.0)
    total = c.sum(axis=1, keepdims=True)
    fallback = np.where(valid, raw, 0.0)
    return np.where(total > 0, c / np.where(total > 0, total, 1.0), fallback)


class DistributionRegressor(BaseEstimator):
    """``fit(X=pred rows, y=human rows, X_dev, y_dev)`` then ``predict_proba(X)``; rows padded with NaN.

    Model selection is one ``GridSearchCV`` over a one-step ``Pipeline`` whose regressor is itself a
    grid parameter, scored on the dev pairs through a ``PredefinedSplit``; the chosen configuration is then
    refitted on the training pairs alone (the dev split only chooses).
    """

    input_kind = "probs"

    def __init__(
        self, candidates: Sequence[str] = CANDIDATES, features: str = "plain", seed: int = 0
    ) -> None:
        self.candidates = candidates
        self.features = features
        self.seed = seed

    def fit(
        self, X: np.ndarray, y: np.ndarray, X_dev: np.ndarray | None = None, y_dev: np.ndarray | None = None
    ) -> DistributionRegressor:
        Xf, valid = option_features(X, self.features)
        yf = np.nan_to_num(np.asarray(y, dtype=float))[valid]
        if Xf.shape[0] == 0:
            raise InputError("no training pairs", where="calibration train split")
        pipe = Pipeline([("reg", LinearRegression())])
        grid = candidate_grid(self.candidates, self.seed)
        fast = Xf.shape[1] == 1 and set(self.candidates) <= set(_CLOSED_FORM)
        if fast and X_dev is not None and y_dev is not None and np.isfinite(X_dev).any():
            # one feature and linear models only: the grid scored in closed form (the same estimators'
            # optima, without GridSearchCV's per-candidate overhead), the chosen one fitted by scikit-learn
            Df, dvalid = option_features(X_dev, self.features)
            dy = np.nan_to_num(np.asarray(y_dev, dtype=float))[dvalid]
            best, self.dev_mse_ = _closed_form_search(grid, Xf[:, 0], yf, Df[:, 0], dy)
        elif X_dev is not None and y_dev is not None and np.isfinite(X_dev).any():
            Df, dvalid = option_features(X_dev, self.features)
            dy = np.nan_to_num(np.asarray(y_dev, dtype=float))[dvalid]
            fold = np.r_[np.full(len(Xf), -1), np.zeros(len(Df), dtype=int)]
            search = GridSearchCV(
                pipe, grid, cv=PredefinedSplit(fold), scoring="neg_mean_squared_error", refit=False, n_jobs=1
            )
            search.fit(np.vstack([Xf, Df]), np.r_[yf, dy])
            best, self.dev_mse_ = search.best_params_, float(-search.best_score_)
        else:  # no dev split: the paper's plain linear map, unselected
            best, self.dev_mse_ = {"reg": LinearRegression()}, float("nan")
        self.pipeline_ = clone(pipe).set_params(**clone_params(best)).fit(Xf, yf)
        self.chosen_ = regressor_name(self.pipeline_.named_steps["reg"])
        self.n_train_ = int(np.isfinite(X).any(axis=1).sum())
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        Xf, valid = option_features(X, self.features)
        out = np.zeros(X.shape)
        if Xf.shape[0]:
            out[valid] = self.pipeline_.predict(Xf)
        return renormalised(X, out)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X)


#: the families whose one-feature fit has a closed form (sklearn's objectives: Lasso's is scaled by 1/(2n),
#: Ridge's is not)
_CLOSED_FORM: tuple[str, ...] = ("linear", "lasso", "ridge")


def _slope(name: str, alpha: float, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(slope, intercept)`` of a one-feature linear / lasso / ridge fit with an intercept."""
    xc, yc = x - x.mean(), y - y.mean()
    sxy, sxx = float(xc @ yc), float(xc @ xc)
    if name == "lasso":
        n = len(x)
        w = np.sign(sxy) * max(abs(sxy) / n - alpha, 0.0) / (sxx / n) if sxx > 0 else 0.0
    else:
        denom = sxx + (alpha if name == "ridge" else 0.0)
        w = sxy / denom if denom > 0 else 0.0
    return float(w), float(y.mean() - w * x.mean())


def _closed_form_search(
    grid: list[dict[str, list[Any]]], x: np.ndarray, y: np.ndarray, xd: np.ndarray, yd: np.ndarray
) -> tuple[dict[str, Any], float]:
    """The grid's best configuration by dev MSE (the first on ties, as ``GridSearchCV``) and its MSE."""
    best: tuple[float, dict[str, Any]] | None = None
    for sub in grid:
        reg = sub["reg"][0]
        name = regressor_name(reg)
        for alpha in sub.get("reg__alpha", [0.0]):
            w, b = _slope(name, float(alpha), x, y)
            mse = float(np.mean((yd - (w * xd + b)) ** 2))
            params = {"reg": reg} | ({"reg__alpha": alpha} if "reg__alpha" in sub else {})
            if best is None or mse < best[0]:
                best = (mse, params)
    assert best is not None
    return best[1], best[0]


def clone_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: clone(v) if isinstance(v, BaseEstimator) else v for k, v in params.items()}


def option_mse(pred: np.ndarray, human: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared error over (row, option) pairs: the regression target the paper reports."""
    m = mask & np.isfinite(pred)
    return float(np.mean((pred[m] - human[m]) ** 2)) if m.any() else float("nan")
