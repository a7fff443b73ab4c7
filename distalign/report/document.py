"""``distalign report``'s output: the tables and figures that apply to some scored items, written as
``report.html`` (tables as HTML tables, figures linked from ``figures/*.png``), ``report.md`` (Markdown
tables, figure links) and ``tables/*.csv`` (unformatted numbers).

The benchmark's views (Table 1a/1b, baselines, Figure 4, reliability diagrams of log-p) come from any
scored items; the supervision paper's (Table 1/7 with significance marks, Figures 2 and 3, per-group
effects) are added when the items hold calibrated cells.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from matplotlib.figure import Figure

from distalign.calibration.paper_tables import not_public_line
from distalign.calibration.report import sweep_tables
from distalign.errors import InputError
from distalign.records.config import CalibrationConfig
from distalign.report import figures as F
from distalign.report import style, tables
from distalign.report.items import board, calibration_names, combine, human_distributions, is_calibrated
from distalign.report.leaderboard import (
    MIN_PARSED,
    baseline_rows,
    filler_note,
    human_baseline_rows,
    kss_table,
    leaderboard,
    steering_label,
)
from distalign.scoring.scores import in_order
from distalign.survey.model import DATASETS, Survey

log = logging.getLogger(__name__)

FIGURES, TABLES = "figures", "tables"
#: a long table is shown folded in the HTML report past this many rows
FOLD_ROWS = 15


@dataclass(frozen=True)
class ReportFiles:
    """Where a report was written (paths under ``out``)."""

    out: Path
    html: Path
    markdown: Path
    tables: Mapping[str, Path] = field(default_factory=dict)
    figures: Mapping[str, Path] = field(default_factory=dict)
    #: the leaderboard rows the report shows (``report.leaderboard.ROW_KEYS``)
    rows: tuple[Mapping[str, Any], ...] = ()


@dataclass
class _Section:
    key: str
    title: str
    intro: str = ""
    #: tables and figures in reading order
    blocks: list[dict[str, Any]] = field(default_factory=list)


class _Writer:
    """Collects a report's files under ``out`` while the sections are built."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.tables: dict[str, Path] = {}
        self.figures: dict[str, Path] = {}

    def csv(self, name: str, frame: pd.DataFrame) -> str:
        path = self.out / TABLES / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        self.tables[name] = path
        return f"{TABLES}/{name}.csv"

    def table(
        self, section: _Section, name: str, caption: str, shown: pd.DataFrame, raw: pd.DataFrame
    ) -> None:
        """A table shown formatted (``shown``) and saved unformatted (``raw``, as CSV)."""
        if shown.empty:
            return
        html = shown.to_html(index=False, border=0, na_rep=tables.DASH, escape=True, classes="table")
        html = _FILLER_CELL.sub(r'<td class="filler" title="mostly filler">\1</td>', html)
        section.blocks.append(
            {
                "kind": "table",
                "caption": caption,
                "html": html,
                "markdown": tables.markdown_table(shown),
                "csv": self.csv(name, raw),
                "rows": len(shown),
                "collapsed": len(shown) > FOLD_ROWS,
            }
        )

    def figure(
        self, section: _Section, name: str, caption: str, fig: Figure, data: pd.DataFrame | None = None
    ) -> None:
        """A figure, with its numbers as CSV (``data``) when no table of the report shows them."""
        path = F.save_figure(fig, self.out / FIGURES / f"{name}.png")
        self.figures[name] = path
        csv = self.csv(name, data) if data is not None else ""
        section.blocks.append(
            {"kind": "figure", "caption": caption, "path": f"{FIGURES}/{name}.png", "csv": csv}
        )


#: a table cell whose number is marked as mostly filler
_FILLER_CELL = re.compile(r"<td>([^<]*" + re.escape(tables.FILLER_MARK) + r")</td>")


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder", where=f"--out {out}")


