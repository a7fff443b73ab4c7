"""Tables 6, 11 and 12 of the supervision paper in its layout: pivots of the long tables, so every number
is the long table's, in percent, in the row and column the paper puts it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from distalign.calibration.ood import ood_table
from distalign.calibration.paper_tables import logp_table, not_public_line, ood_paper_table, prompt_label
from distalign.calibration.report import ReportOptions, paper_ood_tables, sweep_tables
from distalign.calibration.stage import kambhatla_table
from tests.calibration.conftest import synthetic_items

FAST = ("linear", "ridge")


SETTINGS = (("logprobs", "kambhatla_base"), ("logprobs", "kambhatla_sd"), ("verbalize", "kambhatla_base"))


@pytest.fixture(scope="module")
def items() -> pd.DataFrame:
    """Three settings on two datasets, as a sweep's calibrated items: raw and calibrated alignment on the
    test rows (q0, q1), calibration shifting it by a known amount per setting."""
    rng = np.random.default_rng(0)
    frames = []
    for k, (dataset, (method, steering)) in enumerate((d, s) for d in ("a", "b") for s in SETTINGS):
        cell = synthetic_items(n_items=20, seed=k, dataset=dataset).assign(method=method, steering=steering)
        raw = rng.uniform(0.6, 0.8, len(cell))
        cal = raw + 0.02 * (k + 1) + rng.normal(0, 0.005, len(cell))
        split = np.where(cell["item_id"].isin(["q0", "q1"]), "test", "train")
        frames.append(
            cell.assign(
                alignment=raw,
                calibrated_alignment=cal,
                tv=1 - raw,
                calibrated_tv=1 - cal,
                split=split,
                calibration="regression",
            )  # fmt: skip
        )
    return pd.concat(frames, ignore_index=True)


def test_table6_is_the_logp_rows_of_the_calibration_table_per_dataset(items: pd.DataFrame) -> None:
    long = kambhatla_table(items)
    table = logp_table(long).set_index(["model", "prompt"])
    assert sorted(table.index) == [("m", "Base"), ("m", "SD")]
    for r in long[long["method"] == "logprobs"].itertuples():
        row = table.loc[("m", prompt_label(r.steering))]
        assert row[f"{r.dataset} raw (%)"] == pytest.approx(100 * r.alignment_raw, abs=0.05)
        assert row[f"{r.dataset} calibrated (%)"] == pytest.approx(100 * r.alignment_calibrated, abs=0.05)
        assert row[f"{r.dataset} sig."] == r.alignment_mark and row[f"{r.dataset} n"] == r.n
    assert logp_table(long[long["method"] != "logprobs"]).empty


def test_tables_11_and_12_split_the_out_of_domain_table_by_method(items: pd.DataFrame) -> None:
    ood = ood_table(items, candidates=FAST)
    tables = paper_ood_tables(ood)
    methods = tables["out_of_domain_methods"].set_index(["model", "method", "prompt"])
    logp = tables["out_of_domain_logp"].set_index(["model", "prompt"])
    assert set(methods.index.get_level_values("method")) == {"verbalize"} and len(methods) == 1
    assert len(logp) == 2
    for r in ood.itertuples():
        row = (
            logp.loc[("m", prompt_label(r.steering))]
            if r.method == "logprobs"
            else methods.loc[("m", r.method, prompt_label(r.steering))]
        )
        for col, value in (("raw", r.alignment_raw), ("in-domain", r.alignment_in_domain),
                           ("out-of-domain", r.alignment_ood)):  # fmt: skip
            assert row[f"{r.target} {col} (%)"] == pytest.approx(100 * value, abs=0.05)
    assert ood_paper_table(ood[ood["method"] == "verbalize"], logp=True).empty


def test_the_sweep_tables_hold_table6_and_with_ood_tables_11_and_12(items: pd.DataFrame) -> None:
    opts = ReportOptions(candidates=FAST, curves=False, few_examples=False, ood=True)
    tables = sweep_tables(items, options=opts)
    assert {"logp_alignment", "out_of_domain", "out_of_domain_methods", "out_of_domain_logp"} <= set(tables)
    assert "few_example_groups" not in tables and "learning_curves" not in tables


def test_table5_comes_without_the_learning_curves(items: pd.DataFrame) -> None:
    cell = items[
        (items["method"] == "logprobs") & (items["steering"] == "kambhatla_base") & (items["dataset"] == "a")
    ]
    tables = sweep_tables(cell, options=ReportOptions(candidates=FAST, curves=False, curve_repeats=2))
    few = tables["few_example_groups"]
    assert "learning_curves" not in tables and len(few) == 3  # the 3 most degraded groups of the cell
    assert (few["n_examples"] == 5).all() and (few["draws"] == 2).all()
    assert few["delta_few"].is_monotonic_increasing


def test_prompt_labels_and_the_not_public_line() -> None:
    assert [prompt_label(s) for s in ("kambhatla_base", "kambhatla_sd_cot", "kambhatla_sd_few_shot")] == [
        "Base", "SD + CoT", "SD + few-shot"
    ]  # fmt: skip
    line = not_public_line(["opinionqa", "nyt_books"])
    assert line is not None and "WGM" in line and "WVS" in line and "\n" not in line
    assert "WGM" not in (not_public_line(["wgm"]) or "") and not_public_line(["WGM", "wvs"]) is None
