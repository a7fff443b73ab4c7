"""``distalign import`` / ``distalign reproduce`` through the real dispatcher (the reproduction itself is
tested in tests/report/meister2024)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from distalign import cli
from distalign.scoring.predictions import read_predictions


def test_import_writes_a_predictions_file_with_the_humans(release_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "release.parquet"
    assert (
        cli.main(["import", "meister2024", "--data-dir", str(release_dir), "--out", str(out), "--humans"])
        == 0
    )
    df = read_predictions(out)
    assert len(df) == 76_040 + 3_415
    assert {"model", "method", "steering", "dataset", "item_id", "probs", "response", "options"} <= set(
        df.columns
    )
    assert (df["model"] == "human").sum() == 3_415
    assert "wrote 79,455 predictions" in capsys.readouterr().out


def test_import_rejects_an_unknown_format_before_reading(tmp_path: Path, capsys) -> None:
    assert (
        cli.main(["import", "meister2024", "--data-dir", str(tmp_path), "--out", str(tmp_path / "x.txt")])
        == 2
    )
    err = capsys.readouterr().err
    assert "--out" in err and ".txt" in err and len(err.strip().splitlines()) == 1


def test_reproduce_without_the_release_says_how_to_get_it(tmp_path: Path, capsys) -> None:
    assert (
        cli.main(["reproduce", "meister2024", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    )
    assert "download" in capsys.readouterr().err


def test_top_level_help_lists_the_commands(capsys) -> None:
    """(argparse formats every help line with %, so a bare "95%" in one broke ``distalign --help``.)"""
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "import" in text and "reproduce" in text and "95% intervals" in text


@pytest.mark.slow
def test_the_imported_release_scores_and_calibrates_as_it_is(
    release_dir: Path, tmp_path: Path, capsys
) -> None:
    """The release's own outputs, imported, go through ``distalign score`` and ``distalign calibrate``: rows
    for groups the benchmark does not evaluate are skipped with one warning, log-p rows with no mass on any
    option count as extraction failures, and nothing is an error."""
    preds = tmp_path / "release.parquet"
    assert cli.main(["import", "meister2024", "--data-dir", str(release_dir), "--out", str(preds)]) == 0
    capsys.readouterr()
    code = cli.main(["score", str(preds), "--data-dir", str(release_dir), "--n-resamples", "20"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (warning,) = [x for x in captured.err.splitlines() if "no human distribution" in x]
    assert "CREGION" in warning or "EDUCATION" in warning or "INCOME" in warning
    assert "GPT-4" in captured.out and "logprobs+temperature" in captured.out
    logp = tmp_path / "logp.parquet"
    frame = pd.read_parquet(preds)
    frame[(frame["method"] == "logprobs") & (frame["model"] == "gpt-4")].to_parquet(logp)
    out = tmp_path / "cal"
    code = cli.main(
        ["calibrate", str(logp), "--method", "temperature", "--data-dir", str(release_dir), "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    assert cli.main(["score", str(preds), "--data-dir", str(release_dir), "--strict"]) == 2
