"""The report's figures: drawn from the tables a sweep produces, with intervals, the same colour per model
in every figure, and no text overlapping other text or the plots or cut at the figure's edge."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.text import Text

from distalign.calibration.report import ReportOptions, sweep_tables
from distalign.calibration.stage import calibrate_items
from distalign.records.config import CalibrationConfig
from distalign.report import figures as F
from distalign.report import style
from distalign.report.items import board, combine, human_distributions
from distalign.report.leaderboard import human_baseline_rows, leaderboard
from tests.report.conftest import make_items


def _drawn_texts(fig: Figure) -> list[Text]:
    """The texts a reader sees: tick labels only of ticks inside the view (matplotlib keeps others around
    undrawn, at stale positions)."""
    tick_labels, shown = set(), []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            span = high - low
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                labels = (tick.label1, tick.label2)
                tick_labels.update(map(id, labels))
                if low - 1e-9 * span <= tick.get_loc() <= high + 1e-9 * span:
                    shown += [t for t in labels if t.get_visible()]
    others = [t for t in fig.findobj(Text) if id(t) not in tick_labels and t.get_visible()]
    return [t for t in [*others, *shown] if t.get_text().strip()]


def assert_readable(fig: Figure) -> None:
    """Every visible text lies inside the figure, overlaps no other text and no plotting area."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = _drawn_texts(fig)
    # the text itself (an annotation's own extent also covers its leader line)
    boxes = [(t.get_text(), Text.get_window_extent(t, renderer)) for t in texts]
    whole = fig.bbox
    for text, box in boxes:
        assert box.x0 >= whole.x0 - 1 and box.x1 <= whole.x1 + 1, f"{text!r} cut at the side"
        assert box.y0 >= whole.y0 - 1 and box.y1 <= whole.y1 + 1, f"{text!r} cut at the top or bottom"
    for (a, ba), (b, bb) in itertools.combinations(boxes, 2):
        assert not ba.shrunk(0.95, 0.9).overlaps(bb.shrunk(0.95, 0.9)), f"{a!r} overlaps {b!r}"
    for ax in fig.axes:
        area = ax.get_window_extent(renderer).shrunk(0.99, 0.99)
        for text, box in boxes:
            assert not area.overlaps(box.shrunk(0.95, 0.9)), f"{text!r} lies on a plot"


@pytest.fixture(scope="module")
def items() -> pd.DataFrame:
    return make_items(
        models=("gpt-4", "llama3-70b", "claude_3_opus"), steerings=("none", "persona", "few_shot")
    )


@pytest.fixture(scope="module")
def rows(items: pd.DataFrame) -> pd.DataFrame:
    data = combine([items])
    board_rows = leaderboard(board(data), n_resamples=100)
    base = human_baseline_rows(human_distributions(data), n_resamples=100)
    human = [
        {"kind": "human", "model": "human", "method": "estimate", "steering": s, "dataset": d, "mean": m,
         "ci_low": m - 0.01, "ci_high": m + 0.01, "n": 50, "extraction_rate": 1.0}
        for d in ("opinionqa", "nyt_books") for s, m in (("none", 0.3), ("persona", 0.27), ("few_shot", 0.25))
    ]  # fmt: skip
    return pd.DataFrame([*board_rows, *base, *human])


def _bar_colors(fig: Figure) -> dict[str, str]:
    ax = fig.axes[0]
    return {
        c.get_label(): to_hex(c.patches[0].get_facecolor())
        for c in ax.containers
        if isinstance(c, BarContainer)
    }


def test_leaderboard_figure_draws_an_interval_per_bar_and_labels_every_baseline(rows: pd.DataFrame) -> None:
    fig = F.leaderboard_figure(rows)
    assert_readable(fig)
    ax = fig.axes[0]
    agg = rows[(rows["kind"] == "model") & (rows["dataset"] == "three") & (rows["steering"] == "all")]
    bars = [p for c in ax.containers if isinstance(c, BarContainer) for p in c.patches]
    assert len(bars) == len(agg) == 6
    heights = sorted(round(b.get_height(), 9) for b in bars)
    assert heights == sorted(round(v, 9) for v in agg["mean"])
    intervals = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert sum(len(c.get_segments()) for c in intervals) == len(agg)
    labels = {t.get_text().rsplit(" ", 1)[0] for t in ax.texts}
    assert labels == {"uniform", "majority vote", "30-sample discretization"}
    # the paper's model order and the palette's first colours, whatever order the rows come in
    # one display name and a colour keyed by the model's name (the release's gpt-4 is the config gpt4)
    assert _bar_colors(fig) == {"GPT-4": style.MODEL_COLORS["gpt4"].lower(),
                                "Llama 3 70B": style.MODEL_COLORS["llama3_70b"].lower(),
                                "Claude 3 Opus": style.MODEL_COLORS["claude_3_opus"].lower()}  # fmt: skip