def _benchmark(
    w: _Writer,
    items: pd.DataFrame,
    rows: list[dict[str, Any]],
    colors: Mapping[str, str],
    min_parsed: float,
    coverage: str,
    published: pd.DataFrame | None,
) -> list[_Section]:
    frame = pd.DataFrame(rows)
    sel, _, _ = tables.aggregate_selection(frame)
    headline = tables.headline_caption(frame)
    intro = (
        "Mean total variation (TV) between predicted and human distributions; lower is better. Intervals are "
        "95% bootstrap intervals over each dataset's (item, group) pairs; an aggregate is the mean of the "
        f"dataset means. A number from a cell where not every answer parsed shows the parsed share; "
        f"{tables.FILLER_MARK} marks a cell that parsed fewer than {min_parsed:.0%} of its answers (the rest "
        "are filler): it is hatched in the figures and left out of the knowledge-to-simulation gap."
    )
    if coverage:
        intro = f"Compared on: {coverage}. " + intro
    board_sec = _Section("leaderboard", "Leaderboard (Meister et al. 2024, Table 1)", intro)
    where = coverage or headline  # a comparison names its items too: "OpinionQA, 6 of 100 items; ..."
    caption = f"Table 1a: {where}"
    w.table(board_sec, "leaderboard", caption, tables.table_1a(frame, min_parsed), frame)
    note = filler_note(rows, min_parsed)
    if note:
        board_sec.blocks.append({"kind": "note", "text": f"{tables.FILLER_MARK} {note}."})
    if published is not None and len(published):
        shown_pub = tables.published_table(frame, published)
        w.table(
            board_sec,
            "published",
            f"Published values of the paper's models on all items of the release ({headline}; the "
            "release's leaderboard; ± half of its 95% interval; persona + few-shot without its own row: the "
            "mean of the two published means), for comparison with the same models recomputed above on the "
            "items compared",
            shown_pub,
            published,
        )
    if not sel.empty:
        w.figure(
            board_sec,
            "leaderboard",
            f"Mean TV per method and model ({where}); error bars: 95% bootstrap intervals; dashed "
            "lines: baselines."
            + (f" Hatched: fewer than {min_parsed:.0%} of answers parsed." if note else ""),
            F.leaderboard_figure(frame, colors, min_parsed, where=coverage or None),
        )
    base = frame[frame["kind"] == "baseline"] if len(frame) else frame
    w.table(board_sec, "baselines", "Baselines", tables.baselines_table(frame), base)
    kss = pd.DataFrame(kss_table(rows, min_parsed=min_parsed))
    w.table(
        board_sec,
        "kss",
        "Table 1b: knowledge-to-simulation gap TV(sequence) / TV(verbalize) - 1"
        + (f", {steering_label(str(kss['steering'].iloc[0]))}" if len(kss) else "")
        + (f" (cells below {min_parsed:.0%} parsed left out)" if note else ""),
        tables.kss_frame(frame, min_parsed),
        kss,
    )
    detail = _Section("by_steering", "By dataset and steering (Meister et al. 2024, Figure 4)")
    per = frame[frame["kind"].isin(["model", "human"])] if len(frame) else frame
    by_mode = per[~per["dataset"].isin(tables.AGGREGATES) & (per["steering"] != "all")] if len(per) else per
    if len(by_mode):
        humans = " humans in black;" if (by_mode["kind"] == "human").any() else ""
        hollow = (
            f" hollow markers: fewer than {min_parsed:.0%} of answers parsed;"
            if any(tables.is_filler(r, min_parsed) for r in by_mode.to_dict("records"))
            else ""
        )
        w.figure(
            detail,
            "steering",
            "Mean TV by steering mode, per dataset (columns) and method (rows); error bars: 95% bootstrap "
            f"intervals;{humans}{hollow}".rstrip(";")
            + ".",
            F.steering_figure(frame, colors, min_parsed),
        )
    w.table(detail, "leaderboard_rows", "Every leaderboard row", tables.detail_table(frame, min_parsed), per)
    sections = [board_sec, detail]
    rel = F.reliability_frame(items)
    if len(rel):
        both = {"none", "temperature"} <= set(rel["calibration"].astype(str))
        r = _Section(
            "reliability",
            "Calibration of log-p (Meister et al. 2024, Figure 6)",
            "Mean human probability against predicted option probability, in ten equal-width bins (hollow: "
            f"a bin of fewer than {F.SPARSE_BIN} probabilities; every bin's count is in the data CSV)"
            + (
                ", before and after temperature scaling; ECE = expected calibration error (before → after)."
                if both
                else "; ECE = expected calibration error."
            ),
        )
        w.figure(
            r, "reliability", "Reliability diagrams of log-p cells.", F.reliability_figure(rel, colors), rel
        )
        sections.append(r)
    return sections


