"""The supervision paper's main table: per dataset x method x prompt type (x model x calibration), raw and
calibrated alignment ``1 - WD/(N-1)`` and TV on the rows no calibrator trained on, with paired t-tests
corrected by Bonferroni across the table's rows; and the spread of alignment per setting before and after
calibration (the paper's Figure 2).

Raw and calibrated means of a row are over the same rows (the pairs where both exist; a discarded answer
has neither), and ``split`` names them, e.g. ``test (10%)``: the test split holding 10% of the questions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from distalign.calibration.frame import is_evaluated, question_keys, split_label
from distalign.errors import InputError
from distalign.metrics import compare_paired

ROW_KEYS: tuple[str, ...] = ("calibration", "model", "dataset", "method", "steering")
NEEDED: tuple[str, ...] = ("alignment", "calibrated_alignment", "tv", "calibrated_tv", "split")


def _marked(table: pd.DataFrame, prefix: str) -> pd.DataFrame:
    return table.rename(
        columns={
            "mean_before": f"{prefix}_raw",
            "mean_after": f"{prefix}_calibrated",
            "t": f"{prefix}_t",
            "p": f"{prefix}_p",
            "p_bonferroni": f"{prefix}_p_bonferroni",
            "significant": f"{prefix}_significant",
        }
    )


def kambhatla_table(items_by_cell: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """One row per setting present; ``*_mark`` is ``*`` where the change is significant after correction.

    ``items_by_cell`` is the concatenation of calibrated items tables (``CalibrationOutcome.items``, all
    their rows: the training rows tell which share of the questions the evaluation split holds).
    """
    missing = [c for c in (*ROW_KEYS[2:], *NEEDED) if c not in items_by_cell.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", where="calibrated items")
    keys = [k for k in ROW_KEYS if k in items_by_cell.columns]
    groups, labels = {}, []
    for key, frame in items_by_cell.groupby(keys, sort=True):
        ev = frame[is_evaluated(frame["split"])]
        if ev.empty:
            continue
        groups["\x1f".join(map(str, key))] = ev
        questions = question_keys(frame) if "item_id" in frame.columns else np.arange(len(frame))
        labels.append(split_label(frame["split"], questions))
    out = pd.DataFrame([dict(zip(keys, name.split("\x1f"), strict=True)) for name in groups])
    if out.empty:
        return out
    out["split"] = labels
    out["n"] = [
        int(
            (
                np.isfinite(f["alignment"].to_numpy(float))
                & np.isfinite(f["calibrated_alignment"].to_numpy(float))
            ).sum()
        )
        for f in groups.values()
    ]
    for metric in ("alignment", "tv"):
        test = compare_paired(
            {
                n: (f[metric].to_numpy(float), f[f"calibrated_{metric}"].to_numpy(float))
                for n, f in groups.items()
            },
            alpha=alpha,
        )
        test = _marked(test.drop(columns="setting"), metric)
        test[f"{metric}_mark"] = ["*" if s else "" for s in test[f"{metric}_significant"]]
        out = pd.concat([out, test], axis=1)
    return out


def setting_spread(items_by_cell: pd.DataFrame) -> pd.DataFrame:
    """Per setting, the mean and standard deviation of alignment over its evaluated rows (one per item x
    group), raw and calibrated: calibration should raise the mean and narrow the spread."""
    keys = [k for k in ROW_KEYS if k in items_by_cell.columns]
    needed = (*ROW_KEYS[1:], "alignment", "calibrated_alignment", "split")
    missing = [c for c in needed if c not in items_by_cell.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", where="calibrated items")
    ev = items_by_cell[is_evaluated(items_by_cell["split"])]
    rows = []
    for key, f in ev.groupby(keys, sort=True):
        raw, cal = f["alignment"].to_numpy(float), f["calibrated_alignment"].to_numpy(float)
        ok = np.isfinite(raw) & np.isfinite(cal)  # paired, as in the table
        if ok.sum() < 2:
            continue
        rows.append(
            {
                **dict(zip(keys, map(str, key), strict=True)),
                "n": int(ok.sum()),
                "mean_raw": float(raw[ok].mean()),
                "std_raw": float(raw[ok].std(ddof=1)),
                "mean_calibrated": float(cal[ok].mean()),
                "std_calibrated": float(cal[ok].std(ddof=1)),
            }
        )
    columns = [*keys, "n", "mean_raw", "std_raw", "mean_calibrated", "std_calibrated"]
    return pd.DataFrame(rows, columns=columns)
