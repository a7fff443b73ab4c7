"""The supervision paper's sweep-level views of calibration, for the sweep's parent run: the raw-vs-calibrated
table with significance marks, minimal-supervision learning curves and per-group effects."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure

from distalign.calibration.curves import SIZES, learning_curve
from distalign.calibration.figures import group_effects_figure, learning_curve_figure
from distalign.calibration.groups import group_effects
from distalign.calibration.summary import kambhatla_table

log = logging.getLogger(__name__)

CELL_KEYS = ("model", "dataset", "method", "steering")
#: learning curves refit a calibrator 10 x 9 times per cell; the linear family keeps that to seconds
CURVE_CANDIDATES: tuple[str, ...] = ("linear", "ridge")


def sweep_report(
    items: pd.DataFrame, seed: int = 0, curve_candidates: Sequence[str] = CURVE_CANDIDATES
) -> tuple[dict[str, pd.DataFrame], dict[str, Figure]]:
    """Tables and figures over every calibrated cell of a sweep (``items`` concatenates their tables)."""
    tables: dict[str, pd.DataFrame] = {"calibration_table": kambhatla_table(items)}
    figures: dict[str, Figure] = {}
    effects = group_effects(items)
    if len(effects):
        tables["group_effects"] = effects
        figures["group_effects"] = group_effects_figure(effects)
    curves = []
    regression = items[items["calibration"] == "regression"] if "calibration" in items else items.iloc[:0]
    for key, cell in regression.groupby(list(CELL_KEYS), sort=True):
        try:
            curve = learning_curve(cell, sizes=SIZES, repeats=10, seed=seed, candidates=curve_candidates)
        except Exception as exc:  # noqa: BLE001 - a cell too small for a curve is reported, not fatal
            log.warning("no learning curve for %s: %s", "/".join(map(str, key)), exc)
            continue
        label = "/".join(map(str, key))
        curves.append(curve.assign(**dict(zip(CELL_KEYS, key, strict=True))))
        figures[f"learning_curve/{label.replace('/', '_')}"] = learning_curve_figure(curve)
    if curves:
        tables["learning_curves"] = pd.concat(curves, ignore_index=True)
    return tables, figures
