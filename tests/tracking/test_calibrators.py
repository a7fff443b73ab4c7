from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distalign.calibration.stage import calibrate_items
from distalign.records.config import CalibrationConfig
from distalign.tracking.calibrators import eval_tv, load_calibrator, log_calibrators, safe_name
from tests.calibration.conftest import synthetic_items


def test_safe_name() -> None:
    assert safe_name("gpt-4o/logprobs/nyt books/few_shot") == "gpt-4o-logprobs-nyt-books-few_shot"


@pytest.mark.slow
def test_logged_calibrators_reproduce_their_scores(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("calibration", artifact_location=(tmp_path / "artifacts").as_uri())
    items = synthetic_items(n_items=30)
    outcomes = {
        "regression": calibrate_items(
            items, CalibrationConfig(name="regression", params={"candidates": ["ridge"]})
        ),
        "temperature": calibrate_items(items, CalibrationConfig(name="temperature")),
    }
    for name, outcome in outcomes.items():
        run = client.create_run(exp)
        uris = log_calibrators(client, run.info.run_id, outcome)
        assert set(uris) == set(outcome.records)
        logged = client.get_run(run.info.run_id).data
        for key, model_uri in uris.items():
            record = outcome.records[key]
            prefix = safe_name(key)
            loaded = load_calibrator(model_uri, uri)
            score = eval_tv(loaded, record.X_eval, record.human_eval)
            assert score == logged.metrics[f"{prefix}.eval_tv_mean"]  # exactly
            assert logged.params[f"{prefix}.train_size"] == str(record.train_size)
            np.testing.assert_array_equal(
                loaded.predict_proba(record.X_eval), record.model.predict_proba(record.X_eval)
            )
        if name == "regression":
            assert logged.metrics[f"{prefix}.dev_score"] == outcome.metrics["dev_score"]
            assert (
                record.eval_rows == "test" and len(record.X_eval) == (outcome.items["split"] == "test").sum()
            )
