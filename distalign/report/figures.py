"""The papers' figures, each drawn from a DataFrame into a ``matplotlib.figure.Figure``.

No pyplot: a figure is a plain object (no global registry), so reports and sweep workers draw in any
thread without a display. Every figure takes the report's look from :mod:`distalign.report.style` (one
colour-blind-safe palette, the same colour and position for a model in every figure, humans in black) and
uses constrained layout with legends outside the axes, so labels never overlap the data or each other.
Pass ``palette`` (model -> colour, from ``style.colors`` over every model of a report) to keep colours
identical across figures that show different subsets of models.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from distalign.metrics import reliability_curve
from distalign.metrics.arrays import pad
from distalign.report import style
from distalign.report.items import calibration_names, evaluated
from distalign.report.leaderboard import ALL_STEERING, MIN_PARSED, STEERING_ORDER, is_filler
from distalign.report.tables import aggregate_selection, headline_caption
from distalign.scoring.scores import in_order

P = ParamSpec("P")
R = TypeVar("R")
AGGREGATES: tuple[str, ...] = ("three", "all")
#: figure widths in inches: one column of a page and a full page
NARROW, WIDE = 5.0, 7.5
RELIABILITY_COLUMNS: tuple[str, ...] = (
    "model", "dataset", "calibration", "bin", "mean_pred", "mean_true", "count",
)  # fmt: skip


def _styled(draw: Callable[P, R]) -> Callable[P, R]:
    """Draws with the report's rc settings (restored afterwards; nothing global is left behind)."""

    @wraps(draw)
    def inner(*args: P.args, **kwargs: P.kwargs) -> R:
        with matplotlib.rc_context(style.RC):
            return draw(*args, **kwargs)

    return inner


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Writes ``fig`` as PNG (Agg) at the report's resolution."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(style.RC):
        fig.savefig(path, format="png", dpi=style.RC["savefig.dpi"], facecolor="white")
    return path


def _palette(names: Sequence[str], palette: Mapping[str, str] | None) -> dict[str, str]:
    own = style.colors(names)
    return {n: (palette or {}).get(n, own[n]) for n in own}


def _wrap(text: str, width: int = 14) -> str:
    return "\n".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)) or text


def _errors(frame: pd.DataFrame) -> np.ndarray:
    """Asymmetric error bar lengths (2, n) from the interval columns; 0 where an interval is missing."""
    mean = frame["mean"].to_numpy(float)
    low = np.nan_to_num(mean - frame["ci_low"].to_numpy(float))
    high = np.nan_to_num(frame["ci_high"].to_numpy(float) - mean)
    return np.vstack([np.maximum(low, 0), np.maximum(high, 0)])


def _empty(message: str, size: tuple[float, float] = (NARROW, 2.0)) -> Figure:
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    return fig


def _spread_labels(values: Sequence[float], gap: float, low: float, high: float) -> list[float]:
    """Label positions as close as possible to ``values`` but at least ``gap`` apart, within bounds."""
    order = np.argsort(values)
    placed = np.asarray(values, dtype=float)[order].copy()
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    overflow = placed[-1] - high if len(placed) else 0.0
    if overflow > 0:  # pushed past the top: shift the stack down, then re-space from the bottom
        placed -= overflow
        for i in range(len(placed) - 2, -1, -1):
            placed[i] = min(placed[i], placed[i + 1] - gap)
        placed = np.maximum(placed, low + gap * np.arange(len(placed)))
    out = np.empty_like(placed)
    out[order] = placed
    return out.tolist()


