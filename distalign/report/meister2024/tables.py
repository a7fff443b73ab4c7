"""The paper's tables, reproduced from the release, each beside the published value and, where they differ,
one line on why (``notes``).

Every table is a long frame with the columns ``TABLE_COLUMNS``: the row's keys, the reproduced mean with its
95% bootstrap interval (scored exactly as ``distalign score`` scores), the published mean and half
interval (``pm``) with its source, ``release_recomputed`` (the same mean from the release's own parse of
each answer, where the release has one) and ``why``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from distalign.metrics import expected_calibration_error
from distalign.report.leaderboard import ALL_STEERING
from distalign.report.meister2024 import notes
from distalign.report.meister2024.ece import Reading
from distalign.report.meister2024.figure_data import logp_observations
from distalign.report.meister2024.published import BOTH, published, published_frame
from distalign.report.meister2024.release import MODELS
from distalign.survey.model import DATASETS

TABLE_COLUMNS: tuple[str, ...] = (
    "kind", "model", "method", "steering", "dataset", "reproduced", "ci_low", "ci_high", "n",
    "extraction_rate", "published", "pm", "source", "release_recomputed", "diff", "why",
)  # fmt: skip
METHOD_ORDER: tuple[str, ...] = ("verbalize", "seq", "logprobs", "logprobs+temperature")
STEERED: tuple[str, ...] = ("persona", "few_shot")
#: the aggregates of the leaderboard: all three datasets; OpinionQA + NYT (the human study)
THREE, TWO = "three", "all"
#: Table 3 prints 2 decimals; a reading within this of it reproduces it
ECE_TOLERANCE = 0.02
ProvenanceOf = Callable[[str, str, Sequence[str], Sequence[str]], notes.Provenance]


def _row(r: Mapping[str, Any] | None, **keys: Any) -> dict[str, Any]:
    """A table row from a leaderboard row (``None``: not reproduced)."""
    out = {c: math.nan for c in ("reproduced", "ci_low", "ci_high", "published", "pm", "release_recomputed")}
    out |= {"n": 0, "extraction_rate": math.nan, "source": "", "why": ""}
    if r is not None:
        out |= {
            "reproduced": r["mean"],
            "ci_low": r["ci_low"],
            "ci_high": r["ci_high"],
            "n": r["n"],
            "extraction_rate": r.get("extraction_rate"),
        }
    return out | keys


def _finish(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for c in TABLE_COLUMNS:
        if c not in frame:
            frame[c] = math.nan if c != "why" else ""
    frame["diff"] = frame["reproduced"] - frame["published"]
    return frame[list(TABLE_COLUMNS)]


def _key(*parts: Any) -> tuple:
    """A lookup key; missing parts (None, NaN) compare equal."""
    return tuple("" if p is None or (isinstance(p, float) and math.isnan(p)) else p for p in parts)


def _index(rows: Sequence[Mapping[str, Any]]) -> dict[tuple, Mapping[str, Any]]:
    return {_key(r["kind"], r["model"], r["method"], r["steering"], r["dataset"]): r for r in rows}


def _rounded(row: Mapping[str, Any]) -> bool:
    """Values of the fixture are printed with 3 decimals; the release's CSV and JSON are not rounded."""
    return (str(row["source"]).startswith("paper") or row["source"] == "release CSV") and row.get(
        "fixture", True
    )


def _explain(row: dict[str, Any], reason: str, tol: float | None = None) -> None:
    """Sets ``why`` when the reproduced and published values differ beyond rounding and bootstrap noise."""
    if not notes.agrees(row["reproduced"], row["published"], row["pm"], _rounded(row), tol):
        row["why"] = reason or "unexplained"


def _model_reason(row: dict[str, Any], prov: notes.Provenance) -> str:
    reason = notes.model_reason(row["method"], prov)
    own = prov.release_mean
    if not notes.agrees(own, row["published"], row["pm"], _rounded(row)):
        reason = "; ".join(x for x in (reason, notes.UNEXPLAINED) if x)
    return reason


