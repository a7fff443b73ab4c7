"""The supervision paper's log-p and out-of-domain tables in its layout (Kambhatla et al. 2025): one row per
model x prompt type (x elicitation method), one group of columns per dataset, alignment in percent as the
paper prints it.

* Table 6 (log-p, Appendix A.2): raw and calibrated alignment of the log-probability cells, ``*`` where
  the paired t-test of the calibration table is significant after Bonferroni correction.
* Table 11 (out of domain): the other elicitation methods, raw / calibrated in domain / calibrated on the
  other datasets, each on the target dataset's test split.
* Table 12: the same for log-p.

They are pivots of the long tables (``summary.kambhatla_table``, ``ood.ood_table``), so their numbers are
those tables' numbers. The paper's columns are WGM, OQA and WVS; WGM and WVS are not public, and
``not_public_line`` says so in one line wherever these tables are shown.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from distalign.scoring.scores import in_order
from distalign.survey.model import DATASETS

LOGPROBS = "logprobs"
#: the paper's datasets whose surveys are not public (they can be given as custom survey files)
NOT_PUBLIC: dict[str, str] = {"wgm": "WGM (Wellcome Global Monitor 2018)", "wvs": "WVS (World Values Survey)"}


def prompt_label(steering: str) -> str:
    """The paper's prompt names: ``kambhatla_sd_cot`` reads "SD + CoT"."""
    parts = str(steering).removeprefix("kambhatla_").split("_")
    names = {"base": "Base", "sd": "SD", "cot": "CoT", "few": "few-shot", "shot": ""}
    words = [names.get(p, p) for p in parts]
    head, rest = words[0], [w for w in words[1:] if w]
    return " + ".join([head, *rest])


def not_public_line(datasets: Iterable[str]) -> str | None:
    """One line naming the paper's datasets absent here (``None`` when custom surveys supply them)."""
    present = {str(d).lower() for d in datasets}
    missing = [label for key, label in NOT_PUBLIC.items() if key not in present]
    if not missing:
        return None
    return (
        f"The paper's {' and '.join(missing)} columns: not public, so not shown (those surveys, given as "
        "custom survey files, fill them)."
    )


def _pct(x: pd.Series) -> pd.Series:
    return (100 * x.astype(float)).round(1)


def _wide(long: pd.DataFrame, rows: list[str], values: dict[str, str], order: list[str]) -> pd.DataFrame:
    """``long`` (one row per ``rows`` x dataset) as one row per ``rows``, columns ``<dataset> <label>``."""
    parts = []
    for dataset in order:
        sub = long[long["dataset"] == dataset].set_index(rows)[list(values)]
        parts.append(sub.rename(columns={c: f"{dataset} {label}" for c, label in values.items()}))
    out = pd.concat(parts, axis=1).reset_index()
    return out.sort_values(rows, kind="stable").reset_index(drop=True)


def logp_table(calibration_table: pd.DataFrame) -> pd.DataFrame:
    """Table 6 from the calibration table: per model x prompt type, each dataset's test-split size, raw and
    calibrated alignment (%) and the significance mark. Empty when no log-p cell was calibrated."""
    t = calibration_table
    if t.empty or "method" not in t.columns:
        return pd.DataFrame()
    t = t[t["method"].astype(str) == LOGPROBS]
    if "calibration" in t.columns:
        t = t[t["calibration"].astype(str) == "regression"]
    if t.empty:
        return pd.DataFrame()
    long = pd.DataFrame(
        {
            "model": t["model"].astype(str) if "model" in t.columns else "",
            "prompt": [prompt_label(s) for s in t["steering"]],
            "dataset": t["dataset"].astype(str),
            "n": t["n"].astype(int),
            "raw": _pct(t["alignment_raw"]),
            "calibrated": _pct(t["alignment_calibrated"]),
            "mark": t["alignment_mark"].fillna("").astype(str),
        }
    )
    order = in_order(long["dataset"], DATASETS)  # OpinionQA first, as the paper's OQA column
    labels = {"n": "n", "raw": "raw (%)", "calibrated": "calibrated (%)", "mark": "sig."}
    return _wide(long, ["model", "prompt"], labels, order)


def ood_paper_table(ood: pd.DataFrame, logp: bool) -> pd.DataFrame:
    """Table 11 (``logp=False``: the other elicitation methods) or Table 12 (log-p) from the out-of-domain
    table: per model x method x prompt type, each target dataset's raw, in-domain and out-of-domain
    calibrated alignment (%) on its test split. Empty when no such row exists."""
    if ood.empty:
        return pd.DataFrame()
    is_logp = ood["method"].astype(str) == LOGPROBS
    t = ood[is_logp if logp else ~is_logp]
    if t.empty:
        return pd.DataFrame()
    long = pd.DataFrame(
        {
            "model": t["model"].astype(str) if "model" in t.columns else "",
            "method": t["method"].astype(str),
            "prompt": [prompt_label(s) for s in t["steering"]],
            "dataset": t["target"].astype(str),
            "n": t["n"].astype(int),
            "raw": _pct(t["alignment_raw"]),
            "in_domain": _pct(t["alignment_in_domain"]),
            "ood": _pct(t["alignment_ood"]),
        }
    )
    rows = ["model", "prompt"] if logp else ["model", "method", "prompt"]
    if logp:
        long = long.drop(columns="method")
    order = in_order(long["dataset"], DATASETS)  # OpinionQA first, as the paper's OQA column
    labels = {"n": "n", "raw": "raw (%)", "in_domain": "in-domain (%)", "ood": "out-of-domain (%)"}
    return _wide(long, rows, labels, order)
