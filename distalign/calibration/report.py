"""The supervision paper's sweep-level views of calibration: the raw-vs-calibrated table with significance
marks, the spread of alignment per setting, minimal-supervision learning curves and per-group effects.

:func:`sweep_tables` computes them; ``distalign.report.figures`` draws them (the report layer owns the
look of every figure). :func:`sweep_report` keeps the sweep's parent-run figures until the sweep draws them
through the report layer."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure

from distalign.calibration.curves import SIZES, learning_curve
from distalign.calibration.figures import group_effects_figure, learning_curve_figure
from distalign.calibration.groups import group_effects
from distalign.calibration.summary import kambhatla_table, setting_spread

log = logging.getLogger(__name__)

CELL_KEYS = ("model", "dataset", "method", "steering")
#: learning curves refit a calibrator 10 x 9 times per cell; the linear family keeps that to seconds
CURVE_CANDIDATES: tuple[str, ...] = ("linear", "ridge")


def sweep_tables(
    items: pd.DataFrame, seed: int = 0, curve_candidates: Sequence[str] = CURVE_CANDIDATES
) -> dict[str, pd.DataFrame]:
    """Tables over every calibrated cell of a sweep (``items`` concatenates their tables):
    ``calibration_table`` (Table 1/7 shape), ``spread`` (Figure 2), ``group_effects`` and
    ``learning_curves`` (Figure 3; regression cells, one block per cell) where they apply."""
    tables: dict[str, pd.DataFrame] = {"calibration_table": kambhatla_table(items)}
    spread = setting_spread(items)
    if len(spread):
        tables["spread"] = spread
    effects = group_effects(items)
    if len(effects):
        tables["group_effects"] = effects
    curves = []
    regression = items[items["calibration"] == "regression"] if "calibration" in items else items.iloc[:0]
    for key, cell in regression.groupby(list(CELL_KEYS), sort=True):
        try:
            curve = learning_curve(cell, sizes=SIZES, repeats=10, seed=seed, candidates=curve_candidates)
        except Exception as exc:  # noqa: BLE001 - a cell too small for a curve is reported, not fatal
            log.warning("no learning curve for %s: %s", "/".join(map(str, key)), exc)
            continue
        curves.append(curve.assign(**dict(zip(CELL_KEYS, key, strict=True))))
    if curves:
        tables["learning_curves"] = pd.concat(curves, ignore_index=True)
    return tables


def sweep_report(
    items: pd.DataFrame, seed: int = 0, curve_candidates: Sequence[str] = CURVE_CANDIDATES
) -> tuple[dict[str, pd.DataFrame], dict[str, Figure]]:
    """:func:`sweep_tables` with the parent run's figures (group effects, one learning curve per cell)."""
    tables = sweep_tables(items, seed, curve_candidates)
    figures: dict[str, Figure] = {}
    if "group_effects" in tables:
        figures["group_effects"] = group_effects_figure(tables["group_effects"])
    for key, curve in tables.get("learning_curves", pd.DataFrame(columns=CELL_KEYS)).groupby(
        list(CELL_KEYS), sort=True
    ):
        label = "_".join(map(str, key))
        figures[f"learning_curve/{label}"] = learning_curve_figure(curve.reset_index(drop=True))
    return tables, figures
