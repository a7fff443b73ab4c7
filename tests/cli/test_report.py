"""``distalign report`` through the real dispatcher, from each kind of SOURCE."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from distalign import cli
from distalign.records.results import CellResult
from distalign.report.meister2024.release import import_release
from distalign.report.meister2024.reproduce import score_rows
from distalign.scoring.results import write_cell
from distalign.survey import load_survey
from distalign.sweep.cells import cell_hash as spec_hash
from tests.report.conftest import make_items
from tests.sweep.conftest import make_cell


def _sweep(root: Path) -> pd.DataFrame:
    """A sweep folder of two finished cells and a failed one; returns the finished cells' items."""
    parts = []
    for method in ("verbalize", "seq"):
        cell = make_cell(method=method, dataset="nyt_books")
        items = make_items(models=("smollm2_135m",), methods=(method,), datasets=("nyt_books",))
        write_cell(root, CellResult(spec_hash(cell), cell, "finished", None, items, {}))
        parts.append(items)
    failed = make_cell(method="logprobs", dataset="nyt_books")
    write_cell(root, CellResult(spec_hash(failed), failed, "failed", "boom"))
    return pd.concat(parts, ignore_index=True)


def test_a_sweep_folder(tmp_path: Path, capsys) -> None:
    items = _sweep(tmp_path / "sweep")
    out = tmp_path / "report"
    assert cli.main(["report", str(tmp_path / "sweep"), "--out", str(out), "--n-resamples", "50"]) == 0
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    board = pd.read_csv(out / "tables" / "leaderboard.csv")
    row = board[(board["method"] == "seq") & (board["dataset"] == "nyt_books") & (board["steering"] == "all")]
    assert row["mean"].iloc[0] == pytest.approx(items.loc[items["method"] == "seq", "tv"].mean())
    assert set(board["model"]) == {"smollm2_135m", "uniform", "majority", "discretization_30"}
    assert "report.html" in capsys.readouterr().out


def test_a_predictions_file_is_scored_against_its_surveys(tmp_path: Path) -> None:
    survey = load_survey("nyt_books", "fixture")
    rows = [
        {"model": "m", "method": "verbalize", "steering": "persona", "dataset": "nyt_books",
         "item_id": d.item_id, "attribute": d.attribute, "group": d.group,
         "probs": list(0.5 * d.probs + 0.125)}
        for d in survey.distributions
    ]  # fmt: skip
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "report"
    argv = ["report", str(preds), "--data-dir", "fixture", "--out", str(out), "--n-resamples", "50"]
    assert cli.main(argv) == 0
    board = pd.read_csv(out / "tables" / "leaderboard.csv")
    model = board[
        (board["kind"] == "model") & (board["dataset"] == "nyt_books") & (board["steering"] == "persona")
    ]
    uniform = board[(board["model"] == "uniform") & (board["dataset"] == "nyt_books")]
    assert model["mean"].iloc[0] == pytest.approx(uniform["mean"].iloc[0] / 2)  # halfway to uniform
    assert uniform["n"].iloc[0] == len(survey.distributions)


