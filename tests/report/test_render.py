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
