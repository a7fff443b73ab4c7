"""Terminal rendering of leaderboards, shared by ``distalign score`` and the end of a sweep.

A number or a name is never cut: in a terminal too narrow for a table, cells fold onto a second line; in a
log file or a pipe (where rich would assume 80 columns) a table is printed as wide as it needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table

from distalign.report import style
from distalign.report.leaderboard import MIN_PARSED, filler_note
from distalign.report.tables import DASH, FILLER_MARK, shown

AGGREGATES = frozenset({"three", "all"})
MODEL_COLUMNS = ("model", "method", "steering", "dataset", "TV (95% CI)", "n", "extraction")
BASELINE_COLUMNS = ("model", "dataset", "TV (95% CI)", "n")


def fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def table(
    title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], min_parsed: float = MIN_PARSED
) -> Table:
    out = Table(title=title)
    for c in columns:
        right = c in {"TV (95% CI)", "n", "extraction", "kss"}
        out.add_column(c, justify="right" if right else "left", overflow="fold")
    for r in rows:
        cells = {
            "TV (95% CI)": _tv(r, min_parsed) if "mean" in r else "",
            "model": style.display(str(r["model"])) if r.get("kind") != "baseline" else fmt(r.get("model")),
            "extraction": fmt(r.get("extraction_rate")),
            "kss": f"{r['kss']:+.0%}" if "kss" in r and math.isfinite(r["kss"]) else "-",
        }
        out.add_row(*[cells.get(c, fmt(r.get(c))) for c in columns])
    return out


def _tv(row: Mapping[str, Any], min_parsed: float) -> str:
    """The TV cell: the extraction column already shows the parsed share, so only the mark is added."""
    text = shown(row, min_parsed)
    if "(" in text:
        text = text.split(" (")[0] + (f" {FILLER_MARK}" if text.endswith(FILLER_MARK) else "")
    return text


def print_whole(console: Console, renderable: RenderableType) -> None:
    """Prints ``renderable`` at its natural width when the console is not a terminal (a log file, a pipe,
    a string buffer), so that nothing is cut at a width nobody chose."""
    if console.is_terminal:
        console.print(renderable)
        return
    unbounded = console.options.update_width(10_000)
    needed = console.measure(renderable, options=unbounded).maximum
    width = console.width
    if needed > width:
        console.width = needed
    try:
        console.print(renderable)
    finally:
        console.width = width


def print_leaderboard(
    rows: Sequence[Mapping[str, Any]],
    kss: Sequence[Mapping[str, Any]] = (),
    console: Console | None = None,
    min_parsed: float = MIN_PARSED,
) -> None:
    """Aggregate rows first (the paper's Table 1a shape), then per dataset, the KSS table and baselines;
    last, one line naming the cells that parsed fewer than ``min_parsed`` of their answers (marked †)."""
    console = console or Console()
    models = [r for r in rows if r.get("kind") != "baseline"]
    baselines = [r for r in rows if r.get("kind") == "baseline"]
    agg = [r for r in models if r["dataset"] in AGGREGATES]
    if agg:
        print_whole(console, table("Leaderboard (aggregate over datasets)", agg, MODEL_COLUMNS, min_parsed))
    per = [r for r in models if r["dataset"] not in AGGREGATES]
    if per:
        print_whole(console, table("Per dataset", per, MODEL_COLUMNS, min_parsed))
    if kss:
        title = "Knowledge-to-simulation gap TV(seq)/TV(verbalize) - 1"
        print_whole(console, table(title, kss, ["model", "dataset", "kss"]))
    if baselines:
        print_whole(console, table("Baselines", baselines, BASELINE_COLUMNS))
    note = filler_note(list(rows), min_parsed)
    if note:
        console.print(f"{FILLER_MARK} {note}.", soft_wrap=True, highlight=False, markup=False)