def test_an_mlflow_parent_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store)
    exp = client.create_experiment("s", artifact_location=(tmp_path / "mlruns").as_uri())
    parent = client.create_run(exp, run_name="sweep").info.run_id
    items = make_items(models=("m",), methods=("seq",), datasets=("nyt_books",))
    child = client.create_run(exp, tags={"mlflow.parentRunId": parent, "distalign.spec_hash": "abc"})
    with tempfile.TemporaryDirectory() as tmp:
        items.to_parquet(Path(tmp) / "items.parquet", index=False)
        client.log_artifact(child.info.run_id, str(Path(tmp) / "items.parquet"))
    client.set_terminated(child.info.run_id)
    out = tmp_path / "report"
    argv = ["report", parent, "--tracking-uri", store, "--out", str(out), "--n-resamples", "50"]
    assert cli.main(argv) == 0
    board = pd.read_csv(out / "tables" / "leaderboard.csv")
    assert board.loc[board["kind"] == "model", "model"].unique().tolist() == ["m"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("no/such/thing", "SOURCE no/such/thing: neither"),
        (".", "without cells/ is not a sweep output folder"),
    ],
)
def test_a_source_that_is_none_of_the_three_is_named(source: str, message: str, tmp_path, capsys) -> None:
    assert cli.main(["report", source, "--out", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_out_naming_a_file_is_rejected_first(tmp_path: Path, capsys) -> None:
    taken = tmp_path / "taken.txt"
    taken.write_text("keep")
    _sweep(tmp_path / "sweep")
    assert cli.main(["report", str(tmp_path / "sweep"), "--out", str(taken)]) == 2
    assert "--out" in capsys.readouterr().err and taken.read_text() == "keep"


def test_report_is_listed_in_the_help(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "report" in capsys.readouterr().out


@pytest.mark.slow
def test_with_meister2024_puts_a_new_model_on_the_papers_leaderboard(
    release_dir: Path, tmp_path: Path
) -> None:
    """A new model's predictions beside the release's own rows, all scored by the same code: the new model
    and the paper's five models share one leaderboard (and the paper's rows keep their published means)."""
    rows = []
    for name in ("opinionqa", "nyt_books", "global_opinions"):
        for d in load_survey(name, release_dir).distributions:
            for steering in ("persona", "few_shot"):
                rows.append(
                    {"model": "my-model", "method": "verbalize", "steering": steering, "dataset": name,
                     "item_id": d.item_id, "attribute": d.attribute, "group": d.group,
                     "probs": [1.0] * len(d.probs)}  # uniform: TV equals the uniform baseline
                )  # fmt: skip
    preds = tmp_path / "mine.jsonl"
    pd.DataFrame(rows).to_json(preds, orient="records", lines=True)
    out = tmp_path / "report"
    argv = ["report", str(preds), "--with", "meister2024", "--data-dir", str(release_dir), "--out", str(out)]
    assert cli.main([*argv, "--n-resamples", "50"]) == 0
    board = pd.read_csv(out / "tables" / "leaderboard.csv")
    three = board[(board["dataset"] == "three") & (board["steering"] == "all")]
    means = {(r.model, r.method): r.mean for r in three.itertuples()}
    # the release's gpt-4 is the project's gpt4 config
    assert means[("gpt4", "verbalize")] == pytest.approx(0.229, abs=0.001)  # the paper's Table 1a
    assert means[("my-model", "verbalize")] == pytest.approx(means.get(("uniform", None), 0.360), abs=0.002)


def _release_sweep(root: Path, release_dir: Path, n_items: int = 6) -> pd.DataFrame:
    """A sweep folder of one finished cell (``instant`` x verbalize x persona) on the first ``n_items``
    released OpinionQA items, every group the release evaluates; returns its items."""
    survey = load_survey("opinionqa", release_dir)
    chosen = list(survey.items)[:n_items]
    rows = []
    for d in survey.distributions:
        if d.item_id in chosen:
            pred = np.full(len(d.probs), 1 / len(d.probs))
            rows.append(
                {"dataset": "opinionqa", "item_id": d.item_id, "attribute": d.attribute, "group": d.group,
                 "model": "instant", "method": "verbalize", "steering": "persona",
                 "prompt_hash": f"{d.item_id}/{d.attribute}/{d.group}", "status": "ok",
                 "pred_probs": pred.tolist(), "human_probs": list(map(float, d.probs)),
                 "tv": 0.5 * float(np.abs(pred - np.asarray(d.probs)).sum()), "alignment": 0.5,
                 "ordinal": None}
            )  # fmt: skip
    items = pd.DataFrame(rows)
    cell = make_cell(method="verbalize", dataset="opinionqa", steering="persona")
    write_cell(root, CellResult(spec_hash(cell), cell, "finished", None, items, {}))
    return items


@pytest.mark.slow
def test_with_meister2024_compares_a_sweep_on_the_same_released_items(
    release_dir: Path, tmp_path: Path
) -> None:
    """A sweep on 6 released OpinionQA items with persona steering: the sweep's model is in Table 1a
    beside the paper's models, the paper's rows are recomputed on those 6 items (checked against a direct
    computation from the release's raw file), the table names what it covers, the published full-data
    values are shown too."""
    items = _release_sweep(tmp_path / "sweep", release_dir)
    out = tmp_path / "report"
    argv = ["report", str(tmp_path / "sweep"), "--with", "meister2024", "--data-dir", str(release_dir)]
    assert cli.main([*argv, "--out", str(out), "--n-resamples", "50"]) == 0
    board = pd.read_csv(out / "tables" / "leaderboard.csv")
    models = board[board["kind"] == "model"]
    assert set(models["dataset"]) == {"opinionqa"} and set(models["steering"]) == {"persona"}
    assert {"instant", "gpt4", "claude_3_opus"} <= set(models["model"])
    md = (out / "report.md").read_text()
    table_1a = md.split("### Table 1a")[1].split("###")[0]
    assert "OpinionQA, 6 of 100 items; steering persona" in table_1a
    assert "Table 1a: OpinionQA, 6 of 100 items; steering persona" in md  # said once, not twice
    assert "Mean TV per method and model (OpinionQA, 6 of 100 items; steering persona)" in md  # the figure
    for name in ("instant", "GPT-4", "Claude 3 Opus", "Llama 3 70B"):
        assert f"| {name} |" in table_1a
    assert "anthropic_opus" not in md and "persona_rerun" not in md
    assert "Published values of the paper's models on all items" in md
    # one number checked against a direct computation: the release's GPT-4 verbalized persona answers to
    # those 6 items, scored as `distalign score` scores the release, averaged over the sweep's groups
    preds = import_release(release_dir)
    pick = (preds["model"] == "gpt-4") & (preds["method"] == "verbalize") & (preds["steering"] == "persona")
    mine = preds[pick & preds["item_id"].isin(set(items["item_id"]))]
    scored = score_rows(mine.reset_index(drop=True), {"opinionqa": load_survey("opinionqa", release_dir)})
    pairs = set(zip(items["item_id"], items["attribute"], items["group"], strict=True))
    tv = scored[
        [k in pairs for k in zip(scored["item_id"], scored["attribute"], scored["group"], strict=True)]
    ]
    tv = tv["tv"].dropna()
    row = models[(models["model"] == "gpt4") & (models["method"] == "verbalize")].iloc[0]
    assert row["n"] == len(tv) > 0 and row["mean"] == pytest.approx(tv.mean(), abs=1e-9)


def test_with_meister2024_refuses_a_sweep_on_other_data(tmp_path: Path, capsys) -> None:
    """A sweep on the invented sample is not mixed with the release's rows: one line says why."""
    _sweep(tmp_path / "sweep")  # invented NYT-shaped items (make_items)
    argv = ["report", str(tmp_path / "sweep"), "--with", "meister2024", "--data-dir", "fixture"]
    assert cli.main([*argv, "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--with meister2024" in err[0] and "other data" in err[0]
    assert not (tmp_path / "report" / "report.html").exists()