def test_close_baselines_get_labels_apart(rows: pd.DataFrame) -> None:
    base = rows["kind"] == "baseline"
    crowded = rows.copy()
    crowded.loc[base & (crowded["model"] == "majority"), "mean"] = (
        crowded.loc[base & (crowded["model"] == "uniform"), "mean"].to_numpy() + 0.002
    )
    assert_readable(F.leaderboard_figure(crowded))


def test_a_given_palette_keeps_colours_across_figures(rows: pd.DataFrame) -> None:
    palette = style.colors(["gpt-4", "llama3-70b", "claude_3_opus", "human"])
    only_llama = rows[rows["model"].isin(["llama3-70b", "uniform"])]
    assert _bar_colors(F.leaderboard_figure(only_llama, palette)) == {
        "Llama 3 70B": palette["llama3-70b"].lower()
    }


def test_steering_figure_has_a_panel_per_method_and_dataset_with_humans_in_black(rows: pd.DataFrame) -> None:
    fig = F.steering_figure(rows)
    assert_readable(fig)
    assert len(fig.axes) == 2 * 3  # methods x datasets
    titles = [ax.get_title() for ax in fig.axes[:3]]
    assert titles == ["OpinionQA", "NYT Book Opinions", "GlobalOpinionQA"]
    first = fig.axes[0]
    black = [ln for ln in _data_lines(first) if to_hex(ln.get_color()) == "#000000"]
    assert len(black) == 1 and len(black[0].get_xdata()) == 3  # humans: none, persona, few-shot
    assert len(_data_lines(fig.axes[2])) == 3  # GlobalOpinionQA: three models, no humans
    bars = [c for c in first.collections if isinstance(c, LineCollection)]
    assert sum(len(c.get_segments()) for c in bars) == 4 * 3  # an interval per model and mode


def _data_lines(ax) -> list:
    return [ln for ln in ax.lines if ln.get_linestyle() != "None"]  # not the error bars' caps


def _logprob_items() -> pd.DataFrame:
    items = make_items(
        models=("gpt-4",), methods=("logprobs",), steerings=("persona",), datasets=("nyt_books",)
    )
    sharp = [np.eye(4)[int(np.argmax(p))] * 0.9 + 0.025 for p in items["pred_probs"]]
    return items.assign(pred_probs=[p.tolist() for p in sharp])


def test_reliability_frame_before_and_after_temperature_scaling() -> None:
    raw = _logprob_items()
    outcome = calibrate_items(raw, CalibrationConfig(name="temperature", fit="in_sample"))
    scaled = outcome.items.assign(calibration="temperature")
    frame = F.reliability_frame(pd.concat([raw, scaled], ignore_index=True))
    counts = frame.groupby("calibration")["count"].sum()
    assert counts.to_dict() == {"none": 4 * len(raw), "temperature": 4 * len(raw)}
    before = frame[frame["calibration"] == "none"]
    assert set(before["bin"]) == {0, 9}  # one-hot-like: 0.025 and 0.925 only
    top = before[before["bin"] == 9].iloc[0]
    assert top["mean_pred"] == pytest.approx(0.925)
    chosen = [h[int(np.argmax(p))] for p, h in zip(raw["pred_probs"], raw["human_probs"], strict=True)]
    assert top["mean_true"] == pytest.approx(np.mean(chosen))
    after = frame[frame["calibration"] == "temperature"]
    gap = {n: np.average((f["mean_pred"] - f["mean_true"]).abs(), weights=f["count"]) for n, f in
           (("none", before), ("temperature", after))}  # fmt: skip
    assert gap["temperature"] < gap["none"]
    fig = F.reliability_figure(frame)
    assert_readable(fig)
    drawn = [ln for ln in fig.axes[0].lines if ln.get_linestyle() != "None"]  # markers apart
    assert len(fig.axes) == 1 and len(drawn) == 3  # diagonal, before, after


