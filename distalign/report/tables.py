"""The papers' tables, formatted for reading (HTML, Markdown): numbers as the papers print them, models
and methods in the report's order. The CSV files of a report keep the unformatted numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from distalign.report import style
from distalign.report.leaderboard import (
    ALL_STEERING,
    MIN_PARSED,
    STEERING_ORDER,
    aggregate_name,
    filler_note,
    headline_steering,
    is_filler,
    kss_table,
    steering_label,
)
from distalign.scoring.scores import in_order

AGGREGATES: tuple[str, ...] = ("three", "all")
DASH = "—"  # the papers mark empty cells (a model that cannot serve a method) with an em dash
#: marks a number whose cell parsed fewer than the threshold of its answers (mostly filler)
FILLER_MARK = "†"


def _num(x: Any, digits: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return DASH
    return f"{v:.{digits}f}" if math.isfinite(v) else DASH


def plus_minus(row: Mapping[str, Any]) -> str:
    """``mean ± half-width`` of the 95% interval (the papers' notation), or the mean alone."""
    mean, low, high = (row.get(k) for k in ("mean", "ci_low", "ci_high"))
    half = (float(high) - float(low)) / 2 if _num(low) != DASH and _num(high) != DASH else math.nan
    return f"{_num(mean)} ± {_num(half)}" if math.isfinite(half) else _num(mean)


def shown(row: Mapping[str, Any], min_parsed: float = MIN_PARSED) -> str:
    """A model row's number as every table shows it: ``mean ± half interval``, its parsed share when
    less than all answers parsed, and :data:`FILLER_MARK` below ``min_parsed``."""
    text = plus_minus(row)
    rate = row.get("extraction_rate")
    try:
        r = float(rate)
    except (TypeError, ValueError):
        return text
    if text == DASH or not math.isfinite(r) or r >= 1:
        return text
    text += f" ({r:.0%} parsed)"
    return f"{text} {FILLER_MARK}" if is_filler(row, min_parsed) else text


def dataset_scope(dataset: str, datasets: Sequence[str]) -> str:
    """What an aggregate row covers, in words: "mean of OpinionQA and NYT Book Opinions" for "all"."""
    if dataset == "all":
        names = [style.label(d, style.DATASET_LABELS) for d in datasets if d not in AGGREGATES]
        return "mean of " + " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    return style.label(dataset, style.DATASET_LABELS)


def headline_caption(rows: pd.DataFrame) -> str:
    """What Table 1a and its figure show, from the rows present: "OpinionQA, steering persona"."""
    sel, dataset, steering = aggregate_selection(rows)
    if sel.empty:
        return ""
    scored = rows[rows["kind"].isin(["model", "human"])]
    return (
        f"{dataset_scope(dataset, list(scored['dataset'].astype(str).unique()))}, {steering_label(steering)}"
    )


def _frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows)) if not isinstance(rows, pd.DataFrame) else rows


