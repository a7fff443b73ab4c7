"""``distalign baselines`` / ``distalign score`` through the real dispatcher."""

import io
import json
import sys

import numpy as np
import pandas as pd
import pytest

from distalign import cli

#: reference table of the data README (mean TV over (item, group) pairs under the release conventions)
GOLDEN = {
    "uniform": {"opinionqa": 0.3752, "nyt_books": 0.2234, "global_opinions": 0.4815, "three": 0.3600},
    "majority": {"opinionqa": 0.4993, "nyt_books": 0.5773, "global_opinions": 0.3603, "three": 0.4790},
    "discretization_30": {
        "opinionqa": 0.1113,
        "nyt_books": 0.1153,
        "global_opinions": 0.0937,
        "three": 0.1067,
    },
}


def test_baselines_reproduce_the_reference_table(release_dir, tmp_path, capsys) -> None:
    out = tmp_path / "b.json"
    assert (
        cli.main(
            [
                "baselines",
                "--data-dir",
                str(release_dir),
                "--json",
                str(out),
                "--csv",
                str(tmp_path / "b.csv"),
            ]
        )
        == 0
    )
    rows = json.loads(out.read_text())
    got = {(r["model"], r["dataset"]): r for r in rows}
    for model, per_dataset in GOLDEN.items():
        for dataset, value in per_dataset.items():
            r = got[(model, dataset)]
            assert r["mean"] == pytest.approx(value, abs=0.002), (model, dataset)
            assert r["ci_low"] < r["mean"] < r["ci_high"] and r["kind"] == "baseline"
    assert got[("uniform", "opinionqa")]["n"] == 599 and got[("uniform", "nyt_books")]["n"] == 940
    printed = capsys.readouterr().out
    assert "0.360 ±" in printed and "0.479 ±" in printed and "0.107 ±" in printed
    assert (tmp_path / "b.csv").read_text().startswith("kind,model,method")