def _reference_lines(ax: Axes, refs: Sequence[tuple[str, float]]) -> None:
    """Horizontal reference lines labelled in the right margin, labels spaced so they never touch (the
    spacing is measured on the laid-out figure)."""
    if not refs:
        return
    fig = ax.get_figure()
    fig.draw_without_rendering()  # lays the figure out, so the axes' height is known
    y0, y1 = ax.get_ylim()
    line_px = style.RC["font.size"] * 1.5 / 72 * fig.dpi
    gap = (y1 - y0) * line_px / max(ax.get_window_extent().height, 1.0)
    ys = _spread_labels([v for _, v in refs], gap, y0 + gap / 2, y1 - gap / 2)
    transform = ax.get_yaxis_transform()  # x in axes fraction, y in data
    for (name, value), y in zip(refs, ys, strict=True):
        ax.axhline(value, color=style.BASELINE_COLOR, ls="--", lw=1, zorder=1)
        ax.annotate(
            f"{name} {value:.3f}",
            xy=(1.0, value),
            xycoords=transform,
            xytext=(1.03, y),
            textcoords=transform,
            va="center",
            ha="left",
            color="#4D4D4D",
            annotation_clip=False,
            arrowprops={
                "arrowstyle": "-",
                "color": style.BASELINE_COLOR,
                "lw": 0.8,
                "shrinkA": 0,
                "shrinkB": 2,
            },
        )


