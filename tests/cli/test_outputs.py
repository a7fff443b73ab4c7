"""Every command that writes checks its output paths before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from distalign.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["reproduce", "meister2024", "--out", "{file}"],
        ["toy", "--out", "{file}"],
        ["calibrate", "{missing}", "--method", "regression", "--out", "{file}"],
        ["calibrate", "{missing}", "--method", "regression", "--json", "{file}/x.json"],
        ["import", "meister2024", "--out", "{file}/preds.jsonl"],
        ["report", "{missing}", "--out", "{file}"],
        ["score", "{missing}", "--out", "{file}"],
        ["baselines", "--json", "{file}/b.json"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_an_output_that_cannot_be_written_fails_first_with_one_line(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "taken"
    file.write_text("not a folder")
    missing = tmp_path / "no-such-input.jsonl"  # the check comes before the input is read
    args = [a.format(file=file, missing=missing) for a in argv]
    assert main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(file) in line and ("--out" in line or "--json" in line), line
    assert file.read_text() == "not a folder"
