from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from distalign.cli import data as cli
from distalign.errors import InputError


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="distalign")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_info_on_fixture(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["data", "info", "opinionqa", "--data-dir", "fixture"]) == 0
    out = capsys.readouterr().out
    assert "items:    10" in out and "pairs:    59" in out and "SEX=Male: 9" in out


def test_info_on_release(capsys: pytest.CaptureFixture[str], release_dir: Path) -> None:
    assert run(["data", "info", "nyt_books", "--data-dir", str(release_dir)]) == 0
    out = capsys.readouterr().out
    assert "items:    235" in out and "pairs:    940" in out


def test_list_reports_presence(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(["data", "list", "--data-dir", "fixture"]) == 0
    assert capsys.readouterr().out.count("present") == 4
    assert run(["data", "list", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("missing") == 4


def test_errors_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="distalign data download global_opinions"):
        run(["data", "info", "global_opinions", "--data-dir", str(tmp_path)])
    with pytest.raises(InputError, match="unknown dataset"):
        run(["data", "download", "nope", "--data-dir", str(tmp_path)])


def test_dispatcher_exit_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from distalign import cli as top

    assert top.main(["data", "info", "nyt_books", "--data-dir", "fixture"]) == 0
    assert top.main(["data", "info", "nyt_books", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "distalign data download nyt_books" in err[0]


def test_info_on_a_survey_that_is_not_utf8_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from distalign import cli as top

    path = tmp_path / "latin.csv"
    header = b"item_id,question,options,attribute,group,probs\n"
    path.write_bytes(header + b'Q1,Caf\xe9?,"[""Yes"", ""No""]",SEX,Female,"[0.5, 0.5]"\n')
    assert top.main(["data", "info", "custom", "--path", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(path) in line and "line 2" in line and "0xe9" in line


def test_the_shipped_sample_says_it_is_invented(
    capsys: pytest.CaptureFixture[str], release_dir: Path
) -> None:
    assert run(["data", "list", "--data-dir", "fixture"]) == 0
    assert "invented sample" in capsys.readouterr().out
    assert run(["data", "list", "--data-dir", str(release_dir)]) == 0
    assert "invented" not in capsys.readouterr().out