def table_1a(
    rows: Sequence[Mapping[str, Any]], baselines: Sequence[Mapping[str, Any]], provenance: ProvenanceOf
) -> pd.DataFrame:
    """Mean TV per model x method on persona + few-shot steering, aggregated over the three datasets, with
    the uniform, majority and 30-sample baselines."""
    index = _index(rows)
    pub = {(p.model, p.method): p for p in published_frame("table1a").itertuples()}
    out = []
    present = {(r["model"], r["method"]) for r in rows if r["kind"] == "model"}
    models = [m for m in MODELS if any(k[0] == m for k in present | set(pub))]
    models += sorted({m for m, _ in present} - set(models))
    for model in models:
        for method in METHOD_ORDER:
            r = index.get(_key("model", model, method, ALL_STEERING, THREE))
            p = pub.get((model, method))
            if r is None and p is None:
                continue
            row = _row(r, kind="model", model=model, method=method, steering=ALL_STEERING, dataset=THREE)
            if p is not None:
                row |= {"published": p.mean, "pm": p.pm, "source": p.source}
            prov = provenance(model, method, STEERED, DATASETS)
            row["release_recomputed"] = prov.release_mean
            _explain(row, _model_reason(row, prov))
            out.append(row)
    base_index = {(r["model"], r["dataset"]): r for r in baselines}
    for p in published_frame("baselines").itertuples():
        row = _row(base_index.get((p.baseline, THREE)), kind="baseline", model=p.baseline, dataset=THREE)
        row |= {"method": None, "steering": None, "published": p.mean, "pm": p.pm, "source": p.source}
        _explain(row, notes.BASELINE_REASONS.get(p.baseline, {}).get(THREE, ""))
        out.append(row)
    return _finish(out)


def table_1b(kss: Sequence[Mapping[str, Any]], table1a: pd.DataFrame) -> pd.DataFrame:
    """KSS = TV(seq)/TV(verbalize) - 1 per model on the three-dataset aggregate; ``release_recomputed`` is
    the same ratio of the release's own per-row TVs (Table 1a)."""
    pub = {p.model: p for p in published_frame("table1b").itertuples()}
    own = {(r.model, r.method): r.release_recomputed for r in table1a.itertuples() if r.kind == "model"}
    pms = {(r.model, r.method): r.pm for r in table1a.itertuples() if r.kind == "model"}
    out = []
    by_model = {r["model"]: r for r in kss if r["dataset"] == THREE and r["steering"] == ALL_STEERING}
    for model in [m for m in MODELS if m in by_model or m in pub] + sorted(set(by_model) - set(MODELS)):
        r = by_model.get(model)
        row = _row(
            None, kind="kss", model=model, method="seq/verbalize", steering=ALL_STEERING, dataset=THREE
        )
        if r is not None:
            row |= {"reproduced": r["kss"], "tv_seq": r["tv_seq"], "tv_verbalize": r["tv_verbalize"]}
        if model in pub:
            row |= {"published": pub[model].kss, "source": pub[model].source}
        seq, verb = own.get((model, "seq"), math.nan), own.get((model, "verbalize"), math.nan)
        row["release_recomputed"] = seq / verb - 1 if verb and not math.isnan(verb) else math.nan
        tol = None
        if r is not None:
            tol = notes.ratio_tolerance(
                r["tv_seq"],
                pms.get((model, "seq"), math.nan),
                r["tv_verbalize"],
                pms.get((model, "verbalize"), math.nan),
            )
        _explain(row, notes.KSS_REASON, tol)
        out.append(row)
    frame = _finish(out)
    for c in ("tv_seq", "tv_verbalize"):
        frame[c] = [r.get(c, math.nan) for r in out]
    return frame


