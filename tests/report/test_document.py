"""``write_report``: the benchmark's tables and figures for any scored items, the supervision paper's
for calibrated cells, in HTML, Markdown and CSV that agree with each other."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
import pytest

from distalign.calibration.stage import calibrate_items
from distalign.errors import InputError
from distalign.records.config import CalibrationConfig
from distalign.report.document import write_report
from distalign.report.tables import leaderboard_markdown
from tests.report.conftest import make_items


@pytest.fixture(scope="module")
def benchmark_items() -> pd.DataFrame:
    return make_items(methods=("verbalize", "seq", "logprobs"), steerings=("none", "persona", "few_shot"))


def _linked(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', html)


def test_benchmark_report_writes_agreeing_html_markdown_and_csv(benchmark_items, tmp_path: Path) -> None:
    files = write_report(benchmark_items, tmp_path / "r", title="A <sweep>", n_resamples=100)
    assert set(files.figures) == {"leaderboard", "steering", "reliability"}
    assert set(files.tables) == {"leaderboard", "baselines", "kss", "leaderboard_rows", "reliability"}
    html, md = files.html.read_text(), files.markdown.read_text()
    assert "<title>A &lt;sweep&gt;</title>" in html and md.startswith("# A <sweep>")
    # the HTML carries its figures (it is viewed alone, e.g. in MLflow's artifact viewer)
    inlined = [base64.b64decode(src.removeprefix("data:image/png;base64,")) for src in _linked(html)]
    names = ("leaderboard", "steering", "reliability")
    assert inlined == [(files.out / "figures" / f"{n}.png").read_bytes() for n in names]
    for name, path in files.figures.items():
        assert path == files.out / "figures" / f"{name}.png" and path.read_bytes()[:4] == b"\x89PNG"
        assert f"](figures/{name}.png)" in md
    for path in files.tables.values():
        assert path.is_file() and f"tables/{path.name}" in html and f"tables/{path.name}" in md
    board = pd.read_csv(files.tables["leaderboard"])
    row = board[(board["model"] == "llama3-70b") & (board["method"] == "seq") & (board["dataset"] == "three")
                & (board["steering"] == "all")].iloc[0]  # fmt: skip
    cell = f"{row['mean']:.3f} ± {(row['ci_high'] - row['ci_low']) / 2:.3f}"
    assert cell in html and cell in md
    assert set(board["kind"]) == {"model", "baseline"}
    assert "<table" in html and html.count("<table") == len(files.tables) - 1  # reliability: CSV only


def test_calibrated_cells_add_the_supervision_papers_tables_and_figures(tmp_path: Path) -> None:
    raw = make_items(
        models=("gpt-4", "llama3-70b"),
        methods=("verbalize",),
        steerings=("base", "sd"),
        datasets=("opinionqa", "nyt_books"),
        n_items=30,
        bias=(0.85, 0.05, 0.05, 0.05),
    )
    config = CalibrationConfig(name="regression", params={"candidates": ["linear"], "curve_repeats": 2})
    calibrated = calibrate_items(raw, config)
    items = calibrated.items.assign(calibration="regression")
    files = write_report(items, tmp_path / "r", title="calibrated", n_resamples=50, calibration=config)
    assert {"spread", "learning_curves", "group_effects"} <= set(files.figures)
    assert {"calibration_table", "spread", "learning_curves", "group_effects"} <= set(files.tables)
    table = pd.read_csv(files.tables["calibration_table"])
    assert len(table) == 2 * 2 * 2  # models x datasets x prompts
    md = files.markdown.read_text()
    marked = table[table["alignment_significant"]]
    assert len(marked) and md.count("*") >= len(marked)
    board = pd.read_csv(files.tables["leaderboard"])
    assert {"verbalize", "verbalize@test", "verbalize+regression@test"} <= set(board["method"])


def test_extra_rows_are_scored_exactly_like_the_items(benchmark_items, tmp_path: Path) -> None:
    mine = benchmark_items[benchmark_items["model"] == "gpt-4"]
    theirs = benchmark_items[benchmark_items["model"] == "llama3-70b"]
    together = write_report(mine, tmp_path / "a", title="t", n_resamples=50, extra_rows=[theirs])
    alone = write_report(theirs, tmp_path / "b", title="t", n_resamples=50)
    keys = ["kind", "model", "method", "steering", "dataset"]
    a = pd.read_csv(together.tables["leaderboard"]).set_index(keys)
    b = pd.read_csv(alone.tables["leaderboard"]).set_index(keys)
    assert {"gpt-4", "llama3-70b"} <= set(a.index.get_level_values("model"))
    shared = a.loc[b.index]
    assert (shared["n"] == b["n"]).all()
    assert shared["mean"].to_numpy() == pytest.approx(b["mean"].to_numpy())


def test_out_naming_a_file_fails_before_any_work(benchmark_items, tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("mine")
    with pytest.raises(InputError, match="not a folder"):
        write_report(benchmark_items, target, title="t")
    assert target.read_text() == "mine"
    with pytest.raises(InputError, match="no scored rows"):
        write_report(benchmark_items.iloc[:0], tmp_path / "empty", title="t")
    assert not (tmp_path / "empty").exists()


def test_leaderboard_markdown_is_table_1a_with_baselines_and_the_gap(benchmark_items, tmp_path: Path) -> None:
    files = write_report(benchmark_items, tmp_path / "r", title="t", n_resamples=50)
    rows = pd.read_csv(files.tables["leaderboard"]).to_dict("records")
    md = leaderboard_markdown(rows)
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| model |"))
    assert header == "| model | verbalize | sequence | log-p |"
    # the release's gpt-4 is the config gpt4, shown by its one display name
    gpt4 = next(line for line in lines if line.startswith("| GPT-4 |"))
    assert re.fullmatch(r"\| GPT-4( \| 0\.\d{3} ± 0\.\d{3}){3} \|", gpt4)
    assert "| uniform |" in md and "| majority vote |" in md
    assert "Knowledge-to-simulation gap" in md and re.search(r"\| GPT-4 \| [+-]\d+% \|", md)
    assert leaderboard_markdown([]) == "_No scored cells._\n"


def _with_filler(items: pd.DataFrame, model: str, method: str, steering: str, parsed: int) -> pd.DataFrame:
    """``items`` where one cell parsed only its first ``parsed`` predictions; the rest became uniform."""
    out = items.copy()
    cell = out.index[(out["model"] == model) & (out["method"] == method) & (out["steering"] == steering)]
    weak = cell[parsed:]
    out.loc[weak, "status"] = "unparsed"
    return out


def test_a_cell_mostly_filler_is_marked_everywhere_and_left_out_of_the_gap(tmp_path: Path) -> None:
    items = make_items(
        models=("smollm2_135m",),
        methods=("verbalize", "seq"),
        steerings=("persona",),
        datasets=("opinionqa",),
    )
    n_cell = int((items["method"] == "verbalize").sum())
    items = _with_filler(items, "smollm2_135m", "verbalize", "persona", parsed=n_cell // 4)
    files = write_report(items, tmp_path / "r", title="t", n_resamples=50)
    html, md = files.html.read_text(), files.markdown.read_text()
    board = pd.read_csv(files.tables["leaderboard"])
    verb = board[(board["method"] == "verbalize") & (board["kind"] == "model")].iloc[0]
    assert verb["extraction_rate"] == pytest.approx(0.25)
    # Table 1a's cell carries its parsed share and the mark, highlighted in the HTML
    assert re.search(r'<td class="filler"[^>]*>0\.\d{3} ± 0\.\d{3} \(25% parsed\) †</td>', html)
    assert "(25% parsed) †" in md and "SmolLM2-135M verbalize × persona on OpinionQA: 25% parsed" in md
    # the gap is not computed from filler unless asked
    assert "kss" not in files.tables or pd.read_csv(files.tables["kss"]).empty
    assert leaderboard_markdown(board.to_dict("records")).count("†") >= 2
    relaxed = write_report(items, tmp_path / "relaxed", title="t", n_resamples=50, min_parsed=0.2)
    text = relaxed.markdown.read_text()
    assert "(25% parsed) †" not in text and "(25% parsed)" in text and "cell(s) parsed fewer" not in text


def test_labels_name_only_what_ran(tmp_path: Path) -> None:
    items = make_items(
        models=("gpt4",), methods=("verbalize", "logprobs"), steerings=("persona",), datasets=("opinionqa",)
    )
    files = write_report(items, tmp_path / "r", title="t", n_resamples=50)
    html, md = files.html.read_text(), files.markdown.read_text()
    board = pd.read_csv(files.tables["leaderboard"])
    # one dataset, one steering mode: no "all" rows that would claim more
    assert set(board["dataset"].dropna()) == {"opinionqa"}
    assert set(board["steering"].dropna()) == {"persona"}
    assert "Table 1a: OpinionQA, steering persona" in md
    for claim in ("persona + few-shot", "all datasets", "humans in black", "temperature scaling"):
        assert claim not in md and claim not in html
