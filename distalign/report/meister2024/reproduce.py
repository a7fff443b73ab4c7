"""Reproduce the paper's tables (and the data of its figures) from the release alone.

The release's model outputs and the annotators' estimates are imported as predictions and scored by the
same code as ``distalign score`` (``score_predictions`` + ``leaderboard``); each table is then set beside
the published numbers (``tables``, ``notes``). Everything is written as CSV + Markdown.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from distalign.report import figures as F
from distalign.report import style
from distalign.report.figures import save_figure
from distalign.report.leaderboard import ALL_STEERING, baseline_rows, kss_table, leaderboard
from distalign.report.meister2024 import tables
from distalign.report.meister2024.annotations import note_empty_steering, note_no_verbalized_coin
from distalign.report.meister2024.countries import country_markdown, country_table
from distalign.report.meister2024.coverage import coverage_markdown
from distalign.report.meister2024.ece import readings
from distalign.report.meister2024.figure_data import (
    FIGURE4_METHOD,
    coin_frame,
    reliability_frame,
    steering_frame,
)
from distalign.report.meister2024.humans import (
    derived_human_tvs,
    human_predictions,
    in_out_group_predictions,
    read_exports,
)
from distalign.report.meister2024.ingroup import table_6
from distalign.report.meister2024.likert import figure5, figure5_frame, figure13, figure13_frame
from distalign.report.meister2024.no_steering_table import table_10
from distalign.report.meister2024.notes import NYT_INTERVALS, Provenance
from distalign.report.meister2024.nyt_books import figure3, figure3_frame
from distalign.report.meister2024.published import published, release_leaderboard
from distalign.report.meister2024.release import RERUN, import_release
from distalign.scoring.predictions import PredictionsWarning
from distalign.scoring.score import score_predictions
from distalign.survey.model import DATASETS, Survey
from distalign.survey.paths import data_dir as resolve_data_dir
from distalign.survey.registry import load_survey

HUMAN_DATASETS: tuple[str, ...] = ("opinionqa", "nyt_books")
TITLES: dict[str, str] = {
    "table1a": "Table 1a: mean TV, persona + few-shot steering, three datasets",
    "table1b": "Table 1b: knowledge-to-simulation gap TV(seq)/TV(verbalize) - 1",
    "table2": "Table 2: human annotators (OpinionQA + NYT) by steering mode, and the models on the same data",
    "table3": "Table 3: ECE of log-p before and after temperature scaling (persona + few-shot)",
    "table6": "Table 6: annotators estimating their own group (in-group) vs the other group (out-group)",
    "table10": "Table 10: no steering beside persona + few-shot steering (OpinionQA and NYT)",
    "table_global_countries": (
        "GlobalOpinionQA (appendix): the evaluated countries and each model's mean TV there, "
        "persona + few-shot"
    ),
    **{f"table_{d}": f"Per-dataset table: {d} (each steering mode)" for d in DATASETS},
    "figure2_coin": "Figure 2: the biased coin, predicted against stated P(heads)",
    "figure3_nyt_books": (
        "Figure 3: NYT books with the largest Republican - Democrat differences in the annotators' answers"
    ),
    "figure4_steering": "Figure 4: TV by steering mode and dataset, models (best method) and humans",
    "figure5_likert": "Figure 5: marginal Likert distribution over the 235 NYT books, persona vs few-shot",
    "figure6_reliability": "Figure 6: reliability of log-p before and after temperature scaling",
    "figure13_human_likert": "Figure 13: the annotators' marginal Likert distribution over the 235 NYT books",
}


@dataclass(frozen=True)
class Reproduction:
    tables: dict[str, pd.DataFrame]
    figures: dict[str, pd.DataFrame]
    timings: dict[str, float] = field(default_factory=dict)
    #: tables of their own shape (not ``tables.TABLE_COLUMNS``), written with ``country_markdown``
    wide: dict[str, pd.DataFrame] = field(default_factory=dict)


def load_surveys(root: Path, names: Sequence[str] = DATASETS) -> dict[str, Survey]:
    return {name: load_survey(name, root) for name in names}


def _evaluated(df: pd.DataFrame, surveys: Mapping[str, Survey]) -> np.ndarray:
    """Whether each row names an (item, group) pair the benchmark evaluates (or no group: every group)."""
    pairs = {(name, d.item_id, d.attribute, d.group) for name, s in surveys.items() for d in s.distributions}
    items = {(name, i) for name, s in surveys.items() for i in s.items}
    return np.array(
        [
            (ds, i) in items if g is None or g != g else (ds, i, a, g) in pairs
            for ds, i, a, g in zip(df["dataset"], df["item_id"], df["attribute"], df["group"], strict=True)
        ],
        dtype=bool,
    )


def score_rows(df: pd.DataFrame, surveys: Mapping[str, Survey]) -> pd.DataFrame:
    """``score_predictions`` as ``distalign score`` runs it on a real file (rows for groups the benchmark
    does not evaluate skipped; outputs with no mass on any option are extraction failures, left out of the
    means), with ``row`` = the 1-based position in ``df``, so each score maps back to its imported row."""
    rows = df.assign(row=np.arange(1, len(df) + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PredictionsWarning)  # the skipped groups are expected here
        return score_predictions(rows, surveys, unparsed="exclude", strict=False)


def _provenance(
    preds: pd.DataFrame, scored: pd.DataFrame, surveys: Mapping[str, Survey]
) -> tables.ProvenanceOf:
    """What the release made of the evaluated rows of each model x method x steering x dataset."""
    status = scored.drop_duplicates("row").set_index("row")["status"]
    frame = preds.assign(
        evaluated=_evaluated(preds, surveys),
        status=status.reindex(np.arange(1, len(preds) + 1)).fillna("unparsed").to_numpy(),
    )
    frame = frame[frame["evaluated"]]
    mass = frame["release_mass"]
    frame = frame.assign(
        zero=(mass.fillna(0) == 0),
        off=((mass - 1).abs() > 0.01) | mass.isna(),
        unparsed=frame["status"] == "unparsed",
        tv_ok=frame["release_tv"].notna(),
        tv=frame["release_tv"].fillna(0.0),
    )
    sums = frame.groupby(["model", "method", "steering", "dataset"])[
        ["zero", "off", "unparsed", "tv_ok", "tv"]
    ].sum()
    counts = frame.groupby(["model", "method", "steering", "dataset"]).size()
    # plain dicts: the tables ask a few hundred times, and a MultiIndex look-up each time costs seconds
    sum_of = dict(zip(sums.index, sums.to_numpy(dtype=float), strict=True))
    count_of = dict(zip(counts.index, counts.to_numpy(), strict=True))

    def of(model: str, method: str, steerings: Sequence[str], datasets: Sequence[str]) -> Provenance:
        keys = [
            (model, method, s, d) for s in steerings for d in datasets if (model, method, s, d) in count_of
        ]
        if not keys:
            return Provenance(0, 0, 0, 0, float("nan"))
        part = np.array([sum_of[k] for k in keys])  # columns: zero, off, unparsed, tv_ok, tv
        tv: dict[str, float] = {}
        ok: dict[str, float] = {}
        for k, (_, _, _, tv_ok, tv_sum) in zip(keys, part, strict=True):
            tv[k[3]], ok[k[3]] = tv.get(k[3], 0.0) + tv_sum, ok.get(k[3], 0.0) + tv_ok
        means = [tv[d] / ok[d] if ok[d] else np.nan for d in tv]
        complete = not np.isnan(means).any() and len(means) == len(set(datasets))
        return Provenance(
            int(sum(count_of[k] for k in keys)),
            int(part[:, 0].sum()),
            int(part[:, 1].sum()),
            int(part[:, 2].sum()),
            float(np.mean(means)) if complete else np.nan,
        )

    return of


def reproduce(
    data_dir: str | Path | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    figure4_method: str | None = FIGURE4_METHOD,
) -> Reproduction:
    """All tables and figure frames from the release in ``data_dir``; Figure 4 plots ``figure4_method``
    (the paper's Sequence by default; None: each model's best method)."""
    root = resolve_data_dir(data_dir)
    clock: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        clock[name] = now - t
        t = now

    surveys = load_surveys(root)
    preds = import_release(root, provenance=True)
    # the release pooled the answers it holds twice for one pair (``*_rerun``) with the others
    preds = preds.assign(steering=preds["steering"].astype(str).str.removesuffix(RERUN))
    exports = read_exports(root)
    humans = human_predictions(root, exports=exports)
    split = in_out_group_predictions(root, exports=exports)
    lap("read")
    scored = score_rows(preds, surveys)
    human_surveys = {d: surveys[d] for d in HUMAN_DATASETS}
    human_scored = score_rows(humans, human_surveys)
    split_scored = score_rows(split, human_surveys)
    lap("score")
    rows = leaderboard(scored, n_resamples=n_resamples, seed=seed)
    human_rows = [
        {**r, "kind": "human"} for r in leaderboard(human_scored, n_resamples=n_resamples, seed=seed)
    ]
    two = scored[scored["dataset"].isin(HUMAN_DATASETS) & scored["steering"].isin(tables.STEERED)]
    two_rows = leaderboard(two, n_resamples=n_resamples, seed=seed)
    split_rows = leaderboard(split_scored, n_resamples=n_resamples, seed=seed)
    base = baseline_rows(surveys, n_resamples=n_resamples, seed=seed)
    kss = kss_table(rows, ALL_STEERING, min_parsed=None)  # the paper keeps every pair
    lap("bootstrap")
    prov = _provenance(preds, scored, surveys)
    release = release_leaderboard(root)
    derived = derived_human_tvs(root)
    table1a = tables.table_1a(rows, base, prov)
    out = {
        "table1a": table1a,
        "table1b": tables.table_1b(kss, table1a),
        "table2": tables.table_2(human_rows, two_rows, derived, release, prov),
        "table3": tables.table_3(scored, readings(root)),
        "table6": table_6(split_rows),
        "table10": table_10(rows, two_rows, human_rows, release, prov, derived),
    }
    per_dataset = tables.dataset_tables(rows, base, release, prov)
    out |= {f"table_{d}": per_dataset[per_dataset["dataset"] == d].reset_index(drop=True) for d in DATASETS}
    figures = {
        "figure2_coin": coin_frame(root),
        "figure3_nyt_books": figure3_frame(root, n_resamples=n_resamples, seed=seed),
        "figure5_likert": figure5_frame(root, n_resamples=n_resamples, seed=seed),
        "figure4_steering": steering_frame(rows, human_rows, figure4_method),
        "figure6_reliability": reliability_frame(scored),
        "figure13_human_likert": figure13_frame(
            root, humans, surveys["nyt_books"], n_resamples=n_resamples, seed=seed
        ),
    }
    wide = {"table_global_countries": country_table(scored, surveys["global_opinions"])}
    lap("tables")
    return Reproduction(out, figures, clock, wide)


#: each figure's frame -> the report's drawing of it
FIGURES = {
    "figure2_coin": lambda frame, colors: note_no_verbalized_coin(F.coin_figure(frame, colors)),
    "figure3_nyt_books": lambda frame, colors: figure3(frame),
    "figure4_steering": lambda frame, colors: note_empty_steering(F.steering_figure(frame, colors)),
    "figure5_likert": lambda frame, colors: figure5(frame),
    "figure6_reliability": F.reliability_figure,
    "figure13_human_likert": lambda frame, colors: figure13(frame),
}


def _intro(name: str) -> str:
    note = published()["notes"].get(name, "")
    nyt = NYT_INTERVALS[0].upper() + NYT_INTERVALS[1:]
    extra = {
        "table1a": f"Intervals: 95% percentile bootstrap (1000 resamples of each dataset's pool). {nyt}.",
        "table_nyt_books": f"{nyt}.",
        "table6": (
            "Annotators of the persona and few-shot surveys split by their own answer to the party, gender "
            "and race questions (OpinionQA: Democrat/Republican, Male/Female, Black/White; NYT: party and "
            "gender); 'in-group': a group's members estimating their own group, 'out-group': the same "
            "members estimating the other group of the attribute; the first 4 complete answers of those "
            "members per question, pairs pooled over the groups, 95% bootstrap intervals over the pairs. "
            "Annotators who answered 'Other' are in neither."
        ),
        "table10": (
            "Without steering the model (or annotator) is asked the question alone and its one answer is "
            "scored against every group. 'all' = the mean of the OpinionQA and NYT means; the steered 'all' "
            "row pools persona and few-shot. GlobalOpinionQA is absent: the release ran no prompt without "
            "steering there (no task0 outputs, blank CSV rows)."
        ),
        "table_global_countries": (
            "A country is evaluated on a question when it is one of the first three of the question's "
            "countries (Global_Values/data/data.json); 'pairs' counts those questions. TV per model | "
            "method: the mean over the country's persona and few-shot answers (unreadable answers left out). "
            "The paper's text is not available here, so no printed value stands beside these; the release "
            "computes none per country."
        ),
        "table3": (
            "'reproduced' is the plain ECE: each option of each (prediction, group) pair is one "
            "observation (n), 10 equal-width bins on [0, 1]. 'release recomputed' is the paper's own "
            "reading, reconstructed from analysis/temp_scale_figs.ipynb: each option's avg_actual_results "
            "against expected_results in the release's model_logprobs (before) and rescaled_model_logprobs "
            "(after) files, persona + few-shot, the three datasets pooled, 10 equal-width bins between the "
            "smallest and largest model probability. "
            "'temperature' is the release's own scaling, fitted on the very rows it is evaluated on (one "
            "temperature per model x dataset x steering mode), so it is an in-sample figure."
        ),
    }.get(name, "")
    return " ".join(x for x in (note, extra) if x)


def write_reproduction(rep: Reproduction, out: str | Path) -> list[Path]:
    """Each table as ``NAME.csv`` + ``NAME.md``, the figure frames as CSV, and ``reproduction.md`` (all
    tables in one page)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    pages = [coverage_markdown()]
    for name, frame in rep.tables.items():
        frame.to_csv(out / f"{name}.csv", index=False)
        md = tables.markdown(frame, TITLES.get(name, name), _intro(name))
        (out / f"{name}.md").write_text(md, encoding="utf-8")
        written += [out / f"{name}.csv", out / f"{name}.md"]
        pages.append(md)
    for name, frame in rep.wide.items():
        frame.to_csv(out / f"{name}.csv", index=False)
        md = country_markdown(frame, TITLES.get(name, name), _intro(name))
        (out / f"{name}.md").write_text(md, encoding="utf-8")
        written += [out / f"{name}.csv", out / f"{name}.md"]
        pages.append(md)
    colors = style.colors(
        m for frame in rep.figures.values() if "model" in frame for m in frame["model"].astype(str)
    )
    for name, frame in rep.figures.items():
        frame.to_csv(out / f"{name}.csv", index=False)
        png = save_figure(FIGURES[name](frame, colors), out / "figures" / f"{name}.png")
        written += [out / f"{name}.csv", png]
        pages.append(f"## {TITLES.get(name, name)}\n\n![{name}](figures/{name}.png)\n")
    (out / "reproduction.md").write_text("\n".join(pages), encoding="utf-8")
    written.append(out / "reproduction.md")
    return written


def summary(rep: Reproduction) -> list[dict[str, Any]]:
    """Table 1a/1b/2/3 rows for a terminal: reproduced beside published."""
    return [
        {"table": name, **r}
        for name in ("table1a", "table1b", "table2", "table3", "table6")
        for r in rep.tables[name].to_dict("records")
    ]


__all__ = ["Reproduction", "load_surveys", "reproduce", "score_rows", "summary", "write_reproduction"]
