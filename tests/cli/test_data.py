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


def _rows(out: str) -> dict[str, str]:
    """``data list``'s table: dataset name -> its state column."""
    from distalign.survey.registry import DATASET_LOADERS

    names = {*DATASET_LOADERS, cli.RELEASE}
    return {p[0]: p[1] for line in out.splitlines() if (p := line.split()) and p[0] in names}


def test_list_reports_presence(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(["data", "list", "--data-dir", "fixture"]) == 0
    out = capsys.readouterr().out
    assert set(_rows(out).values()) == {"present"} and "invented sample" in out
    assert cli.RELEASE not in _rows(out)  # the sample is not the release
    assert run(["data", "list", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert set(rows.values()) == {"missing"} and cli.RELEASE in rows


def test_list_says_how_to_get_what_is_missing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "nytimes").mkdir()
    for rel in ("nytimes/data.json", "nytimes/question_similarity_top10.json"):
        (tmp_path / rel).write_text("{}")
    assert run(["data", "list", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    missing = [name for name, state in _rows(out).items() if state != "present"]
    assert "nyt_books" not in missing and "opinionqa" in missing
    for name in missing:  # one download command per missing dataset, and the whole release
        assert f"data download {name}\n" in out or f"data download {name} " in out, name
    assert "data download nyt_books" not in out
    assert "export DISTALIGN_DATA_DIR=" in out  # the offline way
    assert "--data-dir fixture" in out and "dataset.data_dir=fixture" in out  # the shipped sample


def test_list_on_the_release_has_nothing_to_get(
    capsys: pytest.CaptureFixture[str], release_dir: Path
) -> None:
    assert run(["data", "list", "--data-dir", str(release_dir)]) == 0
    out = capsys.readouterr().out
    assert set(_rows(out).values()) == {"present"} and "data download" not in out


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
    out = capsys.readouterr().out
    assert "note:" not in out  # the release is not called invented; the sample is listed as an extra
    assert "invented" not in out.split("\n\n")[0]
