"""Table 4: the elicitation methods compared on the same test distributions, ANOVA first, then paired
t-tests; and the sweep report's optional out-of-domain table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from distalign.calibration.compare import method_comparison, triple_comparison
from distalign.calibration.report import ReportOptions, sweep_tables
from distalign.calibration.stage import calibrate_items
from distalign.metrics.significance import repeated_measures_anova
from distalign.records.config import CalibrationConfig
from tests.calibration.conftest import power, synthetic_items

REGRESSION = CalibrationConfig(name="regression", params={"candidates": ["linear", "ridge"]})
#: how far each method's answers are from the humans': paraphrase clearly worst
SHARPNESS = {"verbalize": 1.3, "self_random": 1.35, "paraphrase": 3.0}


def _cells(methods: dict[str, float], datasets: str = "a") -> pd.DataFrame:
    parts = []
    for d in datasets:
        for method, t in methods.items():
            items = synthetic_items(n_items=60, distort=lambda h, r, t=t: power(h, t, r, 0.05), dataset=d)
            out = calibrate_items(items.assign(method=method), REGRESSION)
            parts.append(out.items.assign(calibration="regression"))
    return pd.concat(parts, ignore_index=True)


def test_three_methods_are_compared_by_a_repeated_measures_anova_then_paired_tests() -> None:
    items = _cells(SHARPNESS)
    anova, pairs = method_comparison(items)
    assert anova["stage"].tolist() == ["raw", "calibrated"]
    raw = anova.set_index("stage").loc["raw"]
    assert raw["conditions"] == "paraphrase | self_random | verbalize" and raw["anova_significant"]
    test = items[items["split"] == "test"]
    assert raw["n"] == len(test) // 3  # one subject per test distribution, scored by every method
    # the ANOVA is the repeated-measures one over the same test distributions
    wide = test.pivot_table(index=["item_id", "group"], columns="method", values="alignment")
    assert raw["F"] == pytest.approx(repeated_measures_anova({m: wide[m] for m in wide.columns}).f)
    raw_pairs = pairs[pairs["stage"] == "raw"].set_index(["a", "b"])
    assert raw_pairs.loc[("paraphrase", "verbalize"), "significant"]
    assert raw_pairs.loc[("paraphrase", "self_random"), "significant"]
    np.testing.assert_allclose(pairs["p_bonferroni"], np.minimum(pairs["p"] * len(pairs), 1.0))


def test_two_methods_are_no_anova_family() -> None:
    anova, pairs = method_comparison(_cells({"verbalize": 1.3, "paraphrase": 3.0}))
    assert anova.empty and pairs.empty


def test_the_sweep_tables_add_method_tests_and_on_request_the_out_of_domain_table() -> None:
    items = _cells(SHARPNESS, datasets="ab")
    quick = ReportOptions(candidates=("linear", "ridge"), curve_sizes=(5, 50), curve_repeats=2)
    tables = sweep_tables(items, options=quick)
    assert {
        "calibration_table",
        "extraction_rates",
        "method_anova",
        "method_pairs",
        "learning_curves",
    } <= set(tables)
    assert "out_of_domain" not in tables
    assert len(tables["learning_curves"].groupby(["model", "dataset", "method", "steering"])) == 6
    cfg = CalibrationConfig(name="regression", params={"candidates": ["linear", "ridge"]}, ood=True)
    assert ReportOptions.from_config(cfg).ood
    with_ood = sweep_tables(
        items,
        options=ReportOptions(candidates=("linear", "ridge"), curve_sizes=(5,), curve_repeats=1, ood=True),
    )
    ood = with_ood["out_of_domain"]
    assert len(ood) == 6  # 3 methods x 2 targets
    assert set(ood["target"]) == {"a", "b"} and set(ood["sources"]) == {"a", "b"}


def _steered(steering: dict[str, float]) -> pd.DataFrame:
    """One elicitation method under several prompt variations (steering -> sharpness), each calibrated."""
    parts = []
    for name, t in steering.items():
        items = synthetic_items(n_items=60, distort=lambda h, r, t=t: power(h, t, r, 0.05))
        out = calibrate_items(items.assign(steering=name), REGRESSION)
        parts.append(out.items.assign(calibration="regression"))
    return pd.concat(parts, ignore_index=True)


def test_tables_2_and_4_test_each_triple_on_its_own() -> None:
    """Original, CoT or few-shot, calibrated for one method: an ANOVA per triple, then its three paired
    tests corrected within the triple only."""
    items = _steered({"sd": 3.0, "sd_cot": 2.6, "sd_few_shot": 1.0, "base": 2.0})
    anova, pairs = triple_comparison(items)
    assert sorted(anova["variant"]) == ["CoT", "few-shot"] and set(anova["steering"]) == {"sd"}
    assert (anova["conditions"] == anova["variant"].map(lambda v: f"original | {v} | calibrated")).all()
    test = items[(items["steering"] == "sd") & (items["split"] == "test")]
    assert (anova["n"] == len(test)).all()  # every test distribution of the original, in both triples
    assert len(pairs) == 6
    for _, triple in pairs.groupby("variant"):
        np.testing.assert_allclose(triple["p_bonferroni"], np.minimum(triple["p"] * 3, 1.0))
    few = pairs[pairs["variant"] == "few-shot"].set_index(["a", "b"])
    assert few.loc[("original", "few-shot"), "significant"]  # sharpness 3 -> 1 moves alignment
    cot = pairs[pairs["variant"] == "CoT"].set_index(["a", "b"])
    assert cot.loc[("original", "calibrated"), "significant"]
    wide = test.set_index(["item_id", "attribute", "group"])
    assert cot.loc[("original", "calibrated"), "mean_a"] == pytest.approx(wide["alignment"].mean())
    tables = sweep_tables(
        items, options=ReportOptions(candidates=("linear",), curve_sizes=(5,), curve_repeats=1)
    )
    assert {"triple_anova", "triple_pairs"} <= set(tables)