def _legend(fig: Figure, handles: Sequence[Any], most: int = 4) -> None:
    """A legend below the axes, in as many columns as fit the figure's width (at most ``most``)."""
    longest = max((len(str(h.get_label())) for h in handles), default=1)
    entry_in = (longest * 0.6 * style.RC["legend.fontsize"] + 40) / 72
    ncol = max(1, min(len(handles), most, int(fig.get_figwidth() // entry_in)))
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False)


def _grouped_legend(fig: Figure, groups: Sequence[Sequence[Any]]) -> None:
    """One legend below the axes with a column per group (models, methods, ...): matplotlib fills
    legend columns top to bottom, so each group is padded to the same height with blank entries."""
    groups = [list(g) for g in groups if g]
    height = max(len(g) for g in groups)
    blank = Line2D([], [], color="none", label=" ")
    handles = [h for g in groups for h in (*g, *[blank] * (height - len(g)))]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(groups), frameon=False)


def _model_legend(
    fig: Figure, models: Sequence[str], colors: Mapping[str, str], extra: Sequence = ()
) -> None:
    handles = [Patch(facecolor=colors[m], label=style.display(m)) for m in models] + list(extra)
    _legend(fig, handles)


#: how a number that is mostly filler is drawn: hatched and pale (bars), hollow (markers)
FILLER_HATCH, FILLER_ALPHA = "///", 0.35


def _filler(frame: pd.DataFrame, min_parsed: float) -> np.ndarray:
    """Which rows of a leaderboard frame parsed fewer than ``min_parsed`` of their answers."""
    if "extraction_rate" not in frame:
        return np.zeros(len(frame), dtype=bool)
    return np.array([is_filler(r, min_parsed) for r in frame.reset_index().to_dict("records")], dtype=bool)


def _filler_handle(min_parsed: float, bar: bool) -> Any:
    label = f"< {min_parsed:.0%} of answers parsed (mostly filler)"
    if bar:
        return Patch(facecolor="white", edgecolor="0.3", hatch=FILLER_HATCH, label=label)
    return Line2D([], [], color="0.3", marker="o", ms=4.5, markerfacecolor="white", ls="none", label=label)


@_styled
def leaderboard_figure(
    rows: pd.DataFrame,
    palette: Mapping[str, str] | None = None,
    min_parsed: float = MIN_PARSED,
    where: str | None = None,
) -> Figure:
    """Table 1a as a figure: mean TV with its 95% interval per method (groups) and model (bars, one colour
    and slot per model), on the headline dataset and steering (as Table 1a); baselines on the same
    dataset as dashed reference lines labelled in the right margin. A bar whose cell parsed fewer than
    ``min_parsed`` of its answers is hatched and pale. ``where`` titles what the bars cover (a comparison
    on some items names them); default: the headline dataset and steering."""
    rows = pd.DataFrame(rows)
    if rows.empty:
        return _empty("no leaderboard rows")
    base = rows[rows["kind"] == "baseline"]
    agg, dataset, _ = aggregate_selection(rows)  # Table 1a's rows, so the bars are the table's numbers
    if agg.empty:
        return _empty("no model rows on an aggregate")
    models = style.ordered(agg["model"].astype(str))
    methods = in_order(agg["method"].astype(str), style.METHOD_ORDER)
    colors = _palette(models, palette)
    height = 3.6
    width_in = max(NARROW, 1.1 * len(methods) + 2.6)
    fig = Figure(figsize=(width_in, height), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(models)
    any_filler = False
    for i, model in enumerate(models):
        sub = agg[agg["model"] == model].set_index("method").reindex(methods).dropna(subset=["mean"])
        x = np.array([methods.index(m) for m in sub.index]) + (i - (len(models) - 1) / 2) * width
        filler = _filler(sub, min_parsed)
        any_filler |= bool(filler.any())
        bars = ax.bar(x, sub["mean"], width * 0.92, color=colors[model], label=style.display(model), zorder=2)
        for bar, weak in zip(bars, filler, strict=True):
            if weak:
                bar.set(alpha=FILLER_ALPHA, hatch=FILLER_HATCH, edgecolor="0.3")
        ax.errorbar(x, sub["mean"], yerr=_errors(sub), fmt="none", ecolor="black", elinewidth=1, capsize=2.5)
    ax.set_xticks(range(len(methods)), [_wrap(style.method_label(m)) for m in methods])
    ax.set_xlim(-0.6, len(methods) - 0.4)
    refs = [
        (style.label(b["model"], style.BASELINE_LABELS), float(b["mean"]))
        for _, b in base[base["dataset"] == dataset].iterrows()
        if math.isfinite(float(b["mean"]))
    ]
    top = max([*(agg["ci_high"].fillna(agg["mean"]).astype(float)), *(v for _, v in refs)])
    ax.set_ylim(0, top * 1.08 + 0.01)
    ax.set_ylabel("mean total variation (lower is better)")
    ax.grid(axis="y", color="0.9", zorder=0)
    where = where or headline_caption(rows)
    title = f"{where[:1].upper()}{where[1:]}; error bars: 95% bootstrap intervals"
    fig.suptitle(_wrap(title, int(width_in * 12)))
    _reference_lines(ax, refs)
    _model_legend(fig, models, colors, [_filler_handle(min_parsed, bar=True)] if any_filler else [])
    return fig


@_styled
def steering_figure(
    rows: pd.DataFrame, palette: Mapping[str, str] | None = None, min_parsed: float = MIN_PARSED
) -> Figure:
    """Figure 4's shape: mean TV by steering mode (none, persona, few-shot), one panel per dataset (columns)
    and method (rows); one marker per model, humans in black in every panel of their dataset. A point
    whose cell parsed fewer than ``min_parsed`` of its answers is hollow."""
    rows = pd.DataFrame(rows)
    if rows.empty:
        return _empty("no leaderboard rows")
    rows = rows[
        rows["kind"].isin(["model", "human"])
        & ~rows["dataset"].isin(AGGREGATES)
        & (rows["steering"].astype(str) != ALL_STEERING)
    ]
    if rows.empty:
        return _empty("no per-dataset rows by steering mode")
    models = style.ordered(rows["model"].astype(str))
    colors = _palette(models, palette)
    humans = rows[rows["kind"] == "human"]
    machine = rows[rows["kind"] == "model"]
    methods = in_order(machine["method"].astype(str), style.METHOD_ORDER) or ["(humans)"]
    datasets = in_order(rows["dataset"].astype(str), list(style.DATASET_LABELS))
    modes = in_order(rows["steering"].astype(str), STEERING_ORDER)
    nr, nc = len(methods), len(datasets)
    fig = Figure(figsize=(min(WIDE, 2.5 * nc + 1.0), 2.2 * nr + 1.0), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nr, nc, sharex=True, sharey=True, squeeze=False))
    step = 0.7 / max(len(models), 1)
    any_filler = False
    for r, method in enumerate(methods):
        for c, dataset in enumerate(datasets):
            ax = axes[r, c]
            panel = pd.concat(
                [
                    machine[(machine["method"] == method) & (machine["dataset"] == dataset)],
                    humans[humans["dataset"] == dataset],
                ]
            )
            for i, model in enumerate(models):
                sub = panel[panel["model"] == model]
                sub = sub.set_index("steering").reindex(modes).dropna(subset=["mean"])
                if sub.empty:
                    continue
                x = np.array([modes.index(s) for s in sub.index]) + (i - (len(models) - 1) / 2) * step
                marker = style.MARKERS[i % len(style.MARKERS)]
                ax.errorbar(
                    x,
                    sub["mean"],
                    yerr=_errors(sub),
                    color=colors[model],
                    marker=marker,
                    ms=4.5,
                    lw=1,
                    capsize=2,
                    elinewidth=1,
                )
                weak = _filler(sub, min_parsed)
                if weak.any():
                    any_filler = True
                    ax.plot(
                        x[weak], sub["mean"].to_numpy(float)[weak], ls="none", marker=marker, ms=6,
                        markerfacecolor="white", markeredgecolor=colors[model], zorder=3,
                    )  # fmt: skip
            ax.grid(axis="y", color="0.9")
            if r == 0:
                ax.set_title(style.label(dataset, style.DATASET_LABELS))
            if c == 0:
                ax.set_ylabel(f"{style.method_label(method)}\nmean TV")
    for ax in axes[-1]:
        ax.set_xticks(range(len(modes)), [style.label(m, style.STEERING_LABELS) for m in modes])
        ax.set_xlabel("steering")
    axes[0, 0].set_xlim(-0.5, len(modes) - 0.5)
    handles = [
        Line2D(
            [], [], color=colors[m], marker=style.MARKERS[i % len(style.MARKERS)], ms=4.5,
            label=style.display(m),
        )
        for i, m in enumerate(models)
    ]  # fmt: skip
    if any_filler:
        handles.append(_filler_handle(min_parsed, bar=False))
    _legend(fig, handles)
    fig.suptitle("Mean TV by steering mode (error bars: 95% bootstrap intervals)")
    return fig


def reliability_frame(items: pd.DataFrame, n_bins: int = 10) -> pd.DataFrame:
    """Reliability curves of the log-p cells (option probability vs human probability, pooled over
    options), before (``none``) and after temperature scaling (``temperature``), per model x dataset.

    Raw: ``pred_probs`` of method ``logprobs``. Scaled: ``calibrated_probs`` of the evaluated rows of a
    temperature-calibrated ``logprobs`` cell, and ``pred_probs`` of method ``logprobs+temperature`` (the
    release's rescaled log-p). Only bins holding probabilities appear.
    """
    if items.empty or "method" not in items:
        return pd.DataFrame(columns=list(RELIABILITY_COLUMNS))
    method = items["method"].astype(str)
    cal = calibration_names(items)
    sources: list[tuple[str, pd.DataFrame, str]] = [
        ("none", items[(method == "logprobs") & (cal == "none")], "pred_probs"),
        ("temperature", items[method == "logprobs+temperature"], "pred_probs"),
    ]
    scaled = items[(method == "logprobs") & (cal == "temperature")]
    if len(scaled) and {"calibrated_probs", "split"} <= set(scaled.columns):
        sources.append(("temperature", scaled[evaluated(scaled)], "calibrated_probs"))
        seen = set(map(tuple, sources[0][1][["model", "dataset"]].astype(str).to_numpy()))
        keys = scaled[["model", "dataset"]].astype(str).apply(tuple, axis=1)
        sources.append(("none", scaled[~keys.isin(seen)], "pred_probs"))  # raw of calibrated-only cells
    parts = []
    for name, frame, column in sources:
        for (model, dataset), f in frame.groupby(["model", "dataset"], sort=False):
            keep = [p is not None and h is not None for p, h in zip(f[column], f["human_probs"], strict=True)]
            f = f[keep]
            if f.empty:
                continue
            pred, mask = pad([list(p) for p in f[column]])
            human, _ = pad([list(h) for h in f["human_probs"]])
            ok = mask & np.isfinite(pred)
            _, mean_pred, mean_true, counts = reliability_curve(np.where(ok, pred, 0.0), human, ok, n_bins)
            used = counts > 0
            parts.append(
                pd.DataFrame(
                    {
                        "model": str(model),
                        "dataset": str(dataset),
                        "calibration": name,
                        "bin": np.flatnonzero(used),
                        "mean_pred": mean_pred[used],
                        "mean_true": mean_true[used],
                        "count": counts[used].astype(int),
                    }
                )
            )
    if not parts:
        return pd.DataFrame(columns=list(RELIABILITY_COLUMNS))
    out = pd.concat(parts, ignore_index=True)
    # several sources of one curve (e.g. two calibrated cells) are pooled bin by bin
    out["sum_pred"], out["sum_true"] = out["mean_pred"] * out["count"], out["mean_true"] * out["count"]
    out = out.groupby(["model", "dataset", "calibration", "bin"], sort=False, as_index=False)[
        ["sum_pred", "sum_true", "count"]
    ].sum()
    out["mean_pred"], out["mean_true"] = out["sum_pred"] / out["count"], out["sum_true"] / out["count"]
    return out[list(RELIABILITY_COLUMNS)]


def _ece(curve: pd.DataFrame) -> float:
    n = curve["count"].sum()
    return (
        float((curve["count"] * (curve["mean_pred"] - curve["mean_true"]).abs()).sum() / n) if n else math.nan
    )


#: a reliability bin holding fewer probabilities than this is drawn hollow (its mean is noisy)
SPARSE_BIN = 20
CALIBRATION_LOOKS: dict[str, tuple[str, str, str]] = {
    "none": ("-", "o", "log-p"),
    "temperature": ("--", "s", "temperature-scaled log-p"),
}


@_styled
def reliability_figure(frame: pd.DataFrame, palette: Mapping[str, str] | None = None) -> Figure:
    """Figure 6's shape: reliability diagrams of log-p (model rows x dataset columns), before (solid) and
    after temperature scaling (dashed) where each exists, bins with fewer than :data:`SPARSE_BIN`
    probabilities hollow (each bin's count is in the figure's data), the expected calibration error in
    the panel title ("before → after" only where both curves are drawn). The legend names only what is
    drawn."""
    frame = pd.DataFrame(frame)
    if frame.empty:
        return _empty("no log-p cells")
    models = style.ordered(frame["model"].astype(str))
    datasets = in_order(frame["dataset"].astype(str), list(style.DATASET_LABELS))
    colors = _palette(models, palette)
    nr, nc = len(models), len(datasets)
    side = min(2.6, (WIDE - 0.6) / nc)
    fig = Figure(figsize=(side * nc + 0.6, side * nr + 1.1), layout="constrained")
    fig.get_layout_engine().set(h_pad=0.1)
    axes = fig.subplots(nr, nc, sharex=True, sharey=True, squeeze=False)
    drawn: set[str] = set()
    sparse_drawn = False
    for r, model in enumerate(models):
        for c, dataset in enumerate(datasets):
            ax = axes[r, c]
            ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1)
            eces: dict[str, str] = {}
            for name, (ls, marker, _) in CALIBRATION_LOOKS.items():
                curve = frame[
                    (frame["model"] == model) & (frame["dataset"] == dataset) & (frame["calibration"] == name)
                ].sort_values("bin")
                if curve.empty:
                    continue
                drawn.add(name)
                face = colors[model] if name == "none" else "white"
                ax.plot(curve["mean_pred"], curve["mean_true"], ls=ls, lw=1.2, color=colors[model])
                counts = curve["count"].to_numpy(int)
                sparse = counts < SPARSE_BIN
                sparse_drawn |= bool(sparse.any())
                xs, ys = curve["mean_pred"].to_numpy(float), curve["mean_true"].to_numpy(float)
                ax.plot(xs[~sparse], ys[~sparse], ls="none", marker=marker, ms=3.5, color=colors[model],
                        markerfacecolor=face)  # fmt: skip
                ax.plot(xs[sparse], ys[sparse], ls="none", marker=marker, ms=3.5, color=colors[model],
                        markerfacecolor="none", alpha=0.6)  # fmt: skip
                eces[name] = f"{_ece(curve):.2f}"
            ax.set(xlim=(-0.04, 1.04), ylim=(-0.04, 1.04), aspect="equal")
            ax.set_xticks([0, 0.5, 1])
            ax.set_yticks([0, 0.5, 1])
            title = f"{style.label(dataset, style.DATASET_LABELS)}\n" if r == 0 else ""
            if len(eces) == 2:
                ece = f"ECE {eces['none']} → {eces['temperature']}"
            elif "none" in eces:
                ece = f"ECE {eces['none']}"
            else:
                ece = f"ECE {eces.get('temperature', '')} (scaled)"
            ax.set_title(f"{title}{ece}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{style.display(model)}\nhuman probability")
            if r == nr - 1:
                ax.set_xlabel("predicted probability")
    handles = [
        Line2D([], [], color="black", ls=ls, marker=marker, ms=3.5,
               markerfacecolor="black" if name == "none" else "white", label=label)
        for name, (ls, marker, label) in CALIBRATION_LOOKS.items()
        if name in drawn
    ]  # fmt: skip
    if sparse_drawn:
        handles.append(
            Line2D(
                [],
                [],
                color="0.4",
                ls="none",
                marker="o",
                ms=3.5,
                markerfacecolor="none",
                label=f"bin of < {SPARSE_BIN} probabilities",
            )  # fmt: skip
        )
    handles.append(Line2D([], [], color="0.6", ls=":", label="perfect calibration"))
    _legend(fig, handles, most=3)
    return fig


