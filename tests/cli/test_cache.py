"""``distalign cache ...`` and ``distalign model prepare``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from distalign.cli import cache as cli
from distalign.engines.store import ResponseStore
from distalign.errors import InputError
from distalign.records.engine import GenerateResult, OptionLogprobResult


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="distalign")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    store = ResponseStore(root)
    store.put_many(
        [("k1", GenerateResult(texts=("A",))), ("k2", GenerateResult(texts=("B",)))], model="alpha"
    )
    store.put_many([("k3", OptionLogprobResult(logprobs=(-0.1,)))], model="beta")
    return root


def test_stats_reports_entries_per_model(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["cache", "stats", "--store", str(store_dir), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["entries"] == 3 and stats["models"] == {"alpha": 2, "beta": 1}
    assert _run(["cache", "stats", "--store", str(store_dir)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert "3 stored answers" in text[1] and "KB" in text[1], text  # sizes for a reader, not byte counts
    per_model = [line.split() for line in text[3:]]
    assert per_model == [["alpha", "2"], ["beta", "1"]], text


def test_store_from_environment(store_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("DISTALIGN_STORE", str(store_dir))
    assert _run(["cache", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 3


def test_export_writes_jsonl(store_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "dump.jsonl"
    assert _run(["cache", "export", str(out), "--store", str(store_dir)]) == 0
    keys = {json.loads(line)["key"] for line in out.read_text().splitlines()}
    assert keys == {"k1", "k2", "k3"}


def test_clear_one_model_then_all(store_dir: Path) -> None:
    assert _run(["cache", "clear", "--model", "alpha", "--yes", "--store", str(store_dir)]) == 0
    assert ResponseStore(store_dir).stats()["models"] == {"beta": 1}
    assert _run(["cache", "clear", "--yes", "--store", str(store_dir)]) == 0
    assert ResponseStore(store_dir).stats()["entries"] == 0


def test_missing_store_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no response store"):
        _run(["cache", "stats", "--store", str(tmp_path / "nowhere")])
    with pytest.raises(InputError, match="output folder"):
        store = tmp_path / "s"
        ResponseStore(store).put_many([("k", GenerateResult(texts=("x",)))])
        _run(["cache", "export", str(tmp_path / "no" / "dir.jsonl"), "--store", str(store)])


@pytest.mark.slow
def test_model_prepare_prints_the_folder(capsys: pytest.CaptureFixture[str]) -> None:
    from distalign.cli import main
    from distalign.engines.model_prep import prepare_default_model

    expected = prepare_default_model()
    assert main(["model", "prepare", "--cache-dir", str(expected.parent)]) == 0
    assert capsys.readouterr().out.strip() == str(expected)


def test_clear_off_a_terminal_needs_yes(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(InputError, match="--yes"):
        _run(["cache", "clear", "--store", str(store_dir)])
    assert ResponseStore(store_dir).stats()["entries"] == 3


def test_clear_on_a_terminal_asks(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    asked: list[str] = []
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda q: asked.append(q) or next(answers))
    assert _run(["cache", "clear", "--store", str(store_dir)]) == 1
    assert ResponseStore(store_dir).stats()["entries"] == 3
    assert _run(["cache", "clear", "--model", "alpha", "--store", str(store_dir)]) == 0
    assert ResponseStore(store_dir).stats()["models"] == {"beta": 1}
    assert "3 entries" in asked[0] and "2 entries of model alpha" in asked[1]


def test_clear_of_an_unknown_model_names_the_models_in_the_store(store_dir: Path) -> None:
    with pytest.raises(
        InputError, match=r"no entries for model 'gamma' \(models in the store: alpha, beta\)"
    ):
        _run(["cache", "clear", "--model", "gamma", "--yes", "--store", str(store_dir)])
    assert ResponseStore(store_dir).stats()["entries"] == 3


def test_verify_moves_a_damaged_shard_aside_and_stats_and_export_go_on(
    store_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (store_dir / "shard-elsewhere-9.sqlite").write_bytes(b"not a database " * 500)
    assert (
        _run(["cache", "stats", "--store", str(store_dir), "--json"]) == 0
    )  # reads around it (and moves it aside)
    assert json.loads(capsys.readouterr().out)["entries"] == 3
    (store_dir / "shard-elsewhere-8.sqlite").write_bytes(b"not a database " * 500)
    assert _run(["cache", "export", str(tmp_path / "all.jsonl"), "--store", str(store_dir)]) == 0
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == 3
    (store_dir / "shard-elsewhere-7.sqlite").write_bytes(b"not a database " * 500)
    capsys.readouterr()
    assert _run(["cache", "verify", "--store", str(store_dir)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("damaged") and "shard-elsewhere-7.sqlite" in line for line in out), out
    assert out[-1].endswith("1 sound, 1 with problems"), out
    assert _run(["cache", "verify", "--store", str(store_dir)]) == 0  # moved aside: the store is sound
    assert len(list(store_dir.glob("*.damaged-*"))) == 3