def table_2(
    human_rows: Sequence[Mapping[str, Any]],
    model_rows: Sequence[Mapping[str, Any]],
    derived: pd.DataFrame,
    release: pd.DataFrame,
    provenance: ProvenanceOf,
) -> pd.DataFrame:
    """The human annotators by steering mode on OpinionQA, NYT and both (mean of the two dataset means),
    beside the authors' derived TVs and the paper; then each model x method on the same two datasets
    (persona + few-shot) beside the release's own ``both`` rows."""
    two = ("opinionqa", "nyt_books")
    paper = {(p.model, p.steering, p.dataset): p for p in published_frame("table2").itertuples()}
    index = _index([{**r, "kind": "human"} for r in human_rows])
    out = []
    for steering in ("none", *STEERED, ALL_STEERING):
        for dataset in (*two, BOTH):
            key = ("human", "human", "estimate", steering, TWO if dataset == BOTH else dataset)
            row = _row(
                index.get(key),
                kind="human",
                model="human",
                method="estimate",
                steering=steering,
                dataset=dataset,
            )
            p = paper.get(("human", steering, dataset))
            modes = list(STEERED) if steering == ALL_STEERING else [steering]
            if p is not None:
                row |= {"published": p.mean, "pm": p.pm, "source": p.source}
                _explain(row, notes.HUMAN_PAPER)
            else:
                means = [
                    derived[(derived["steering"].isin(modes)) & (derived["dataset"] == d)]["tv"].mean()
                    for d in (two if dataset == BOTH else (dataset,))
                ]
                row |= {"published": float(np.mean(means)), "source": "release derived JSON"}
                _explain(row, notes.HUMAN_DERIVED)
            out.append(row)
    release_both = {
        (r.model, r.method): r
        for r in release[(release["dataset"] == BOTH) & (release["kind"] == "model")].itertuples()
    }
    model_index = _index(model_rows)
    for model in MODELS:
        for method in METHOD_ORDER:
            r = model_index.get(_key("model", model, method, ALL_STEERING, TWO))
            p = release_both.get((model, method))
            if r is None or p is None or math.isnan(p.mean):
                continue
            row = _row(r, kind="model", model=model, method=method, steering=ALL_STEERING, dataset=BOTH)
            row |= {
                "published": p.mean,
                "pm": p.pm,
                "source": "paper Table 2 (value: release CSV, unrounded)",
                "fixture": False,
            }
            prov = provenance(model, method, STEERED, two)
            row["release_recomputed"] = prov.release_mean
            _explain(row, _model_reason(row, prov))
            out.append(row)
    return _finish(out)


def table_3(scored: pd.DataFrame, readings: Sequence[Reading] = (), n_bins: int = 10) -> pd.DataFrame:
    """ECE of log-p before and after the release's temperature scaling, per model and dataset (and over
    all datasets), persona + few-shot steering: ``reproduced`` is the plain ECE (equal-width bins on
    [0, 1]) of the scored rows; on the pooled rows, ``release_recomputed`` is the paper's own reading of
    the release's files (``ece.readings``) and ``published`` the paper's Table 3."""
    pub = {(p["model"], p["calibration"]): p for p in published()["table3"]}
    paper = {(r.model, r.calibration): r for r in readings}
    out = []
    for (model, dataset, calibration), (pred, human, mask) in logp_observations(scored).items():
        row = _row(None, kind="ece", model=model, method=calibration, steering=ALL_STEERING, dataset=dataset)
        row |= {
            "reproduced": expected_calibration_error(pred, human, mask, n_bins=n_bins),
            "n": int(mask.sum()),
        }
        p, r = pub.get((model, calibration)), paper.get((model, calibration))
        if dataset == "all" and p is not None:
            row |= {"published": p["ece"], "source": p["source"]}
            if r is not None:
                row["release_recomputed"] = r.ece
                near = min(abs(v - p["ece"]) for v in (r.ece, row["reproduced"]))
                if near > ECE_TOLERANCE:
                    row["why"] = notes.ece_reason(r, p["ece"])
        out.append(row)
    frame = _finish(out)
    order = {d: i for i, d in enumerate([*DATASETS, "all"])}
    return frame.sort_values(
        ["model", "dataset", "method"], key=lambda s: s.map(order) if s.name == "dataset" else s
    )