@_styled
def coin_figure(frame: pd.DataFrame, palette: Mapping[str, str] | None = None) -> Figure:
    """Figure 2's shape (the biased coin): predicted against stated P(heads), one panel per method, one
    line per model (mean over repeats, bars: one standard deviation), the diagonal for reference."""
    frame = pd.DataFrame(frame)
    if frame.empty:
        return _empty("no biased-coin results")
    models = style.ordered(frame["model"].astype(str))
    methods = in_order(frame["method"].astype(str), style.METHOD_ORDER)
    colors = _palette(models, palette)
    side = min(2.6, (WIDE - 0.5) / len(methods))
    fig = Figure(figsize=(side * len(methods) + 0.5, side + 1.1), layout="constrained")
    axes = fig.subplots(1, len(methods), sharey=True, squeeze=False)[0]
    for ax, method in zip(axes, methods, strict=True):
        ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1)
        for i, model in enumerate(models):
            sub = frame[(frame["model"] == model) & (frame["method"] == method)]
            if sub.empty:
                continue
            g = sub.groupby("p_true")["p_pred"].agg(["mean", "std"]).sort_index()
            ax.errorbar(
                g.index,
                g["mean"],
                yerr=g["std"].fillna(0),
                color=colors[model],
                marker=style.MARKERS[i % len(style.MARKERS)],
                ms=3.5,
                lw=1.2,
                capsize=2,
            )
        ax.set(xlim=(-0.03, 1.03), ylim=(-0.03, 1.03), aspect="equal", xlabel="stated P(heads)")
        ax.set_title(style.method_label(method))
    axes[0].set_ylabel("predicted P(heads)")
    handles = [
        Line2D([], [], color=colors[m], marker=style.MARKERS[i % len(style.MARKERS)], ms=3.5, label=m)
        for i, m in enumerate(models)
    ]
    handles.append(Line2D([], [], color="0.6", ls=":", label="perfect calibration"))
    _legend(fig, handles)
    return fig


