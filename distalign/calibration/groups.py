"""Per-group effects of calibration (Kambhatla et al. 2025): does calibration help every demographic group,
or does it trade one group's alignment for another's? Paired over each group's evaluation rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from distalign.calibration.frame import is_evaluated, question_keys, split_label
from distalign.errors import InputError
from distalign.metrics import compare_paired

NEEDED: tuple[str, ...] = ("dataset", "attribute", "group", "alignment", "calibrated_alignment", "split")


def group_effects(items: pd.DataFrame, alpha: float = 0.05, metric: str = "alignment") -> pd.DataFrame:
    """One row per dataset x attribute x group: mean before/after on the same evaluation rows (``split``
    names them), paired t-test and Bonferroni across groups, ``delta`` = after - before; sorted by delta
    (largest gain first).

    ``items`` is a calibrated items table (``CalibrationOutcome.items``, possibly several cells
    concatenated). ``metric`` is ``alignment`` (higher is better) or ``tv``.
    """
    cols = [*NEEDED[:3], metric, f"calibrated_{metric}", "split"]
    missing = [c for c in cols if c not in items.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", where="calibrated items")
    ev = items[is_evaluated(items["split"])]
    settings = {
        f"{d}/{a}={g}": (f[metric].to_numpy(float), f[f"calibrated_{metric}"].to_numpy(float))
        for (d, a, g), f in ev.groupby(["dataset", "attribute", "group"], sort=True)
    }
    table = compare_paired(settings, alpha=alpha)
    parts = table["setting"].str.extract(r"^(?P<dataset>[^/]*)/(?P<attribute>[^=]*)=(?P<group>.*)$")
    table = pd.concat([parts, table], axis=1)
    table["n"] = [int((np.isfinite(b) & np.isfinite(a)).sum()) for b, a in settings.values()]
    table["delta"] = table["mean_after"] - table["mean_before"]
    label = {
        str(d): split_label(f["split"], question_keys(f) if "item_id" in f.columns else np.arange(len(f)))
        for d, f in items.groupby("dataset", sort=False)
    }
    table.insert(3, "split", table["dataset"].map(label))
    return table.sort_values("delta", ascending=metric == "tv", kind="stable").reset_index(drop=True)


def gains_and_losses(effects: pd.DataFrame, k: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``k`` groups whose alignment rose most and the ``k`` that rose least (or fell)."""
    by = effects.sort_values("delta", ascending=False, kind="stable")
    return by.head(k).reset_index(drop=True), by.tail(k).iloc[::-1].reset_index(drop=True)
