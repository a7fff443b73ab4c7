"""Learning curves, out-of-domain transfer, per-group effects and the paper table on synthetic data whose
answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from distalign.calibration.curves import SIZES, capped_sizes, learning_curve
from distalign.calibration.groups import gains_and_losses, group_effects
from distalign.calibration.ood import ood_table
from distalign.calibration.report import sweep_tables
from distalign.calibration.stage import calibrate_items, kambhatla_table
from distalign.calibration.summary import setting_spread
from distalign.errors import InputError
from distalign.records.config import CalibrationConfig
from tests.calibration.conftest import power, synthetic_items

FAST = ("linear", "ridge")


def test_capped_sizes() -> None:
    assert capped_sizes((1, 5, 10, 50, 1200), 40) == [1, 5, 10, 40]
    assert capped_sizes((1, 5), 40) == [1, 5]
    assert capped_sizes(SIZES, 1500) == [1, 5, 10, 50, 100, 200, 500, 1000, 1200]


def test_more_training_data_lowers_test_mse() -> None:
    items = synthetic_items(n_items=80, distort=lambda h, r: power(h, 2.5, r, 0.3))
    curve = learning_curve(items, sizes=(1, 5, 1200), repeats=5, candidates=FAST)
    assert curve["n"].tolist() == [1, 5, int(curve["n"].iloc[-1])]
    assert curve["n"].iloc[-1] == 64 * 3  # all training distributions: 64 train questions x 3 groups
    mse = curve["mse_mean"].to_numpy()
    assert mse[-1] < mse[0]
    assert mse[-1] < curve["raw_mse"].iloc[0]
    assert curve["mse_std"].iloc[0] > curve["mse_std"].iloc[-1]  # one distribution is a noisy teacher
    assert curve["alignment_mean"].iloc[-1] > curve["raw_alignment"].iloc[0]
    with pytest.raises(InputError, match="repeats"):
        learning_curve(items, repeats=0)


def test_learning_curve_as_published_for_the_chosen_family_and_on_request_for_all_four() -> None:
    """n in {1, 5, 10, 50, 100, 200, 500, 1000, 1200} capped at the training pool, 10 draws each; by default
    the family the dev split chose for the cell's calibrator, every family on request."""
    items = synthetic_items(n_items=80, distort=lambda h, r: power(h, 2.5, r, 0.3))
    cfg = CalibrationConfig(name="regression", params={"candidates": list(FAST)})
    chosen = calibrate_items(items, cfg).params["chosen_regressor"]
    curve = learning_curve(items, candidates=FAST)
    assert curve["family"].unique().tolist() == [chosen] and curve["chosen"].all()
    assert curve["n"].tolist() == [1, 5, 10, 50, 100, 192]  # 1200 capped at the 64 x 3 training pool
    assert (curve["repeats"] == 10).all() and (curve["fitted"] == 10).all()
    assert set(curve["split"]) == {"test (10%)"}
    everything = learning_curve(items, sizes=(5, 50), repeats=3, candidates=FAST, families="all")
    assert everything["family"].tolist() == [
        f for f in ("linear", "lasso", "ridge", "random_forest") for _ in "ab"
    ]
    assert everything.groupby("family")["chosen"].first().to_dict() == {
        f: f == chosen for f in ("linear", "lasso", "ridge", "random_forest")
    }
    # families differ; the chosen one's numbers are the default curve's (same draws, same fits)
    assert everything.groupby("family")["mse_mean"].first().nunique() == 4
    default = learning_curve(items, sizes=(5, 50), repeats=3, candidates=FAST)
    mine = everything[everything["family"] == chosen].reset_index(drop=True)
    np.testing.assert_allclose(mine["mse_mean"], default["mse_mean"])
    with pytest.raises(InputError, match="curve family"):
        learning_curve(items, families=["svm"])


def test_out_of_domain_transfers_a_shared_distortion_and_not_an_opposite_one() -> None:
    same = lambda h, r: power(h, 2.5, r, 0.05)  # noqa: E731
    frames = [synthetic_items(n_items=30, distort=same, seed=i, dataset=d) for i, d in enumerate("abc")]
    table = ood_table(pd.concat(frames), candidates=FAST)
    assert table["target"].tolist() == ["a", "b", "c"]
    assert table["sources"].tolist() == ["b+c", "a+c", "a+b"]
    assert (table["tv_ood"] < table["tv_raw"]).all()
    assert (table["mse_ood"] < table["mse_raw"]).all()
    # sources flattened, target sharpened: the sharpening learnt on the sources makes the target worse
    frames[2] = synthetic_items(n_items=30, distort=lambda h, r: power(h, 0.4, r, 0.05), seed=2, dataset="c")
    table = ood_table(pd.concat(frames), candidates=FAST).set_index("target")
    assert table.loc["c", "tv_ood"] > table.loc["c", "tv_raw"]
    assert table.loc["c", "tv_in_domain"] < table.loc["c", "tv_raw"]
    with pytest.raises(InputError, match="at least 2 datasets"):
        ood_table(frames[0])


