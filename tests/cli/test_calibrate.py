from __future__ import annotations

import argparse
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distalign.cli import calibrate as cli
from distalign.errors import InputError
from distalign.scoring.predictions import read_predictions
from distalign.scoring.score import score_predictions
from distalign.survey import load_survey
from tests.calibration.conftest import power

DATASETS = ("opinionqa", "nyt_books")


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["calibrate", *argv])
    return args.func(args)


@pytest.fixture(scope="module")
def predictions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A predictions file over the shipped sample surveys: each group's human distribution, flattened."""
    rng = np.random.default_rng(0)
    rows = []
    for name in DATASETS:
        for d in load_survey(name, data_dir="fixture").distributions:
            probs = power(np.asarray(d.probs), 2.0, rng, 0.05)
            rows.append(
                {
                    "model": "m",
                    "method": "verbalize",
                    "steering": "persona",
                    "dataset": name,
                    "item_id": d.item_id,
                    "attribute": d.attribute,
                    "group": d.group,
                    "probs": probs.tolist(),
                }
            )
    path = tmp_path_factory.mktemp("preds") / "predictions.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    return path


@pytest.mark.parametrize("method", ["temperature", "regression"])
def test_calibrate_writes_scores_and_predictions(predictions: Path, tmp_path: Path, method: str) -> None:
    out = tmp_path / "out"
    code = run(str(predictions), "--method", method, "--data-dir", "fixture", "--out", str(out), "--json",
               str(tmp_path / "rows.json"), "--n-resamples", "50")  # fmt: skip
    assert code == 0
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert {r["calibration"] for r in rows} == {"none", method}
    key = ("persona", "all")
    raw = next(r for r in rows if r["calibration"] == "none" and (r["steering"], r["dataset"]) == key)
    cal = next(r for r in rows if r["calibration"] == method and (r["steering"], r["dataset"]) == key)
    assert cal["mean"] < raw["mean"] and cal["n"] == raw["n"]
    # the calibrated predictions are a valid predictions file, and re-scoring it gives the calibrated TV
    assert not (out / "few_example_groups.csv").exists()  # Table 5: the protocol's output (10 refits a cell)
    written = read_predictions(out / "predictions_calibrated.jsonl")
    assert len(written) == raw["n"] and not set(written["split"]) & {"train", "dev"}
    surveys = {n: load_survey(n, data_dir="fixture") for n in DATASETS}
    rescored = score_predictions(written, surveys)
    by_dataset = rescored.groupby("dataset")["tv"].mean()
    for name in DATASETS:
        row = next(
            r
            for r in rows
            if r["calibration"] == method and (r["steering"], r["dataset"]) == ("persona", name)
        )
        assert by_dataset[name] == pytest.approx(row["mean"], abs=1e-6)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["calibration"] == method and metrics["calibrated_tv_mean"] < metrics["raw_tv_test_mean"]


def test_needs_exactly_one_of_method_and_model_uri(predictions: Path) -> None:
    with pytest.raises(InputError, match="exactly one of --method"):
        run(str(predictions), "--data-dir", "fixture")
    with pytest.raises(InputError, match="exactly one of --method"):
        run(str(predictions), "--method", "temperature", "--model-uri", "models:/x", "--data-dir", "fixture")