#: further calibration tables, shown as computed (rounded): name -> caption
CALIBRATION_EXTRAS: dict[str, str] = {
    "extraction_rates": "Table 17: extraction rate per setting (answers that gave a distribution)",
    "method_anova": "Table 4: repeated-measures ANOVA across elicitation methods",
    "method_pairs": "Table 4: paired t-tests between methods (Bonferroni; counted where the ANOVA rejects)",
    "triple_anova": "Tables 2/4: per elicitation method, original vs CoT or few-shot vs calibrated "
    "(repeated-measures ANOVA per triple)",
    "triple_pairs": "Tables 2/4: paired t-tests within each triple (Bonferroni x3 within the triple; counted "
    "where its ANOVA rejects)",
    "few_example_groups": "Table 5: the groups whose alignment a calibrator trained on 5 distributions "
    "degrades most (mean over its draws), beside the one trained on the full train split",
    "out_of_domain": "Tables 11-12: out of domain (trained on the other datasets, tested on this one)",
    "logp_alignment": "Table 6 (log-p): alignment (%) on each dataset's test split, raw and calibrated; "
    "sig. * where the paired t-test is significant after Bonferroni correction.",
    "out_of_domain_methods": "Table 11: out of domain, alignment (%) on each dataset's test split: raw, "
    "calibrated on its own training split, calibrated on the other datasets'.",
    "out_of_domain_logp": "Table 12: out of domain for log-p, as Table 11.",
}
#: the tables in the paper's layout, whose WGM / WVS columns need surveys that are not public
PAPER_LAYOUT = ("logp_alignment", "out_of_domain_methods", "out_of_domain_logp")


def _supervision(
    w: _Writer, items: pd.DataFrame, colors: Mapping[str, str], seed: int, config: CalibrationConfig | None
) -> list[_Section]:
    calibrated = items[calibration_names(items) != "none"]
    computed = sweep_tables(calibrated, seed=seed, config=config)
    sec = _Section(
        "calibration",
        "Supervised calibration (Kambhatla et al. 2025)",
        "Opinion alignment 1 - WD/(N-1) and TV on the rows no calibrator trained on, raw and calibrated; "
        "* marks a change significant in a paired t-test after Bonferroni correction across the table.",
    )
    table = computed["calibration_table"]
    w.table(sec, "calibration_table", "Table 1/7: raw vs calibrated", tables.calibration_frame(table), table)
    if "spread" in computed:
        spread = computed["spread"]
        w.table(
            sec,
            "spread",
            "Alignment per setting: mean and standard deviation",
            tables.spread_frame(spread),
            spread,
        )
        w.figure(
            sec,
            "spread",
            "Figure 2: standard deviation against mean alignment per setting, raw (open) to calibrated "
            "(filled).",
            F.spread_figure(spread, colors),
        )
    if "learning_curves" in computed:
        curves = computed["learning_curves"]
        w.figure(
            sec,
            "learning_curves",
            "Figure 3: test MSE against the number of training distributions (mean ± one standard deviation "
            "over 10 random draws); dotted: uncalibrated.",
            F.learning_curves_figure(curves, colors),
            curves,
        )
    if "group_effects" in computed:
        effects = computed["group_effects"]
        w.csv("group_effects", effects)
        w.figure(
            sec, "group_effects", "Alignment change per demographic group.", F.group_effects_figure(effects)
        )
    missing = not_public_line(calibrated["dataset"].astype(str).unique())
    for name, caption in CALIBRATION_EXTRAS.items():
        extra = computed.get(name)
        if extra is not None and len(extra):
            if name in PAPER_LAYOUT and missing:
                caption = f"{caption} {missing}"
            w.table(sec, name, caption, extra.round(3), extra)
    return [sec]


