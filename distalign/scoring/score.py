"""Scoring predictions against the human group distributions, vectorised over all (prediction, group)
pairs: predictions and human distributions are padded into 2-D arrays once and every metric runs on
the whole batch (a sweep's cell and a 100,000-row file take the same path).

Used by ``distalign score`` (after reading a file) and by the sweep for each cell (in memory).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from distalign.errors import InputError
from distalign.records.config import UNPARSED_POLICIES, UnparsedPolicy
from distalign.scoring.predictions import Progress, resolve_predictions
from distalign.scoring.scores import SCORED_COLUMNS, score_resolved
from distalign.scoring.table import SurveyTable
from distalign.survey.model import Survey


def score_predictions(
    df: pd.DataFrame,
    surveys: Mapping[str, Survey],
    unparsed: UnparsedPolicy = "uniform",
    source: str | Path | None = None,
    *,
    strict: bool = True,
    unique: bool = False,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """One row per (prediction, evaluated group) with its TV and Wasserstein alignment.

    ``df`` follows the predictions schema (``scoring/PREDICTIONS_FORMAT.md``). An unparsed answer is
    scored as uniform (``uniform``), as a one-hot on the least likely human option (``worst``), or
    left unscored with NaN (``exclude``); it is always kept with status ``unparsed`` so that the
    extraction rate counts it. ``strict``, ``unique`` and ``progress`` are those of
    :func:`~distalign.scoring.predictions.resolve_predictions`; the counts of rows left out are in
    ``attrs["skipped"]`` of the result.
    """
    if unparsed not in UNPARSED_POLICIES:
        raise InputError(
            f"unknown policy {unparsed!r} (use {', '.join(UNPARSED_POLICIES)})", where="--unparsed"
        )
    table = SurveyTable.build(surveys)
    resolved = resolve_predictions(
        df, surveys, source, width=table.human.shape[1], strict=strict, unique=unique, progress=progress
    )
    scored = score_resolved(resolved, table, unparsed)
    scored.attrs["skipped"] = dict(resolved.skipped)
    return scored


__all__ = ["SCORED_COLUMNS", "SurveyTable", "score_predictions", "score_resolved"]
