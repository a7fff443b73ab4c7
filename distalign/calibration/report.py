"""The supervision paper's sweep-level views of calibration: the raw-vs-calibrated table with significance
marks, extraction rates (Table 17), the comparison of elicitation methods (Table 4), the spread per setting
(Figure 2), minimal-supervision learning curves (Figure 3), per-group effects and, on request, the
out-of-domain table (Tables 11-12); ``distalign.report`` draws them. Also the rows the benchmark
leaderboard shows for calibrated cells.

Every table says which rows its numbers come from (a ``split`` column), and raw and calibrated numbers
side by side are always over the same rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from distalign.calibration.compare import method_comparison, triple_comparison
from distalign.calibration.curves import CHOSEN, SIZES, curve_families, few_example_groups, learning_curve
from distalign.calibration.extraction import extraction_table
from distalign.calibration.frame import is_evaluated
from distalign.calibration.groups import group_effects
from distalign.calibration.ood import ood_table
from distalign.calibration.paper_tables import logp_table, ood_paper_table
from distalign.calibration.regression import CANDIDATES
from distalign.calibration.sampling import REPEATS, SPLIT
from distalign.calibration.summary import kambhatla_table, setting_spread
from distalign.errors import InputError
from distalign.records.config import CalibrationConfig

log = logging.getLogger(__name__)

CELL_KEYS = ("model", "dataset", "method", "steering")


@dataclass(frozen=True)
class ReportOptions:
    """What the sweep report computes beyond the always-present tables, from a calibration config."""

    candidates: tuple[str, ...] = CANDIDATES
    features: str = "plain"
    fractions: tuple[float, ...] = SPLIT
    curve_families: tuple[str, ...] = (CHOSEN,)
    curve_sizes: tuple[int, ...] = SIZES
    curve_repeats: int = REPEATS
    ood: bool = False
    #: learning curves are the costliest table (a calibrator per size and draw); off for callers that draw
    #: them on their own (``distalign calibrate --curves``)
    curves: bool = True
    #: Table 5 (groups most degraded by a 5-example calibrator vs the full train split), with or without
    #: the curves: the same draws of 5 training distributions as the curves' n = 5
    few_examples: bool = True

    @classmethod
    def from_config(cls, cfg: CalibrationConfig | None) -> ReportOptions:
        if cfg is None:
            return cls()
        p = cfg.params or {}
        return cls(
            candidates=tuple(p.get("candidates", CANDIDATES)),
            features=str(p.get("features", "plain")),
            fractions=tuple(float(f) for f in p.get("split", SPLIT)),
            curve_families=curve_families(p.get("curve_families", CHOSEN)),
            curve_repeats=int(p.get("curve_repeats", REPEATS)),
            ood=bool(getattr(cfg, "ood", False)),
        )


def _regression_rows(items: pd.DataFrame) -> pd.DataFrame:
    if "calibration" in items.columns:
        return items[items["calibration"].astype(str) == "regression"]
    return items


def sweep_tables(
    items: pd.DataFrame,
    seed: int = 0,
    *,
    config: CalibrationConfig | None = None,
    options: ReportOptions | None = None,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Tables over every calibrated cell of a sweep (``items`` concatenates their tables): the calibration
    table (Table 1/7), extraction rates (Table 17), the method comparison (Table 4), the spread per setting
    (Figure 2), group effects, learning curves (Figure 3) and, on request, the out-of-domain table.
    ``distalign.report`` draws the figures from them.

    ``config`` is the sweep's regression calibration config: its ``params`` (candidates, features, split,
    curve_families) and ``ood`` decide the learning curves and whether the out-of-domain table is made;
    ``options`` sets them directly instead. ``on_step(name)`` is called before each step (progress).
    """
    opts = options or ReportOptions.from_config(config)
    step = on_step or (lambda _name: None)
    step("calibration table")
    tables: dict[str, pd.DataFrame] = {"calibration_table": kambhatla_table(items)}
    logp = logp_table(tables["calibration_table"])
    if len(logp):  # Table 6
        tables["logp_alignment"] = logp
    if "status" in items.columns:
        tables["extraction_rates"] = extraction_table(items)
    spread = setting_spread(items)
    if len(spread):
        tables["spread"] = spread
    step("method comparison")
    anova, pairs = method_comparison(items)
    if len(anova):
        tables["method_anova"], tables["method_pairs"] = anova, pairs
    step("prompt variation triples")
    anova, pairs = triple_comparison(items)
    if len(anova):
        tables["triple_anova"], tables["triple_pairs"] = anova, pairs
    cal = (
        items["calibration"].astype(str)
        if "calibration" in items.columns
        else pd.Series("", index=items.index)
    )
    effects = []
    for name in sorted(set(cal)):
        table = group_effects(items[cal == name])
        if len(table):
            effects.append(table.assign(calibration=name) if name else table)
    if effects:
        tables["group_effects"] = pd.concat(effects, ignore_index=True)
    regression = _regression_rows(items)
    curves, degraded = [], []
    per_cell = opts.curves or opts.few_examples
    for key, cell in regression.groupby(list(CELL_KEYS), sort=True) if per_cell else ():
        label = "/".join(map(str, key))
        labels = dict(zip(CELL_KEYS, key, strict=True))
        try:  # a cell too small for a curve is reported, not fatal
            if opts.curves:
                step(f"learning curve {label}")
                curve = learning_curve(
                    cell,
                    sizes=opts.curve_sizes,
                    repeats=opts.curve_repeats,
                    seed=seed,
                    candidates=opts.candidates,
                    features=opts.features,
                    families=opts.curve_families,
                    fractions=opts.fractions,
                )
                curves.append(curve.assign(**labels))
            if opts.few_examples:
                step(f"5 examples vs full data {label}")
                few = few_example_groups(
                    cell, repeats=opts.curve_repeats, seed=seed, candidates=opts.candidates,
                    features=opts.features, fractions=opts.fractions,
                )  # fmt: skip
                degraded.append(few.drop(columns="dataset").assign(**labels))
        except InputError as exc:
            log.warning("no learning curve or Table 5 rows for %s: %s", label, exc)
    if curves:
        tables["learning_curves"] = pd.concat(curves, ignore_index=True)
    if degraded:  # Table 5: the groups the 5-example calibrator degrades most, per cell
        worst = pd.concat(degraded, ignore_index=True).sort_values("delta_few", kind="stable")
        cols = [*CELL_KEYS, *[c for c in worst.columns if c not in CELL_KEYS]]
        tables["few_example_groups"] = worst.groupby(list(CELL_KEYS), sort=True).head(3)[cols]
    if opts.ood:
        step("out of domain")
        try:
            tables["out_of_domain"] = ood_table(
                regression, seed, opts.candidates, opts.features, opts.fractions
            )
        except InputError as exc:
            log.warning("no out-of-domain table: %s", exc)
        else:
            tables.update(paper_ood_tables(tables["out_of_domain"]))
    return tables