@_styled
def spread_figure(spread: pd.DataFrame, palette: Mapping[str, str] | None = None) -> Figure:
    """The supervision paper's Figure 2: per setting, the standard deviation of alignment against its mean,
    raw (open marker) and calibrated (filled), joined by an arrow; panels by prompt type (rows) and
    dataset (columns), colour by model, marker by method. Input: ``calibration.summary.setting_spread``."""
    spread = pd.DataFrame(spread)
    if spread.empty:
        return _empty("no calibrated settings")
    models = style.ordered(spread["model"].astype(str))
    methods = in_order(spread["method"].astype(str), style.METHOD_ORDER)
    datasets = in_order(spread["dataset"].astype(str), list(style.DATASET_LABELS))
    prompts = sorted(spread["steering"].astype(str).unique())
    colors = _palette(models, palette)
    marker = {m: style.MARKERS[i % len(style.MARKERS)] for i, m in enumerate(methods)}
    nr, nc = len(prompts), len(datasets)
    side = min(2.8, (WIDE - 0.6) / nc)
    fig = Figure(figsize=(side * nc + 0.6, side * nr + 1.3), layout="constrained")
    axes = fig.subplots(nr, nc, sharex=True, sharey=True, squeeze=False)
    for r, prompt in enumerate(prompts):
        for c, dataset in enumerate(datasets):
            ax = axes[r, c]
            sub = spread[(spread["steering"] == prompt) & (spread["dataset"] == dataset)]
            for _, s in sub.iterrows():
                color, mk = colors[str(s["model"])], marker[str(s["method"])]
                start, end = (s["mean_raw"], s["std_raw"]), (s["mean_calibrated"], s["std_calibrated"])
                ax.annotate(
                    "", xy=end, xytext=start,
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 1, "shrinkA": 4, "shrinkB": 4},
                )  # fmt: skip
                ax.plot(*start, marker=mk, ms=6, color=color, markerfacecolor="white", ls="none")
                ax.plot(*end, marker=mk, ms=6, color=color, ls="none")
            ax.grid(color="0.92")
            ax.margins(0.15)
            if r == 0:
                ax.set_title(style.label(dataset, style.DATASET_LABELS))
            if c == 0:
                ax.set_ylabel(f"{prompt}\nstd of alignment")
            if r == nr - 1:
                ax.set_xlabel("mean alignment 1 - WD/(N-1)")
    _grouped_legend(
        fig,
        [
            [Patch(facecolor=colors[m], label=m) for m in models],
            [
                Line2D([], [], color="0.3", marker=marker[m], ls="none", label=style.method_label(m))
                for m in methods
            ],
            [
                Line2D([], [], color="0.3", marker="o", markerfacecolor="white", ls="none", label="raw"),
                Line2D([], [], color="0.3", marker="o", ls="none", label="calibrated"),
            ],
        ],
    )
    return fig