def test_out_of_domain_scores_raw_in_domain_and_ood_on_the_in_domain_test_rows() -> None:
    """The target's rows are its in-domain cell's test split: raw and in-domain numbers are exactly those
    of ``calibrate_items`` on that cell alone."""
    frames = [synthetic_items(n_items=30, seed=i, dataset=d) for i, d in enumerate("abc")]
    table = ood_table(pd.concat(frames), seed=3, candidates=FAST).set_index("target")
    cfg = CalibrationConfig(name="regression", params={"candidates": list(FAST)})
    for frame in frames:
        out = calibrate_items(frame, cfg, seed=3)
        test = out.items[out.items["split"] == "test"]
        row = table.loc[frame["dataset"].iloc[0]]
        assert row["n"] == len(test) and row["split"].endswith("test (10%)")
        assert row["alignment_raw"] == pytest.approx(test["alignment"].mean())
        assert row["alignment_in_domain"] == pytest.approx(test["calibrated_alignment"].mean())
        assert row["alignment_in_domain"] == pytest.approx(out.metrics["calibrated_alignment_mean"])
        assert row["train_size_ood"] == sum(
            (calibrate_items(f, cfg, seed=3).items["split"] == "train").sum()
            for f in frames
            if f is not frame
        )


def _calibrated(shift: dict[str, float], n: int = 40, seed: int = 0) -> pd.DataFrame:
    """Evaluation rows whose calibrated alignment is the raw one plus a per-group shift (and noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for group, delta in shift.items():
        before = rng.uniform(0.6, 0.9, n)
        after = before + delta + rng.normal(0, 0.01, n)
        for i in range(n):
            rows.append(
                {
                    "dataset": "d",
                    "item_id": f"q{i}",
                    "model": "m",
                    "method": "verbalize",
                    "steering": group,
                    "attribute": "A",
                    "group": group,
                    "alignment": before[i],
                    "calibrated_alignment": after[i],
                    "tv": 1 - before[i],
                    "calibrated_tv": 1 - after[i],
                    "split": "test",
                }
            )
    rows.append({**rows[0], "calibrated_alignment": 99.0, "split": "train"})  # never evaluated
    return pd.DataFrame(rows)


def test_group_effects_find_the_winners_and_losers() -> None:
    effects = group_effects(_calibrated({"up": 0.1, "flat": 0.0, "down": -0.05}))
    assert effects["group"].tolist() == ["up", "flat", "down"]
    sig = dict(zip(effects["group"], effects["significant"], strict=True))
    assert sig == {"up": True, "flat": False, "down": True}
    assert effects.loc[0, "delta"] == pytest.approx(0.1, abs=0.01)
    assert (effects["n"] == 40).all()
    gains, losses = gains_and_losses(effects, k=1)
    assert gains["group"].tolist() == ["up"] and losses["group"].tolist() == ["down"]


def test_kambhatla_table_marks_significant_rows() -> None:
    table = kambhatla_table(_calibrated({"up": 0.1, "flat": 0.0})).set_index("steering")
    assert table.loc["up", "alignment_mark"] == "*" and table.loc["flat", "alignment_mark"] == ""
    assert table.loc["up", "tv_mark"] == "*"
    assert table.loc["up", "alignment_calibrated"] == pytest.approx(
        table.loc["up", "alignment_raw"] + 0.1, abs=0.01
    )
    assert (table["n"] == 40).all()  # the train row is not evaluated
    with pytest.raises(InputError, match="split"):
        kambhatla_table(_calibrated({"up": 0.1}).drop(columns="split"))


def test_setting_spread_is_mean_and_std_over_evaluated_rows() -> None:
    items = _calibrated({"up": 0.1, "flat": 0.0})
    spread = setting_spread(items).set_index("steering")
    ev = items[items["split"] == "test"]
    up = ev[ev["steering"] == "up"]
    assert spread.loc["up", "n"] == 40  # the train row is not evaluated
    assert spread.loc["up", "mean_raw"] == pytest.approx(up["alignment"].mean())
    assert spread.loc["up", "std_calibrated"] == pytest.approx(up["calibrated_alignment"].std(ddof=1))
    assert spread.loc["up", "mean_calibrated"] > spread.loc["up", "mean_raw"] + 0.09
    with pytest.raises(InputError, match="calibrated_alignment"):
        setting_spread(items.drop(columns="calibrated_alignment"))


def test_sweep_tables_without_regression_cells_have_no_learning_curves() -> None:
    items = _calibrated({"up": 0.1, "flat": 0.0}).assign(calibration="temperature")
    tables = sweep_tables(items)
    assert {"calibration_table", "spread", "group_effects"} <= set(tables)
    assert "learning_curves" not in tables