def paper_ood_tables(ood: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Tables 11 (elicitation methods) and 12 (log-p) in the paper's layout, those with rows."""
    named = {"out_of_domain_methods": ood_paper_table(ood, logp=False),
             "out_of_domain_logp": ood_paper_table(ood, logp=True)}  # fmt: skip
    return {name: table for name, table in named.items() if len(table)}


#: the method label of raw rows scored on a calibrated cell's evaluation rows only
SPLIT_SUFFIX = "@test"


def leaderboard_items(items: pd.DataFrame) -> pd.DataFrame:
    """The benchmark leaderboard's rows from a sweep's items, with a ``split`` column.

    Raw rows appear once per (model, method, steering, dataset), on all their items (``split`` "all"),
    preferring uncalibrated cells. A calibrated cell adds its calibrated rows as method
    ``<method>+<calibration>`` on its evaluation rows. Where those are not all of the cell's rows (a
    regression test split), the calibrated method is ``<method>+<calibration>@test`` and the cell's raw
    rows on exactly those rows come as method ``<method>@test``, so that before and after are compared on
    the same test questions (the leaderboard keys rows by method only, so the split is in the label).
    Discarded answers (no prediction) stay in: they leave the means but count in the extraction rate.
    """
    if "calibration" not in items.columns:
        return items.assign(split="all")
    cal = items["calibration"].fillna("none").astype(str)
    key = ["model", "method", "steering", "dataset"]
    raw = items[cal == "none"].assign(split="all")
    have = set(map(tuple, raw[key].astype(str).to_numpy())) if len(raw) else set()
    parts, raw_tests = [raw], []
    for name in sorted(set(cal) - {"none"}):
        sub = items[cal == name]
        labels = sub[key].astype(str).apply(tuple, axis=1)
        first = sub[~labels.isin(have)]
        if len(first):  # raw rows of a calibrated-only cell, from one calibration only
            parts.append(first.assign(split="all"))
            have |= set(map(tuple, first[key].astype(str).to_numpy()))
        for _, cell in sub.groupby(key, sort=False):
            ev_mask = is_evaluated(cell["split"])
            ev = cell[ev_mask]
            if ev.empty:
                continue
            subset = not bool(np.all(ev_mask))
            suffix, kind = (SPLIT_SUFFIX, "test") if subset else ("", "all")
            parts.append(
                ev.assign(
                    tv=ev["calibrated_tv"],
                    alignment=ev["calibrated_alignment"] if "calibrated_alignment" in ev else np.nan,
                    method=ev["method"] + "+" + name + suffix,
                    split=kind,
                )
            )
            if subset:
                raw_tests.append(ev.assign(method=ev["method"] + suffix, split=kind))
    if raw_tests:  # cells calibrated twice on one split have the same raw test rows: keep them once
        tests = pd.concat(raw_tests, ignore_index=True)
        ident = [c for c in ("model", "method", "steering", "dataset", "item_id", "attribute", "group")
                 if c in tests.columns]  # fmt: skip
        parts.append(tests.drop_duplicates(ident))
    return pd.concat(parts, ignore_index=True)