def test_bad_model_uri_is_an_input_error(predictions: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(InputError, match="--model-uri"):
        run(str(predictions), "--model-uri", str(tmp_path / "nothing-here"), "--tracking-uri", uri,
            "--data-dir", "fixture")  # fmt: skip


@pytest.mark.slow
def test_applies_a_logged_calibrator(predictions: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from distalign.calibration.stage import calibrate_items
    from distalign.records.config import CalibrationConfig
    from distalign.tracking.calibrators import log_calibrators

    surveys = {n: load_survey(n, data_dir="fixture") for n in DATASETS}
    scored = score_predictions(read_predictions(predictions), surveys)
    items = cli.items_from_scored(scored[scored["dataset"] == "nyt_books"], surveys)
    outcome = calibrate_items(items, CalibrationConfig(name="temperature", fit="in_sample"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("c", artifact_location=(tmp_path / "art").as_uri())
    model_uri = next(iter(log_calibrators(client, client.create_run(exp).info.run_id, outcome).values()))
    out = tmp_path / "out"
    assert run(str(predictions), "--model-uri", model_uri, "--tracking-uri", uri, "--data-dir", "fixture",
               "--out", str(out), "--n-resamples", "20") == 0  # fmt: skip
    written = pd.read_json(out / "predictions_calibrated.jsonl", lines=True)
    assert (written["split"] == "applied").all() and len(written) == len(scored)
    assert set(written["calibration"]) == {"temperature"}
    nyt = written[written["dataset"] == "nyt_books"].reset_index(drop=True)
    expected = outcome.items["calibrated_probs"]
    np.testing.assert_allclose(np.vstack(nyt["probs"]), np.vstack(expected), atol=1e-7)


ALL3 = ("opinionqa", "nyt_books", "global_opinions")


@pytest.fixture(scope="module")
def three_datasets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sharpened predictions on all three benchmark datasets, every 4th answer an unparseable text."""
    rng = np.random.default_rng(1)
    rows = []
    for name in ALL3:
        for k, d in enumerate(load_survey(name, data_dir="fixture").distributions):
            row = {"model": "m", "method": "verbalize", "steering": "persona", "dataset": name,
                   "item_id": d.item_id, "attribute": d.attribute, "group": d.group}  # fmt: skip
            if k % 4 == 3:
                row["response"] = "I cannot say."
            else:
                row["probs"] = power(np.asarray(d.probs), 2.0, rng, 0.05).tolist()
            rows.append(row)
    path = tmp_path_factory.mktemp("preds3") / "predictions.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    return path


def test_ood_writes_the_out_of_domain_table(
    three_datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(str(three_datasets), "--ood", "--data-dir", "fixture", "--unparsed", "exclude") == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "Out of domain" in printed and "out_of_domain.csv" in printed
    # Table 11 in the paper's layout: one row per setting, the targets side by side; no log-p, no Table 12
    wide = pd.read_csv(tmp_path / "out_of_domain_methods.csv")
    assert len(wide) == 1 and not (tmp_path / "out_of_domain_logp.csv").exists()
    # targets in the benchmark's order (OpinionQA first, as the paper's OQA column)
    assert [c for c in wide.columns if c.endswith("out-of-domain (%)")] == [
        f"{d} out-of-domain (%)" for d in ALL3
    ]
    err = captured.err
    assert re.search(r"out_of_domain_methods\.csv: The paper's WGM .* and WVS .*not public", err), err
    table = pd.read_csv(tmp_path / "out_of_domain.csv")
    records = json.loads((tmp_path / "out_of_domain.json").read_text())
    assert len(records) == len(table) == 3
    assert sorted(table["target"]) == sorted(ALL3)
    assert (
        dict(zip(table["target"], table["sources"], strict=True))["nyt_books"] == "global_opinions+opinionqa"
    )
    for col in ("alignment_raw", "alignment_in_domain", "alignment_ood", "split", "n"):
        assert col in table.columns and table[col].notna().all()
    assert table["split"].str.contains("test").all()


def test_discarded_answers_count_against_the_extraction_rate(three_datasets: Path, tmp_path: Path) -> None:
    """Under ``--unparsed exclude`` an unparseable answer leaves the means but counts in the extraction rate
    of the raw and the calibrated rows alike, and gets no calibrated distribution."""
    out = tmp_path / "out"
    rows_json = tmp_path / "rows.json"
    code = run(str(three_datasets), "--method", "regression", "--unparsed", "exclude", "--data-dir",
               "fixture", "--out", str(out), "--json", str(rows_json), "--n-resamples", "20")  # fmt: skip
    assert code == 0
    rows = json.loads((tmp_path / "rows.json").read_text())
    by = {(r["calibration"], r["steering"], r["dataset"]): r for r in rows}
    for name in (*ALL3, "three"):
        raw, cal = by[("none", "persona", name)], by[("regression", "persona", name)]
        assert raw["n"] == cal["n"] and raw["extraction_rate"] == cal["extraction_rate"]
        assert raw["split"] == cal["split"] == "test (10%)"
    assert by[("none", "persona", "three")]["extraction_rate"] < 1
    rates = pd.read_csv(out / "extraction_rates.csv").set_index("dataset")
    for name in ALL3:
        expected = np.mean(
            [k % 4 != 3 for k in range(len(load_survey(name, data_dir="fixture").distributions))]
        )
        assert rates.loc[name, "extraction_rate"] == pytest.approx(expected)
    assert not (out / "few_example_groups.csv").exists()  # Table 5: the protocol's output (10 refits a cell)
    written = read_predictions(out / "predictions_calibrated.jsonl")
    assert len(written) == sum(by[("regression", "persona", n)]["n"] for n in ALL3)


def test_learning_curves_on_request(predictions: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = run(str(predictions), "--method", "regression", "--curves", "ridge", "linear", "--data-dir",
               "fixture", "--out", str(out), "--n-resamples", "20")  # fmt: skip
    assert code == 0
    curves = pd.read_csv(out / "learning_curves.csv")
    assert set(curves["family"]) == {"ridge", "linear"} and set(curves["dataset"]) == set(DATASETS)
    assert (curves["repeats"] == 10).all() and curves["n"].max() <= 80  # capped at the training pool
    # one figure per dataset, its panels the cells (the paper's Figure 3), not one file per cell
    assert sorted(p.name for p in out.glob("learning_curves_*.png")) == [
        f"learning_curves_{d}.png" for d in sorted(DATASETS)
    ]
    with pytest.raises(InputError, match="--curves"):
        run(str(predictions), "--method", "temperature", "--curves", "all", "--out", str(out))


def _help() -> str:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices["calibrate"].format_help()


def test_help_shows_examples_and_every_default() -> None:
    text = _help()
    assert "examples:" in text and "distalign calibrate preds.jsonl --ood" in text
    blocks = re.split(r"\n(?=  -)", text.split("options:", 1)[1].split("examples:", 1)[0])
    options = [b for b in blocks if b.strip() and not b.strip().startswith("-h")]
    assert len(options) >= 13
    for block in options:
        assert "(default:" in " ".join(block.split()), block


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal(
    predictions: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = (str(predictions), "--method", "regression", "--data-dir", "fixture", "--n-resamples", "20")
    assert run(*args) == 0
    assert "calibrating" not in capsys.readouterr().err
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert run(*args) == 0
    shown = terminal.getvalue()
    assert "calibrating (regression): 2 of 2 cells done" in shown and "bootstrapping intervals" in shown
    assert "calibrating" not in capsys.readouterr().out


def test_huge_probabilities_calibrate_to_distributions(predictions: Path, tmp_path: Path) -> None:
    """Probabilities near the float maximum (their sum overflows) are still read as their distribution, so
    no temperature-scaled row comes out all zero (the log of an all-zero row has no finite entry)."""
    rows = pd.read_json(predictions, lines=True)
    rows["probs"] = [list(np.asarray(p) / max(p) * 1e308) for p in rows["probs"]]
    huge = tmp_path / "huge.jsonl"
    rows.to_json(huge, orient="records", lines=True)
    out = tmp_path / "out"
    argv = ["--method", "temperature", "--data-dir", "fixture", "--out", str(out), "--n-resamples", "20"]
    assert run(str(huge), *argv) == 0
    written = pd.read_json(out / "predictions_calibrated.jsonl", lines=True)
    np.testing.assert_allclose([sum(p) for p in written["probs"]], 1.0, atol=1e-6)


def test_piped_tables_never_cut_a_name(predictions: Path, tmp_path: Path, capsys) -> None:
    """Two long model names in a pipe (80 columns by default): both printed whole."""
    df = pd.read_json(predictions, lines=True)
    names = ("anthropic_claude_3_opus_20240229_release", "anthropic_claude_3_haiku_20240307_release")
    both = pd.concat([df.assign(model=n) for n in names], ignore_index=True)
    path = tmp_path / "two.jsonl"
    both.to_json(path, orient="records", lines=True)
    assert run(str(path), "--method", "temperature", "--data-dir", "fixture", "--out", str(tmp_path / "o"),
               "--n-resamples", "20") == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "…" not in out and all(n in out for n in names), out


def test_the_supervision_protocol_discards_unparsed_answers_and_says_so(
    three_datasets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--protocol kambhatla2025`` is regression calibration with unparseable answers discarded, and the
    calibration writes what the sweep report computes: paired tests, group effects, Figure 2."""
    out = tmp_path / "out"
    code = run(str(three_datasets), "--protocol", "kambhatla2025", "--data-dir", "fixture", "--out", str(out),
               "--n-resamples", "20")  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert re.search(r"[0-9,]+ unparseable answer row\(s\) discarded .* kambhatla2025 protocol", err), err
    rates = pd.read_csv(out / "extraction_rates.csv")
    assert (rates["extraction_rate"] < 1).any()
    table = pd.read_csv(out / "calibration_table.csv")
    assert {"alignment_raw", "alignment_calibrated", "alignment_p_bonferroni"} <= set(table.columns)
    for name in ("group_effects.csv", "spread.csv", "spread.png", "group_effects.png"):
        assert (out / name).is_file(), name
    # Table 5: per cell, the groups a calibrator trained on 5 distributions degrades most (10 draws)
    few = pd.read_csv(out / "few_example_groups.csv")
    assert len(few) == 3 * len(ALL3) and (few["n_examples"] == 5).all() and (few["draws"] == 10).all()
    for _, cell in few.groupby(["dataset"]):
        assert cell["delta_few"].is_monotonic_increasing
    # the default still fills unparsed answers with uniform distributions, and now says so
    assert (
        run(str(three_datasets), "--method", "regression", "--data-dir", "fixture", "--n-resamples", "20")
        == 0
    )
    assert "scored as uniform distributions" in capsys.readouterr().err
    with pytest.raises(InputError, match="--protocol"):
        run(str(three_datasets), "--protocol", "kambhatla2025", "--method", "temperature")
