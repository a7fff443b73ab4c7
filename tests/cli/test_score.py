"""``distalign baselines`` / ``distalign score`` through the real dispatcher."""

import json

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
        if r["method"] == "verbalize" and r["steering"] == "all" and r["dataset"] == "nyt_books"
    ]
    halfway = [0.25 * abs(d.probs - 0.25).sum() for d in survey.distributions[:40]]
    assert verb[0]["mean"] == pytest.approx(sum(halfway) / 40) and verb[0]["n"] == 40
    seq = [r for r in board if r["method"] == "seq" and r["steering"] == "all" and r["dataset"] == "all"][0]
    assert seq["extraction_rate"] == pytest.approx(30 / 40)
    assert {r["model"] for r in board if r["kind"] == "baseline"} == {
        "uniform",
        "majority",
        "discretization_30",
    }
    seq_ds = [
        r for r in board if r["method"] == "seq" and r["steering"] == "all" and r["dataset"] == "nyt_books"
    ][0]
    kss = json.loads((out / "kss.json").read_text())[0]
    assert kss["kss"] == pytest.approx(seq_ds["mean"] / verb[0]["mean"] - 1)
    assert (out / "scores.csv").is_file() and "Leaderboard" in capsys.readouterr().out


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