def test_reliability_frame_reads_released_rescaled_logp_and_skips_training_rows() -> None:
    raw = _logprob_items()
    released = raw.assign(method="logprobs+temperature")
    frame = F.reliability_frame(pd.concat([raw, released], ignore_index=True))
    assert set(frame["calibration"]) == {"none", "temperature"}
    scaled = calibrate_items(raw, CalibrationConfig(name="temperature", fit="in_sample")).items
    scaled = scaled.assign(
        calibration="temperature", split=["train"] * 10 + ["in_sample"] * (len(scaled) - 10)
    )
    frame = F.reliability_frame(scaled)
    counts = frame.groupby("calibration")["count"].sum().to_dict()
    assert counts == {"none": 4 * len(raw), "temperature": 4 * (len(raw) - 10)}


def test_coin_figure_one_panel_per_method_with_the_diagonal() -> None:
    p = np.round(np.linspace(0, 1, 11), 1)
    frame = pd.DataFrame(
        [
            {"model": m, "method": me, "p_true": x, "p_pred": min(1.0, x * f + r * 0.01)}
            for m, f in (("gpt-4", 1.0), ("llama3-70b", 1.2))
            for me in ("logprobs", "seq", "verbalize")
            for x in p
            for r in range(3)
        ]
    )
    fig = F.coin_figure(frame)
    assert_readable(fig)
    assert [ax.get_title() for ax in fig.axes] == ["verbalize", "sequence", "log-p"]
    diagonal = fig.axes[0].lines[0]
    assert list(diagonal.get_xdata()) == [0, 1] and list(diagonal.get_ydata()) == [0, 1]


@pytest.fixture(scope="module")
def calibrated() -> dict[str, pd.DataFrame]:
    items = make_items(models=("gpt-4", "llama3-70b"), methods=("verbalize",), steerings=("base", "sd"),
                       datasets=("opinionqa", "nyt_books"), n_items=30)  # fmt: skip
    out = calibrate_items(items, CalibrationConfig(name="regression", params={"candidates": ["linear"]}))
    return sweep_tables(
        out.items.assign(calibration="regression"), options=ReportOptions(candidates=("linear",))
    )


def test_spread_figure_draws_an_arrow_per_setting(calibrated: dict[str, pd.DataFrame]) -> None:
    spread = calibrated["spread"]
    assert len(spread) == 2 * 2 * 2 and (spread["std_raw"] > 0).all()
    fig = F.spread_figure(spread)
    assert_readable(fig)
    assert len(fig.axes) == 2 * 2  # prompt types x datasets
    arrows = [t for ax in fig.axes for t in ax.texts if t.arrow_patch is not None]
    assert len(arrows) == len(spread)


def test_learning_curves_figure_draws_mean_and_band_per_cell(calibrated: dict[str, pd.DataFrame]) -> None:
    curves = calibrated["learning_curves"]
    fig = F.learning_curves_figure(curves)
    assert_readable(fig)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    cells = curves[curves["dataset"] == "opinionqa"].groupby(["model", "steering"]).ngroups
    assert len(ax.collections) == cells  # one band per cell
    assert sum(len(ln.get_xdata()) > 2 for ln in ax.lines) == cells


def test_group_effects_figure(calibrated: dict[str, pd.DataFrame]) -> None:
    fig = F.group_effects_figure(calibrated["group_effects"])
    assert_readable(fig)
    assert len(fig.axes[0].patches) == len(calibrated["group_effects"])


def test_empty_inputs_give_a_figure_that_says_so() -> None:
    for draw in (F.leaderboard_figure, F.steering_figure, F.reliability_figure, F.coin_figure):
        fig = draw(pd.DataFrame())
        assert any("no " in t.get_text() for t in fig.findobj(Text))


def test_save_figure_writes_a_png(tmp_path, rows: pd.DataFrame) -> None:
    path = F.save_figure(F.leaderboard_figure(rows), tmp_path / "sub" / "board.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_leaderboard_figure_draws_table_1as_rows_on_one_dataset(rows: pd.DataFrame) -> None:
    """A sweep of none and persona on one dataset: the bars are Table 1a's persona numbers, as its title says,
    not the first steering mode's."""
    one = rows[(rows["dataset"] == "opinionqa") & rows["steering"].isin(["none", "persona"])]
    one = one[one["kind"].isin(["model", "baseline"])]
    fig = F.leaderboard_figure(one)
    persona = one[(one["kind"] == "model") & (one["steering"] == "persona")]
    bars = [p for c in fig.axes[0].containers if isinstance(c, BarContainer) for p in c.patches]
    assert sorted(round(b.get_height(), 9) for b in bars) == sorted(round(v, 9) for v in persona["mean"])
    assert "steering persona" in fig.get_suptitle()
