from __future__ import annotations

import argparse
import json
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
    written = read_predictions(out / "predictions_calibrated.jsonl")
    assert len(written) == raw["n"] and not set(written["split"]) & {"train", "dev"}
    surveys = {n: load_survey(n, data_dir="fixture") for n in DATASETS}
    rescored = score_predictions(written, surveys)
    by_dataset = rescored.groupby("dataset")["tv"].mean()
    for name in DATASETS:
        row = next(
            r for r in rows if r["calibration"] == method and (r["steering"], r["dataset"]) == ("all", name)
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

    from distalign.calibration import calibrate_items
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
