"""The data behind the paper's figures, as the frames the figure functions plot.

* Figure 2 (:func:`coin_frame`): the biased coin. Told P(heads), a model answers by one flip's log-probs,
  by a 30-flip sequence, or (GPT-4) by log-probs after temperature scaling; the paper plots the stated
  against the predicted P(heads) for the prompts that state tails first, as here.
* Figure 4 (:func:`steering_frame`): TV per steering mode and dataset for each model's best method (the
  lowest persona + few-shot TV; verbalize for all five models) and for the human annotators.
* Figure 6 (:func:`reliability_frame`): reliability diagrams of log-p before and after the release's
  temperature scaling (persona + few-shot; each option of each (prediction, group) pair is one point).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from distalign.calibration.temperature import TemperatureScaler
from distalign.errors import InputError
from distalign.metrics import pad, reliability_curve
from distalign.metrics.extraction import EXTRACTED
from distalign.report.leaderboard import ALL_STEERING, ROW_KEYS, STEERING_ORDER
from distalign.survey.paths import data_dir as resolve_data_dir

COIN = "results/biased_coin"
COIN_FILES: dict[str, str] = {
    "logprobs": "biased_coin_benchmark.json",
    "seq": "biased_coin_seq_benchmark.json",
}
#: GPT-4's log-p answers with their stated distributions, the pairs the paper's temperature fit used
COIN_TS = ("model_logprobs/actual_coinflip_p.json", "model_logprobs/expected_coinflip_p.json")
_FIRST_SIDE = re.compile(r"lands (heads|tails) up be", re.IGNORECASE)
CALIBRATION_METHODS: dict[str, str] = {"logprobs": "none", "logprobs+temperature": "temperature"}
ALL_DATASETS = "all"
COIN_COLUMNS = ("model", "method", "p_true", "p_pred")
RELIABILITY_COLUMNS = ("model", "dataset", "calibration", "bin", "mean_pred", "mean_true", "count")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the biased-coin results: {exc}", file=path) from None


def _coin_points(data: Mapping[str, Any], path: Path) -> Iterator[tuple[float, float]]:
    """(stated P(heads), mean predicted P(heads)) per prompt; prompts stating tails first when the file
    has both wordings (the paper's figure)."""
    sides = {q: (m.group(1).lower() if (m := _FIRST_SIDE.search(q)) else None) for q in data}
    wanted = "tails" if "tails" in sides.values() else None
    for question, entry in data.items():
        if wanted is not None and sides[question] != wanted:
            continue
        try:
            p_true = float(entry["expected_results"]["h"])
            heads = [float(x) for x in entry["actual_results"].get("h") or [] if x is not None]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InputError("expected 'expected_results.h' and 'actual_results.h'", file=path) from None
        yield p_true, float(np.mean(heads)) if heads else 0.0


def coin_frame(data_dir: str | Path | None = None) -> pd.DataFrame:
    """Figure 2: one row per model x method x stated P(heads) (``COIN_COLUMNS``)."""
    root = resolve_data_dir(data_dir) / COIN
    if not root.is_dir():
        raise InputError("the biased-coin results are not here", file=root)
    rows = []
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for method, name in COIN_FILES.items():
            path = model_dir / name
            if path.is_file():
                rows += [(model_dir.name, method, t, p) for t, p in _coin_points(_read(path), path)]
        actual, expected = (model_dir / f for f in COIN_TS)
        if actual.is_file() and expected.is_file():
            pred, true = np.asarray(_read(actual), float), np.asarray(_read(expected), float)
            with np.errstate(divide="ignore"):
                logp = np.where(pred > 0, np.log(pred), np.nan)
            scaled = TemperatureScaler().fit(logp, true).predict_proba(logp)
            rows += [
                (model_dir.name, "logprobs+temperature", float(t), float(p))
                for t, p in zip(true[:, 0], scaled[:, 0], strict=True)
            ]
    out = pd.DataFrame(rows, columns=list(COIN_COLUMNS))
    return out.groupby(["model", "method", "p_true"], as_index=False, sort=True)["p_pred"].mean()


def best_methods(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Per model, the method with the lowest TV on persona + few-shot steering over the datasets."""
    best: dict[str, tuple[float, str]] = {}
    for r in rows:
        if r["kind"] == "model" and r["steering"] == ALL_STEERING and r["dataset"] in ("three", "all"):
            if r["model"] not in best or r["mean"] < best[r["model"]][0]:
                best[r["model"]] = (r["mean"], r["method"])
    return {m: method for m, (_, method) in best.items()}


#: the method the paper's Figure 4 plots
FIGURE4_METHOD = "seq"


def steering_frame(
    model_rows: Sequence[Mapping[str, Any]],
    human_rows: Sequence[Mapping[str, Any]] = (),
    method: str | None = FIGURE4_METHOD,
) -> pd.DataFrame:
    """Figure 4: leaderboard rows (``ROW_KEYS``) per steering mode x dataset, for one method (``seq``, as
    published; a model without it is left out) or, with ``method=None``, each model's best method; and the
    human annotators (kind ``human``, model ``human``)."""
    best = (
        best_methods(model_rows)
        if method is None
        else {r["model"]: method for r in model_rows if r["method"] == method}
    )
    keep = [
        dict(r)
        for r in model_rows
        if r["kind"] == "model" and best.get(r["model"]) == r["method"] and r["steering"] in STEERING_ORDER
    ]
    keep += [{**r, "kind": "human", "model": "human"} for r in human_rows if r["steering"] in STEERING_ORDER]
    frame = pd.DataFrame(keep, columns=list(ROW_KEYS))
    return frame[~frame["dataset"].isin(["three", "all"])].reset_index(drop=True)


def logp_observations(
    scored: pd.DataFrame,
) -> dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(model, dataset or ``all``, calibration) -> padded (pred, human, mask) of the parsed persona and
    few-shot log-p predictions, before (``none``) and after (``temperature``) scaling."""
    rows = scored[
        scored["method"].isin(list(CALIBRATION_METHODS))
        & scored["steering"].isin(["persona", "few_shot"])
        & scored["status"].isin(list(EXTRACTED))
    ]
    out = {}
    for (model, method), block in rows.groupby(["model", "method"], sort=True):
        pred, mask = pad(list(block["pred"]))
        human, _ = pad(list(block["human"]))
        datasets = block["dataset"].to_numpy()
        for dataset in [*sorted(set(datasets)), ALL_DATASETS]:
            pick = datasets == dataset if dataset != ALL_DATASETS else np.ones(len(block), dtype=bool)
            out[(str(model), dataset, CALIBRATION_METHODS[str(method)])] = (
                pred[pick],
                human[pick],
                mask[pick],
            )
    return out


def reliability_frame(scored: pd.DataFrame, n_bins: int = 10) -> pd.DataFrame:
    """Figure 6: per model x dataset (and all datasets) x calibration, the reliability curve of log-p
    (``RELIABILITY_COLUMNS``; ``bin`` is the bin's index, equal-width bins on [0, 1])."""
    rows = []
    for (model, dataset, calibration), (pred, human, mask) in logp_observations(scored).items():
        _, mean_pred, mean_true, counts = reliability_curve(pred, human, mask, n_bins=n_bins)
        for b in range(n_bins):
            rows.append((model, dataset, calibration, b, mean_pred[b], mean_true[b], int(counts[b])))
    return pd.DataFrame(rows, columns=list(RELIABILITY_COLUMNS))


__all__ = [
    "COIN_COLUMNS",
    "RELIABILITY_COLUMNS",
    "best_methods",
    "coin_frame",
    "logp_observations",
    "reliability_frame",
    "steering_frame",
]