@_styled
def learning_curves_figure(curves: pd.DataFrame, palette: Mapping[str, str] | None = None) -> Figure:
    """The supervision paper's Figure 3: test MSE of the calibrated option probabilities against the number
    of training distributions (log scale), mean over repeats with a band of one standard deviation, and the
    uncalibrated MSE dotted; panels by method (rows) and dataset (columns), colour by model, line style by
    prompt type. Input: the ``learning_curves`` table of ``calibration.report.sweep_tables``."""
    curves = pd.DataFrame(curves)
    if curves.empty:
        return _empty("no learning curves")
    models = style.ordered(curves["model"].astype(str))
    methods = in_order(curves["method"].astype(str), style.METHOD_ORDER)
    datasets = in_order(curves["dataset"].astype(str), list(style.DATASET_LABELS))
    # line style by prompt type, and by calibrator family when several families were asked for
    if "family" not in curves:
        curves = curves.assign(family="")
    families = sorted(curves["family"].astype(str).unique())
    curves = curves.assign(
        _style=curves["steering"].astype(str)
        + (curves["family"].astype(str).radd(", ") if len(families) > 1 else "")
    )
    prompts = sorted(curves["_style"].unique())
    colors = _palette(models, palette)
    ls = {p: style.LINESTYLES[i % len(style.LINESTYLES)] for i, p in enumerate(prompts)}
    nr, nc = len(methods), len(datasets)
    width = min(3.2, (WIDE - 0.6) / nc)
    fig = Figure(figsize=(width * nc + 0.6, 2.4 * nr + 1.2), layout="constrained")
    axes = fig.subplots(nr, nc, sharex=True, squeeze=False)
    for r, method in enumerate(methods):
        for c, dataset in enumerate(datasets):
            ax = axes[r, c]
            panel = curves[(curves["method"] == method) & (curves["dataset"] == dataset)]
            for (model, prompt), cell in panel.groupby(["model", "_style"], sort=False):
                cell = cell.sort_values("n")
                color, x = colors[str(model)], cell["n"].to_numpy(float)
                m, s = cell["mse_mean"].to_numpy(float), cell["mse_std"].to_numpy(float)
                ax.plot(x, m, color=color, ls=ls[str(prompt)], marker="o", ms=3, lw=1.2)
                ax.fill_between(x, m - s, m + s, color=color, alpha=0.18, lw=0)
                if "raw_mse" in cell:
                    ax.axhline(float(cell["raw_mse"].iloc[0]), color=color, ls=":", lw=1)
            ax.set_xscale("log")
            ax.grid(color="0.92")
            if r == 0:
                ax.set_title(style.label(dataset, style.DATASET_LABELS))
            if c == 0:
                ax.set_ylabel(f"{style.method_label(method)}\ntest MSE")
            if r == nr - 1:
                ax.set_xlabel("training distributions")
    _grouped_legend(
        fig,
        [
            [Patch(facecolor=colors[m], label=m) for m in models],
            [Line2D([], [], color="0.3", ls=ls[p], label=f"prompt: {p}") for p in prompts]
            + [Line2D([], [], color="0.3", ls=":", label="uncalibrated")],
        ],
    )
    return fig