def test_unknown_dataset_option_exits_2(capsys) -> None:
    assert cli.main(["baselines", "--datasets", "opinionqa,moon"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--datasets" in err and "moon" in err


def _good_row() -> dict:
    """A valid no-steering row on the shipped sample release."""
    from distalign.survey import load_survey

    item = next(iter(load_survey("nyt_books", "fixture").items))
    return {
        "model": "m",
        "method": "seq",
        "steering": "none",
        "dataset": "nyt_books",
        "item_id": item,
        "response": "A",
    }


def _write(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_score_writes_leaderboard_kss_and_baselines(release_dir, tmp_path, capsys) -> None:
    from distalign.survey import load_survey

    survey = load_survey("nyt_books", release_dir)
    rows = []
    for d in survey.distributions[:40]:
        base = {"model": "toy", "steering": "persona", "dataset": "nyt_books", "item_id": d.item_id,
                "attribute": d.attribute, "group": d.group}  # fmt: skip
        rows.append(
            {**base, "method": "verbalize", "probs": list(0.5 * d.probs + 0.125)}
        )  # halfway to uniform
        rows.append({**base, "method": "seq", "response": "A B C D" if d.group != "Male" else "no idea"})
    preds = tmp_path / "preds.jsonl"
    _write(preds, rows)
    out = tmp_path / "out"
    code = cli.main(
        ["score", str(preds), "--data-dir", str(release_dir), "--out", str(out), "--n-resamples", "100"]
    )
    assert code == 0
    board = json.loads((out / "leaderboard.json").read_text())
    verb = [
        r
        for r in board
        if r["method"] == "verbalize" and r["steering"] == "persona" and r["dataset"] == "nyt_books"
    ]
    halfway = [0.25 * abs(d.probs - 0.25).sum() for d in survey.distributions[:40]]
    assert verb[0]["mean"] == pytest.approx(sum(halfway) / 40) and verb[0]["n"] == 40
    # one dataset, one steering mode: no "all" aggregate is made of them (labels say exactly what ran)
    assert not [r for r in board if r["kind"] == "model" and "all" in (r["steering"], r["dataset"])]
    seq = [
        r for r in board if r["method"] == "seq" and (r["steering"], r["dataset"]) == ("persona", "nyt_books")
    ][0]
    assert seq["extraction_rate"] == pytest.approx(30 / 40)
    assert {r["model"] for r in board if r["kind"] == "baseline"} == {
        "uniform",
        "majority",
        "discretization_30",
    }
    # seq parsed 30 of 40 answers (< 90%): filler, so no knowledge-to-simulation gap is claimed from it
    assert json.loads((out / "kss.json").read_text()) == []
    shown = capsys.readouterr().out
    assert "TV (95% CI)" in shown and "†" in shown
    # scores.csv: each pair with both distributions as JSON lists, to 6 decimals
    scored = pd.read_csv(out / "scores.csv", keep_default_na=False, na_values=[""])
    assert len(scored) == 80
    for d in survey.distributions[:40]:
        pair = scored[(scored["item_id"] == d.item_id) & (scored["group"] == d.group)].set_index("method")
        assert json.loads(pair.at["verbalize", "human"]) == pytest.approx(list(d.probs), abs=5e-7)
        assert json.loads(pair.at["verbalize", "pred"]) == pytest.approx(
            list(0.5 * d.probs + 0.125), abs=5e-7
        )
        assert json.loads(pair.at["seq", "pred"]) == [0.25] * 4  # parsed, or unparsed scored as uniform


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({"item_id": "No such book"}, "row 2, column 'item_id': unknown item"),
        ({"dataset": "mars"}, "row 2, column 'dataset': unknown dataset"),
        ({"group": "Martian"}, "row 2, column 'group'"),
        ({"response": None}, "row 2, column 'probs': neither probs nor response"),
        (None, "row 2: not valid JSON"),
    ],
)
def test_malformed_predictions_exit_2_with_one_line(tmp_path, capsys, bad, expected) -> None:
    preds = tmp_path / "preds.jsonl"
    good = _good_row()
    line = "{not json" if bad is None else json.dumps({**good, **bad})
    preds.write_text(json.dumps(good) + "\n" + line + "\n")
    assert cli.main(["score", str(preds), "--data-dir", "fixture"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{preds}: {expected}" in err


def test_bad_probs_row_names_row_and_column(tmp_path, capsys) -> None:
    from distalign.survey import load_survey

    survey = load_survey("nyt_books", "fixture")
    item = next(iter(survey.items))
    ok = {"model": "m", "method": "verbalize", "steering": "none", "dataset": "nyt_books", "item_id": item}
    preds = tmp_path / "p.csv"
    preds.write_text(
        "model,method,steering,dataset,item_id,probs\n"
        + "\n".join(
            f'{ok["model"]},{ok["method"]},{ok["steering"]},{ok["dataset"]},"{item}","{p}"'
            for p in ("[0.25, 0.25, 0.25, 0.25]", "[0.5, 0.5]")
        )  # fmt: skip
        + "\n"
    )
    assert cli.main(["score", str(preds), "--data-dir", "fixture"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{preds}: row 2, column 'probs': 2 probabilities for 4 options" in err


def _release_rows(release_dir, attribute: str, group: str) -> list[dict]:
    """Rows as the release's own log-p outputs give them (probabilities per option letter)."""
    folder = release_dir / "results/opinionqa/model_logprobs/gpt-3.5-turbo-0125/task1"
    data = json.loads(
        (folder / f"Pew_American_Trends_Panel_disagreement_100/{attribute}/{group}.json").read_text()
    )
    return [
        {"model": "gpt-3.5-turbo-0125", "method": "logprobs", "steering": "persona", "dataset": "opinionqa",
         "item_id": key, "attribute": attribute, "group": group, "probs": value["avg_actual_results"]}
        for key, value in data.items()
    ]  # fmt: skip


def test_release_outputs_score_as_they_are(release_dir, tmp_path, capsys) -> None:
    """Unevaluated groups (CREGION, RACE=Hispanic) are skipped with one warning; the log-p rows with no
    mass on any option letter count as failed extractions."""
    female = _release_rows(release_dir, "SEX", "Female")
    no_mass = [r["item_id"] for r in female if not any(r["probs"].values())]
    assert no_mass, "the release's all-zero log-p rows"
    rows = [
        *female,
        *_release_rows(release_dir, "CREGION", "Northeast"),
        *_release_rows(release_dir, "RACE", "Hispanic"),
    ]
    preds = tmp_path / "release.jsonl"
    _write(preds, rows)
    argv = [
        "score",
        str(preds),
        "--data-dir",
        str(release_dir),
        "--json",
        str(tmp_path / "b.json"),
        "--n-resamples",
        "20",
    ]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"distalign score: warning: {preds}: skipped 200 row(s)")
    assert f"row {len(female) + 1} (opinionqa, CREGION=Northeast)" in err[0]
    board = json.loads((tmp_path / "b.json").read_text())
    row = next(
        r
        for r in board
        if (r["model"], r["steering"], r["dataset"]) == (rows[0]["model"], "persona", "opinionqa")
    )
    assert row["n"] == len(female) and row["extraction_rate"] == pytest.approx(1 - len(no_mass) / len(female))

    assert cli.main([*argv, "--strict"]) == 2
    assert (
        f"{preds}: row {len(female) + 1}, column 'group': group 'CREGION=Northeast'"
        in capsys.readouterr().err
    )
    _write(preds, female)
    assert cli.main([*argv, "--strict"]) == 2
    first_zero = next(i for i, r in enumerate(female) if not any(r["probs"].values())) + 1
    assert f"{preds}: row {first_zero}, column 'probs': probabilities sum to zero" in capsys.readouterr().err


def _fixture_rows() -> tuple[list[dict], list]:
    from distalign.survey import load_survey

    dists = load_survey("nyt_books", "fixture").distributions[:3]
    keys = {"model": "m", "method": "verbalize", "steering": "persona", "dataset": "nyt_books"}
    rows = [{**keys, "item_id": d.item_id, "attribute": d.attribute, "group": d.group} for d in dists]
    return rows, dists


def test_huge_probabilities_score_as_their_distribution(tmp_path, capsys) -> None:
    rows, dists = _fixture_rows()
    preds = tmp_path / "p.jsonl"
    _write(preds, [{**r, "probs": [1e308, 1e308, 1e308, 0.1]} for r in rows])
    assert cli.main(["score", str(preds), "--data-dir", "fixture", "--json", str(tmp_path / "b.json")]) == 0
    board = json.loads((tmp_path / "b.json").read_text())
    row = next(
        r
        for r in board
        if (r["method"], r["steering"], r["dataset"]) == ("verbalize", "persona", "nyt_books")
    )
    third = np.array([1, 1, 1, 0]) / 3
    assert row["mean"] == pytest.approx(np.mean([0.5 * np.abs(third - d.probs).sum() for d in dists]))
    assert capsys.readouterr().err == ""  # no warning, and no progress display off a terminal


def test_repeated_predictions(tmp_path, capsys) -> None:
    rows, _ = _fixture_rows()
    preds = tmp_path / "p.jsonl"
    first = {**rows[0], "probs": [0.1, 0.2, 0.3, 0.4]}
    _write(preds, [first, {**rows[1], "probs": [1, 0, 0, 0]}, {**first, "probs": [0.4, 0.3, 0.2, 0.1]}])
    assert cli.main(["score", str(preds), "--data-dir", "fixture"]) == 2
    assert f"{preds}: row 3, column 'probs': conflicts with row 1" in capsys.readouterr().err

    _write(preds, [first, {**rows[1], "probs": [1, 0, 0, 0]}, first, first])
    assert cli.main(["score", str(preds), "--data-dir", "fixture", "--json", str(tmp_path / "b.json")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "counted 2 repeated row(s) once" in err[0] and "row 3 repeats row 1" in err[0]
    board = json.loads((tmp_path / "b.json").read_text())
    assert next(r for r in board if (r["steering"], r["dataset"]) == ("persona", "nyt_books"))["n"] == 2
    assert cli.main(["score", str(preds), "--data-dir", "fixture", "--strict"]) == 2
    assert f"{preds}: row 3, column 'item_id': repeats row 1" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_shown_on_a_terminal_only(tmp_path, monkeypatch, capsys) -> None:
    rows, _ = _fixture_rows()
    preds = tmp_path / "p.jsonl"
    _write(preds, [{**r, "method": "seq", "response": "A B B C"} for r in rows])
    assert cli.main(["score", str(preds), "--data-dir", "fixture"]) == 0
    assert capsys.readouterr().err == ""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert cli.main(["score", str(preds), "--data-dir", "fixture"]) == 0
    shown = terminal.getvalue()
    assert "reading p.jsonl" in shown and "bootstrap intervals" in shown
    assert "TV (95% CI)" in capsys.readouterr().out and "TV (95% CI)" not in shown


def test_out_naming_a_file_fails_before_any_work(tmp_path, capsys) -> None:
    taken = tmp_path / "results"
    taken.write_text("not a folder")
    missing = tmp_path / "missing.jsonl"  # would fail later, when read
    assert cli.main(["score", str(missing), "--out", str(taken)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"distalign score: error: --out: {taken} exists and is not a folder"
    assert cli.main(["score", str(missing), "--json", str(tmp_path)]) == 2
    assert "--json" in capsys.readouterr().err
    assert cli.main(["baselines", "--csv", str(taken / "b.csv")]) == 2
    assert f"--csv: {taken} is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["score", "baselines"])
def test_help_shows_examples_and_every_default(command, capsys) -> None:
    parser = cli.build_parser([command])
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    options = [a for a in sub._actions if a.option_strings and a.dest != "help"]
    assert options and all("default" in (a.help or "") for a in options), [a.dest for a in options]
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = capsys.readouterr().out
    assert f"examples:\n  distalign {command} " in text and "%" not in text.replace("95%", "")


def test_warnings_on_stderr_shows_other_warnings_as_python_does(capsys) -> None:
    import warnings

    from distalign.cli.score import warnings_on_stderr
    from distalign.scoring.predictions import PredictionsWarning

    with pytest.warns(FutureWarning, match="from pandas") as caught, warnings_on_stderr("score"):
        warnings.warn("from pandas", FutureWarning, stacklevel=1)
        warnings.warn("p.jsonl: skipped 2 row(s)", PredictionsWarning, stacklevel=1)
    assert capsys.readouterr().err == "distalign score: warning: p.jsonl: skipped 2 row(s)\n"
    assert [w.category for w in caught] == [FutureWarning]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
@pytest.mark.parametrize(
    ("probs", "expected"),
    [
        ([True, False, False, False], "probability 1 of 4 is True, a boolean, not a number"),
        (["0.1", "0.2", "0.3", "0.4"], "probability 1 of 4 is '0.1', a text, not a number"),
        ([0.1, 0.2, True, 0.7], "probability 3 of 4 is True, a boolean, not a number"),
        ([0.1, "a", 0.3, 0.6], "probability 2 of 4 is 'a', a text, not a number"),
        ([0.1, [0.2], 0.3, 0.4], "probability 2 of 4 is [0.2], a list, not a number"),
    ],
)
def test_probabilities_must_be_numbers(tmp_path, capsys, suffix, probs, expected) -> None:
    """Booleans and numbers as text are refused (not read as 1/0 or parsed), naming row, column and value;
    the first row is well formed, so the error is the second row's."""
    from distalign.survey import load_survey

    item = next(iter(load_survey("nyt_books", "fixture").items))
    key = {"model": "m", "method": "verbalize", "steering": "none", "dataset": "nyt_books", "item_id": item}
    rows = [dict(key, model="ok", probs=[0.25] * 4), dict(key, probs=probs)]
    preds = tmp_path / f"p{suffix}"
    if suffix == ".csv":
        pd.DataFrame([dict(r, probs=json.dumps(r["probs"])) for r in rows]).to_csv(preds, index=False)
    else:
        preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["score", str(preds), "--data-dir", "fixture"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{preds}: row 2, column 'probs': {expected}" in err
