"""The terminal leaderboard never cuts a number or a name, in a log file or in a narrow terminal."""

from __future__ import annotations

from io import StringIO

from rich.console import Console

from distalign.report.render import print_leaderboard

LONG_MODEL = "smollm2_135m_instruct_q8_0_long_name"


def _rows() -> list[dict]:
    return [
        {"kind": "model", "model": LONG_MODEL, "method": "logprobs+temperature", "steering": "few_shot",
         "dataset": "global_opinions", "mean": 0.37612, "ci_low": 0.36412, "ci_high": 0.38812, "n": 12345,
         "extraction_rate": 0.987},
        {"kind": "baseline", "model": "discretization_30", "method": None, "steering": None,
         "dataset": "global_opinions", "mean": 0.0937, "ci_low": 0.09, "ci_high": 0.0974, "n": 300,
         "extraction_rate": None},
    ]  # fmt: skip


def test_a_log_file_gets_whole_numbers_and_names() -> None:
    out = StringIO()
    console = Console(file=out, width=80)  # what rich assumes for a file that is not a terminal
    assert not console.is_terminal
    print_leaderboard(_rows(), console=console)
    text = out.getvalue()
    assert "…" not in text
    for whole in (LONG_MODEL, "logprobs+temperature", "0.376 ± 0.012", "12345", "0.987", "discretization_30"):
        assert whole in text, whole
    assert console.width == 80  # the caller's console is left as it was


def test_a_narrow_terminal_folds_cells_instead_of_cutting_them() -> None:
    out = StringIO()
    console = Console(file=out, width=50, force_terminal=True, color_system=None)
    print_leaderboard(_rows(), console=console)
    text = out.getvalue()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 50
    columns: dict[int, str] = {}  # each column's text, its folded pieces joined in reading order
    for line in text.splitlines():
        if line.startswith("│"):
            for k, cell in enumerate(line.strip("│").split("│")):
                columns[k] = columns.get(k, "") + cell.replace(" ", "")
    assert any(LONG_MODEL in c for c in columns.values())
    assert any("0.376±0.012" in c for c in columns.values())


def test_the_leaderboard_ends_with_one_line_naming_the_cells_mostly_filler() -> None:
    rows = [
        {"kind": "model", "model": "smollm2_135m", "method": method, "steering": "persona",
         "dataset": "opinionqa", "mean": 0.337, "ci_low": 0.3, "ci_high": 0.37, "n": 36,
         "extraction_rate": rate}
        for method, rate in (("verbalize", 10 / 36), ("seq", 1.0))
    ]  # fmt: skip
    out = StringIO()
    print_leaderboard(rows, console=Console(file=out, width=80))
    lines = out.getvalue().strip().splitlines()
    assert "0.337 ± 0.035 †" in out.getvalue() and "0.337 ± 0.035 │" in out.getvalue()
    assert lines[-1].startswith("† 1 cell(s) parsed fewer than 90%")
    assert "SmolLM2-135M verbalize × persona on OpinionQA: 28% parsed" in lines[-1]
    out = StringIO()
    print_leaderboard(rows, console=Console(file=out, width=80), min_parsed=0.2)
    assert "†" not in out.getvalue()