@_styled
def group_effects_figure(effects: pd.DataFrame) -> Figure:
    """Alignment change per demographic group after calibration (``calibration.groups.group_effects``):
    gains blue, losses vermillion, solid where significant after Bonferroni, hatched and light where not."""
    df = pd.DataFrame(effects)
    if df.empty:
        return _empty("no per-group effects")
    df = df.sort_values("delta").reset_index(drop=True)
    labels = [
        f"{style.label(d, style.DATASET_LABELS)}: {g}"
        for d, g in zip(df["dataset"], df["group"], strict=True)
    ]
    fig = Figure(figsize=(NARROW + 0.5, max(2.2, 0.24 * len(df) + 1.3)), layout="constrained")
    ax = fig.subplots()
    gain, loss = style.PALETTE[0], style.PALETTE[5]
    for i, (delta, sig) in enumerate(
        zip(df["delta"].astype(float), df["significant"].astype(bool), strict=True)
    ):
        color = gain if delta >= 0 else loss
        ax.barh(
            i,
            delta,
            color=color if sig else "white",
            edgecolor=color,
            hatch=None if sig else "///",
            lw=1,
            zorder=2,
        )
    ax.set_yticks(range(len(df)), labels)
    ax.set_ylim(-0.6, len(df) - 0.4)
    ax.axvline(0, color="black", lw=0.8)
    ax.grid(axis="x", color="0.92", zorder=0)
    ax.set_xlabel("alignment change after calibration (calibrated - raw)")
    handles = [
        Patch(facecolor=gain, edgecolor=gain, label="gain"),
        Patch(facecolor=loss, edgecolor=loss, label="loss"),
        Patch(facecolor="white", edgecolor="0.3", hatch="///", label="not significant (Bonferroni)"),
    ]
    _legend(fig, handles, most=3)
    return fig


__all__ = [
    "coin_figure",
    "group_effects_figure",
    "leaderboard_figure",
    "learning_curves_figure",
    "reliability_figure",
    "reliability_frame",
    "save_figure",
    "spread_figure",
    "steering_figure",
]