def dataset_tables(
    rows: Sequence[Mapping[str, Any]],
    baselines: Sequence[Mapping[str, Any]],
    release: pd.DataFrame,
    provenance: ProvenanceOf,
) -> pd.DataFrame:
    """Per dataset: each model x method x steering mode (none, persona, few-shot) and the baselines, beside
    the release's own per-dataset leaderboard."""
    index = _index(rows)
    pub = {_key(r.kind, r.model, r.method, r.steering, r.dataset): r for r in release.itertuples()}
    out = []
    for dataset in DATASETS:
        for model in MODELS:
            for method in METHOD_ORDER:
                for steering in ("none", *STEERED):
                    r = index.get(_key("model", model, method, steering, dataset))
                    p = pub.get(_key("model", model, method, steering, dataset))
                    if r is None and (p is None or math.isnan(p.mean)):
                        continue
                    row = _row(
                        r, kind="model", model=model, method=method, steering=steering, dataset=dataset
                    )
                    if p is not None and not math.isnan(p.mean):
                        row |= {"published": p.mean, "pm": p.pm, "source": "release CSV", "fixture": False}
                    prov = provenance(model, method, (steering,), (dataset,))
                    row["release_recomputed"] = prov.release_mean
                    reason = _model_reason(row, prov)
                    if steering == "none" and dataset == "opinionqa":
                        reason = "; ".join(x for x in (notes.NO_STEERING_OPINIONQA, reason) if x)
                    _explain(row, reason)
                    out.append(row)
        base_index = {(r["model"], r["dataset"]): r for r in baselines}
        for baseline, reasons in notes.BASELINE_REASONS.items():
            p = pub.get(_key("baseline", baseline, None, None, dataset))
            row = _row(base_index.get((baseline, dataset)), kind="baseline", model=baseline, dataset=dataset)
            row |= {"method": None, "steering": None}
            if p is not None:
                row |= {"published": p.mean, "pm": p.pm, "source": "release CSV", "fixture": False}
            _explain(row, reasons.get(dataset, ""))
            out.append(row)
    return _finish(out)


def markdown(frame: pd.DataFrame, title: str, intro: str = "") -> str:
    """A Markdown table: keys, reproduced mean [95% CI], published ± pm (source), why."""
    keys = [c for c in ("model", "method", "steering", "dataset") if frame[c].notna().any()]
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro, ""]
    head = [*keys, "reproduced [95% CI]", "n", "published", "release recomputed", "why"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in frame.itertuples(index=False):
        d = r._asdict()
        rep = "-" if _nan(d["reproduced"]) else f"{d['reproduced']:.3f}"
        if not _nan(d["ci_low"]):
            rep += f" [{d['ci_low']:.3f}, {d['ci_high']:.3f}]"
        pub = "-" if _nan(d["published"]) else f"{d['published']:.3f}"
        if not _nan(d["pm"]):
            pub += f" ± {d['pm']:.3f}"
        if d["source"]:
            pub += f" ({d['source']})"
        own = "-" if _nan(d["release_recomputed"]) else f"{d['release_recomputed']:.3f}"
        cells = [
            *("" if _nan(d[k]) else str(d[k]) for k in keys),
            rep,
            str(d["n"]) if d["n"] else "",
            pub,
            own,
            d["why"] if isinstance(d["why"], str) else "",
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


__all__ = ["TABLE_COLUMNS", "dataset_tables", "markdown", "table_1a", "table_1b", "table_2", "table_3"]


#: the row helpers, for the modules of the other tables (Tables 6, 10, the GlobalOpinionQA countries)
table_row, finish, row_key, index_rows = _row, _finish, _key, _index
explain, model_reason = _explain, _model_reason
