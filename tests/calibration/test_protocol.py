"""The supervision paper's protocol: discarded answers (not replaced), extraction rates (Table 17), and raw
vs calibrated numbers always on the same test questions, each table naming its split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distalign.calibration.extraction import extraction_table
from distalign.calibration.report import ReportOptions, leaderboard_items, sweep_tables
from distalign.calibration.stage import calibrate_items, kambhatla_table
from distalign.records.config import CalibrationConfig
from distalign.report.leaderboard import leaderboard
from tests.calibration.conftest import power, synthetic_items

REPO = Path(__file__).resolve().parents[2]
FAST = ["linear", "ridge"]
REGRESSION = CalibrationConfig(name="regression", params={"candidates": FAST})


def test_the_kambhatla2025_preset_discards_unparsed_answers() -> None:
    from hydra import compose, initialize_config_dir

    from distalign.engines.registry import register_configs
    from distalign.records.config import to_cell

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cell = to_cell(compose(config_name="config", overrides=["experiment=kambhatla2025"]))
    assert cell.sweep.unparsed == "exclude"
    assert cell.calibration.name == "regression" and cell.calibration.ood is False


def _with_discarded(items: pd.DataFrame, every: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """Items where the answers of one group on every ``every``-th question were discarded (as the scorer
    leaves them under ``exclude``: no distribution, no score); the questions stay (other groups)."""
    drop = (items["group"] == "Democrat").to_numpy() & (items["item_id"].str[1:].astype(int) % every == 0)
    out = items.copy()
    out["status"] = np.where(drop, "unparsed", "ok")
    out["pred_probs"] = [None if d else p for d, p in zip(drop, out["pred_probs"], strict=True)]
    return out, drop


@pytest.mark.parametrize(
    "cfg", [REGRESSION, CalibrationConfig(name="temperature")], ids=["regression", "temperature"]
)
def test_a_discarded_answer_is_as_if_absent(cfg: CalibrationConfig) -> None:
    """Fitting and evaluation ignore discarded rows: the kept rows are calibrated exactly as when the
    discarded rows are not in the table at all, and every count and mean leaves them out."""
    items, drop = _with_discarded(synthetic_items(n_items=60))
    out = calibrate_items(items, cfg, seed=1)
    alone = calibrate_items(items[~drop].reset_index(drop=True), cfg, seed=1)
    cal = out.items
    assert (
        cal.loc[drop, "calibrated_probs"].isna().all() and cal.loc[drop, "calibrated_alignment"].isna().all()
    )
    np.testing.assert_allclose(
        np.vstack(cal.loc[~drop, "calibrated_probs"]), np.vstack(alone.items["calibrated_probs"]), atol=1e-12
    )
    assert (cal.loc[~drop, "split"].to_numpy() == alone.items["split"].to_numpy()).all()
    for key in ("calibrated_alignment_mean", "raw_alignment_test_mean", "eval_size", "train_size"):
        assert out.metrics[key] == pytest.approx(alone.metrics[key]), key
    # the paper table counts the pairs it compares, not the discarded rows
    table = kambhatla_table(
        cal.assign(calibration=cfg.name, alignment=np.where(drop, np.nan, cal["alignment"]))
    )
    assert table["n"].iloc[0] == out.metrics["eval_size"]


def test_extraction_rate_per_setting_counts_answers_once() -> None:
    """A base prompt is one answer scored against every group; an SD prompt one answer per group."""
    rows = []
    for steering in ("base", "sd"):
        for i in range(10):
            for g in ("Democrat", "Republican", "Female"):
                failed = (i < 3) if steering == "base" else (i < 2 and g == "Female")
                rows.append(
                    {
                        "model": "m",
                        "dataset": "d",
                        "method": "verbalize",
                        "steering": steering,
                        "item_id": f"q{i}",
                        "attribute": "A",
                        "group": g,
                        "prompt_hash": f"{steering}{i}" + ("" if steering == "base" else g),
                        "status": "unparsed" if failed else "ok",
                    }
                )
    table = extraction_table(pd.DataFrame(rows)).set_index("steering")
    assert table.loc["base", "answers"] == 10 and table.loc["base", "extraction_rate"] == pytest.approx(0.7)
    assert table.loc["sd", "answers"] == 30 and table.loc["sd", "extraction_rate"] == pytest.approx(28 / 30)
    assert table["model"].tolist() == ["m", "m"] and table["dataset"].tolist() == ["d", "d"]


def _sweep_items() -> pd.DataFrame:
    """Two calibrated cells as a sweep concatenates them (regression and temperature), some answers
    discarded."""
    items, _ = _with_discarded(
        synthetic_items(n_items=60, distort=lambda h, r: power(h, 2.0, r, 0.1)), every=2
    )
    parts = []
    for cfg in (REGRESSION, CalibrationConfig(name="temperature")):
        out = calibrate_items(items, cfg)
        parts.append(out.items.assign(calibration=cfg.name))
    return pd.concat(parts, ignore_index=True)


def test_every_calibration_table_names_its_split_and_compares_the_same_rows() -> None:
    items = _sweep_items()
    quick = ReportOptions(candidates=tuple(FAST), curve_sizes=(5, 50), curve_repeats=2)
    tables = sweep_tables(items, options=quick)
    cal = tables["calibration_table"].set_index("calibration")
    assert cal.loc["regression", "split"] == "test (10%)"
    assert cal.loc["temperature", "split"] == "held-out folds (100%)"
    reg = items[(items["calibration"] == "regression") & (items["split"] == "test")]
    reg = reg[reg["pred_probs"].notna()]
    assert cal.loc["regression", "n"] == len(reg)
    assert cal.loc["regression", "alignment_raw"] == pytest.approx(reg["alignment"].mean())
    assert cal.loc["regression", "alignment_calibrated"] == pytest.approx(reg["calibrated_alignment"].mean())
    rates = tables["extraction_rates"]
    assert rates["extraction_rate"].iloc[0] == pytest.approx(1 - 30 / 180)  # 30 of 60 x 3 discarded
    effects = tables["group_effects"].groupby("calibration")["split"].unique()
    assert effects.map(list).to_dict() == {
        "regression": ["test (10%)"],
        "temperature": ["held-out folds (100%)"],
    }
    assert set(tables["learning_curves"]["split"]) == {"test (10%)"}


def test_the_leaderboard_compares_raw_and_regression_on_the_same_test_rows() -> None:
    items = _sweep_items()
    board = leaderboard_items(items)
    methods = set(board["method"])
    assert {"logprobs", "logprobs@test", "logprobs+regression@test", "logprobs+temperature"} <= methods
    key = ["item_id", "attribute", "group"]
    raw_test = board[board["method"] == "logprobs@test"]
    cal_test = board[board["method"] == "logprobs+regression@test"]
    assert set(raw_test["split"]) == set(cal_test["split"]) == {"test"}
    assert sorted(map(tuple, raw_test[key].to_numpy())) == sorted(map(tuple, cal_test[key].to_numpy()))
    assert len(board[board["method"] == "logprobs"]) == 180  # raw on every row, once (not per calibration)
    rows = leaderboard(board.assign(row=np.arange(len(board))), ["synth"], n_resamples=20)
    by = {r["method"]: r for r in rows if r["steering"] == "persona" and r["dataset"] == "synth"}
    assert by["logprobs@test"]["n"] == by["logprobs+regression@test"]["n"] < by["logprobs"]["n"]
    test = items[(items["calibration"] == "regression") & (items["split"] == "test")]
    rate = (test["status"] == "ok").mean()
    assert by["logprobs@test"]["extraction_rate"] == by["logprobs+regression@test"]["extraction_rate"] == rate
    assert rate < 1  # discarded answers of the test rows count against the rate
    assert by["logprobs@test"]["mean"] == pytest.approx(test["tv"].mean())