def _inlined(out: Path, block: dict[str, Any]) -> dict[str, Any]:
    if block["kind"] != "figure":
        return block
    data = base64.b64encode((out / block["path"]).read_bytes()).decode("ascii")
    return {**block, "src": f"data:image/png;base64,{data}"}


def _render(out: Path, title: str, summary: str, sections: list[_Section]) -> tuple[Path, Path]:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("distalign.report", "templates"),
        autoescape=jinja2.select_autoescape(["html.j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    html, md = out / "report.html", out / "report.md"
    context = {"title": title, "summary": summary, "sections": [s for s in sections if s.blocks]}
    md.write_text(env.get_template("report.md.j2").render(context), encoding="utf-8")
    # the HTML carries its figures (base64 data URIs), so it shows them wherever it is opened alone,
    # e.g. in MLflow's artifact viewer, which serves one file at a time
    inline = {
        "title": title,
        "summary": summary,
        "sections": [
            _Section(s.key, s.title, s.intro, [_inlined(out, b) for b in s.blocks])
            for s in sections
            if s.blocks
        ],
    }
    html.write_text(env.get_template("report.html.j2").render(inline), encoding="utf-8")
    return html, md


def write_report(
    items: pd.DataFrame,
    out: str | Path,
    *,
    title: str,
    surveys: Mapping[str, Survey] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    extra_rows: Iterable[pd.DataFrame] = (),
    empty_rows: Iterable[Mapping[str, Any]] = (),
    calibration: CalibrationConfig | None = None,
    min_parsed: float = MIN_PARSED,
    coverage: str = "",
    published: pd.DataFrame | None = None,
    notes: Iterable[str] = (),
) -> ReportFiles:
    """Writes the report of ``items`` (a sweep's items tables or scored predictions) under ``out``.

    ``extra_rows`` are more scored items tables (e.g. the benchmark release's own rows) that go through
    exactly the same leaderboard, intervals and figures. Baselines are computed on ``surveys`` when given,
    else on the distinct human distributions the items were scored against. A cell that parsed fewer than
    ``min_parsed`` of its answers is marked in every table and figure and left out of the
    knowledge-to-simulation gap. ``coverage`` says what a comparison covers ("OpinionQA, 6 of 100 items;
    steering persona"), ``published`` holds published full-data rows shown beside Table 1a
    (``kind, model, method, steering, dataset, mean, pm``), ``notes`` are lines added to the summary.
    """
    out = Path(out)
    _check_out(out)
    data = combine([items, *extra_rows])
    if data.empty:
        raise InputError("no scored rows to report on", where="items")
    scored = board(data)
    order = in_order(scored["dataset"], DATASETS)
    rows = leaderboard(scored, order, n_resamples=n_resamples, seed=seed) + [dict(r) for r in empty_rows]
    if surveys:
        rows += baseline_rows(surveys, in_order(surveys, DATASETS), n_resamples=n_resamples, seed=seed)
    else:
        rows += human_baseline_rows(human_distributions(data), order, n_resamples=n_resamples, seed=seed)
    colors = style.colors(r["model"] for r in rows if r["kind"] != "baseline")
    out.mkdir(parents=True, exist_ok=True)
    w = _Writer(out)
    sections = _benchmark(w, data, rows, colors, min_parsed, coverage, published)
    if is_calibrated(data):
        sections += _supervision(w, data, colors, seed, calibration)
    cells = data[["model", "method", "steering", "dataset"]].drop_duplicates()
    models = ", ".join(style.display(m) for m in style.ordered(data["model"].astype(str)))
    datasets = ", ".join(style.label(d, style.DATASET_LABELS) for d in order)
    summary = (
        f"{len(data):,} scored (item, group) rows in {len(cells):,} model × method × steering × dataset "
        f"combinations; models: {models}; datasets: {datasets}. "
        f"Intervals: {n_resamples} bootstrap resamples, seed {seed}."
    )
    summary = " ".join([summary, *notes])
    html, md = _render(out, title, summary, sections)
    return ReportFiles(out, html, md, dict(w.tables), dict(w.figures), tuple(rows))


__all__ = ["ReportFiles", "write_report"]