def aggregate_selection(rows: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """Model and human rows of Table 1a: the headline dataset ("three", "all", or the only dataset) and
    the headline steering (``leaderboard.headline_steering``)."""
    scored = rows[rows["kind"].isin(["model", "human"])] if len(rows) else rows
    if scored.empty:
        return scored, "", ""
    names = scored["dataset"].astype(str)
    dataset = next((a for a in AGGREGATES if (names == a).any()), None)
    if dataset is None:
        dataset = aggregate_name(in_order(names, list(style.DATASET_LABELS)))
        dataset = dataset if (names == dataset).any() else names.iloc[0]
    sel = scored[names == dataset]
    steerings = sel["steering"].astype(str)
    steering = headline_steering(list(steerings))
    return sel[steerings == steering], dataset, steering


def table_1a(rows: Sequence[Mapping[str, Any]], min_parsed: float = MIN_PARSED) -> pd.DataFrame:
    """Table 1a's shape: one row per model, one column per method, ``mean ± half interval`` (with the
    parsed share where not every answer parsed, † below ``min_parsed``)."""
    sel, _, _ = aggregate_selection(_frame(rows))
    if sel.empty:
        return pd.DataFrame()
    methods = in_order(sel["method"].astype(str), style.METHOD_ORDER)
    cells = {(str(r["model"]), str(r["method"])): shown(r, min_parsed) for _, r in sel.iterrows()}
    return pd.DataFrame(
        [
            {
                "model": style.display(m),
                **{style.method_label(me): cells.get((m, me), DASH) for me in methods},
            }
            for m in style.ordered(sel["model"].astype(str))
        ]
    )


def published_table(rows: Sequence[Mapping[str, Any]], published: pd.DataFrame) -> pd.DataFrame:
    """The published full-data values (``kind, model, method, steering, dataset, mean, pm``) of the
    models in Table 1a, in its shape: the same headline dataset and steering (an aggregate is the mean
    of the published dataset means)."""
    frame = _frame(rows)
    sel, dataset, steering = aggregate_selection(frame)
    if sel.empty or published is None or published.empty:
        return pd.DataFrame()
    pub = published[published["kind"] == "model"]
    if steering == ALL_STEERING:  # the pooled modes: the mean of the two published means where not given
        pooled = pub[pub["steering"].isin(["persona", "few_shot"])]
        pooled = pooled.groupby(["kind", "model", "method", "dataset"], as_index=False).agg(
            mean=("mean", "mean"), pm=("pm", lambda x: math.nan), k=("steering", "nunique")
        )
        pooled = pooled[pooled["k"] == 2].drop(columns="k").assign(steering=ALL_STEERING)
        given = pub[pub["steering"] == ALL_STEERING]
        keys = set(zip(given["model"], given["method"], given["dataset"], strict=True))
        missing = [
            k not in keys for k in zip(pooled["model"], pooled["method"], pooled["dataset"], strict=True)
        ]
        pub = pd.concat([given, pooled[missing]], ignore_index=True)
    else:
        pub = pub[pub["steering"] == steering]
    if dataset in AGGREGATES:
        datasets = [d for d in frame["dataset"].astype(str).unique() if d not in AGGREGATES]
        pub = pub[pub["dataset"].isin(datasets)]
        pub = pub.groupby(["model", "method"], as_index=False).agg(
            mean=("mean", "mean"), pm=("pm", lambda x: math.nan), k=("dataset", "nunique")
        )
        pub = pub[pub["k"] == len(datasets)]
    else:
        pub = pub[pub["dataset"] == dataset]
    models = [m for m in style.ordered(sel["model"].astype(str)) if (pub["model"] == m).any()]
    if not models:
        return pd.DataFrame()
    methods = in_order(sel["method"].astype(str), style.METHOD_ORDER)
    cells = {
        (str(r["model"]), str(r["method"])): plus_minus(
            {"mean": r["mean"], "ci_low": r["mean"] - r["pm"], "ci_high": r["mean"] + r["pm"]}
        )
        for _, r in pub.iterrows()
    }
    return pd.DataFrame(
        [
            {
                "model": style.display(m),
                **{style.method_label(me): cells.get((m, me), DASH) for me in methods},
            }
            for m in models
        ]
    )


def baselines_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per baseline, one column per dataset and the aggregate, ``mean ± half interval``."""
    df = _frame(rows)
    base = df[df["kind"] == "baseline"] if len(df) else df
    if base.empty:
        return pd.DataFrame()
    datasets = in_order(base["dataset"].astype(str), list(style.DATASET_LABELS))
    cells = {(str(r["model"]), str(r["dataset"])): plus_minus(r) for _, r in base.iterrows()}
    return pd.DataFrame(
        [
            {
                "baseline": style.label(b, style.BASELINE_LABELS),
                **{style.label(d, style.DATASET_LABELS): cells.get((b, d), DASH) for d in datasets},
            }
            for b in dict.fromkeys(base["model"].astype(str))
        ]
    )


def kss_frame(rows: Sequence[Mapping[str, Any]], min_parsed: float | None = MIN_PARSED) -> pd.DataFrame:
    """Table 1b's shape: the knowledge-to-simulation gap ``TV(seq) / TV(verbalize) - 1`` per model, one
    column per dataset (and the aggregate), as a percentage; pairs below ``min_parsed`` left out."""
    kss = pd.DataFrame(kss_table(list(_frame(rows).to_dict("records")), min_parsed=min_parsed))
    if kss.empty:
        return kss
    datasets = in_order(kss["dataset"].astype(str), list(style.DATASET_LABELS))
    cells = {
        (str(r["model"]), str(r["dataset"])): f"{r['kss']:+.0%}" if math.isfinite(r["kss"]) else DASH
        for _, r in kss.iterrows()
    }
    return pd.DataFrame(
        [
            {
                "model": style.display(m),
                **{style.label(d, style.DATASET_LABELS): cells.get((m, d), DASH) for d in datasets},
            }
            for m in style.ordered(kss["model"].astype(str))
        ]
    )


def detail_table(rows: Sequence[Mapping[str, Any]], min_parsed: float = MIN_PARSED) -> pd.DataFrame:
    """Every model row: model, method, steering, dataset, TV with interval, n and extraction rate."""
    df = _frame(rows)
    scored = df[df["kind"].isin(["model", "human"])] if len(df) else df
    if scored.empty:
        return pd.DataFrame()
    rank_model = {m: i for i, m in enumerate(style.ordered(scored["model"].astype(str)))}
    rank_method = {m: i for i, m in enumerate(in_order(scored["method"].astype(str), style.METHOD_ORDER))}
    rank_steer = {
        m: i for i, m in enumerate(in_order(scored["steering"].astype(str), (ALL_STEERING, *STEERING_ORDER)))
    }
    rank_data = {
        m: i for i, m in enumerate(in_order(scored["dataset"].astype(str), list(style.DATASET_LABELS)))
    }
    ordered = scored.assign(
        _k=[
            (rank_model[str(a)], rank_method[str(b)], rank_steer[str(c)], rank_data[str(d)])
            for a, b, c, d in zip(
                scored["model"], scored["method"], scored["steering"], scored["dataset"], strict=True
            )
        ]
    ).sort_values("_k", kind="stable")
    return pd.DataFrame(
        {
            "model": [style.display(m) for m in ordered["model"]],
            "method": [style.method_label(m) for m in ordered["method"]],
            "steering": [style.label(s, style.STEERING_LABELS) for s in ordered["steering"]],
            "dataset": [style.label(d, style.DATASET_LABELS) for d in ordered["dataset"]],
            "TV (95% CI)": [shown(r, min_parsed) for _, r in ordered.iterrows()],
            "n": ordered["n"].astype(int).astype(str),
            "extraction": [_num(x) for x in ordered["extraction_rate"]],
        }
    ).reset_index(drop=True)


def calibration_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The supervision paper's Table 1/7 shape from ``calibration.summary.kambhatla_table``: raw and
    calibrated alignment (as a percentage, as the paper prints it) and TV per setting, ``*`` where the
    paired t-test is significant after Bonferroni correction."""
    if table.empty:
        return pd.DataFrame()
    keys = [k for k in ("model", "dataset", "method", "steering") if k in table.columns]
    out = pd.DataFrame({k: table[k].astype(str) for k in keys})
    out["method"] = [style.method_label(m) for m in out["method"]]
    out["dataset"] = [style.label(d, style.DATASET_LABELS) for d in out["dataset"]]
    out = out.rename(columns={"steering": "prompt"})
    out["n"] = table["n"].astype(int).astype(str)
    out["alignment raw (%)"] = [_num(100 * x, 1) for x in table["alignment_raw"]]
    out["alignment calibrated (%)"] = [
        f"{_num(100 * x, 1)}{m}"
        for x, m in zip(table["alignment_calibrated"], table["alignment_mark"], strict=True)
    ]
    out["TV raw"] = [_num(x) for x in table["tv_raw"]]
    out["TV calibrated"] = [
        f"{_num(x)}{m}" for x, m in zip(table["tv_calibrated"], table["tv_mark"], strict=True)
    ]
    return out


def spread_frame(spread: pd.DataFrame) -> pd.DataFrame:
    """Figure 2's numbers: mean and standard deviation of alignment per setting, raw and calibrated."""
    if spread.empty:
        return pd.DataFrame()
    out = spread.copy()
    for c in ("mean_raw", "std_raw", "mean_calibrated", "std_calibrated"):
        out[c] = [_num(x) for x in out[c]]
    out["method"] = [style.method_label(m) for m in out["method"]]
    return out.rename(columns={"steering": "prompt"})


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (text cells, ``|`` escaped)."""
    if df.empty:
        return ""

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(c) for c in df.columns) + " |",
        "| " + " | ".join("---" for _ in df.columns) + " |",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def leaderboard_markdown(rows: Sequence[Mapping[str, Any]], min_parsed: float = MIN_PARSED) -> str:
    """The leaderboard in Markdown (e.g. an MLflow run description): Table 1a (mean TV ± half of the 95%
    interval, lower is better), the baselines, the knowledge-to-simulation gap and, when any cell parsed
    fewer than ``min_parsed`` of its answers, a line naming those cells."""
    df = _frame(rows)
    if df.empty:
        return "_No scored cells._\n"
    sel, _, _ = aggregate_selection(df)
    parts = []
    if not sel.empty:
        parts.append(
            f"**Mean total variation** ({headline_caption(df)}; ± half of the 95% bootstrap interval; "
            f"lower is better)\n"
        )
        parts.append(markdown_table(table_1a(df, min_parsed)))
    note = filler_note(list(df.to_dict("records")), min_parsed)
    if note:
        parts.append(f"**{FILLER_MARK} Mostly filler:** {note}.\n")
    base = baselines_table(df)
    if not base.empty:
        parts.append("**Baselines**\n")
        parts.append(markdown_table(base))
    kss = kss_frame(df, min_parsed)
    if not kss.empty:
        parts.append("**Knowledge-to-simulation gap** TV(sequence) / TV(verbalize) - 1\n")
        parts.append(markdown_table(kss))
    return "\n".join(parts) if parts else "_No scored cells._\n"


__all__ = [
    "FILLER_MARK",
    "baselines_table",
    "dataset_scope",
    "headline_caption",
    "published_table",
    "shown",
    "calibration_frame",
    "detail_table",
    "kss_frame",
    "leaderboard_markdown",
    "markdown_table",
    "plus_minus",
    "spread_frame",
    "table_1a",
]
