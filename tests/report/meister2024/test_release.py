"""Importing the release's results/ tree: every answer becomes one predictions row, with the options as
the prompts showed them (checked against the targets the release stored with each answer)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distalign.errors import InputError
from distalign.report.meister2024.predictions_file import write_predictions
from distalign.report.meister2024.release import DATASET_DIRS, METHODS, import_release
from distalign.scoring.predictions import read_predictions


def test_row_counts_match_the_release_files(release_dir: Path, imported: pd.DataFrame) -> None:
    expected: Counter = Counter()
    for ds, dataset in DATASET_DIRS.items():
        for output, method in METHODS.items():
            for path in (release_dir / "results" / ds / output).glob("*/*/**/*.json"):
                model = path.relative_to(release_dir / "results" / ds / output).parts[0]
                expected[(model, method, dataset)] += len(json.loads(path.read_text()))
    got = Counter(imported.groupby(["model", "method", "dataset"]).size().to_dict())
    assert got == expected
    assert len(imported) == 76_040
    assert set(imported["model"]) == {
        "gpt-4",
        "gpt-3.5-turbo-0125",
        "llama3-70b",
        "anthropic_opus",
        "anthropic_haiku",
    }
    assert got[("gpt-4", "seq", "nyt_books")] == 235 + 2 * 940
    assert got[("anthropic_opus", "logprobs", "opinionqa")] == 0  # the release has no Claude log-probs


def test_rows_are_kept_as_released(imported: pd.DataFrame) -> None:
    steering = Counter(imported["steering"])
    assert set(steering) == {"none", "persona", "few_shot", "few_shot_v1", "few_shot_v2", "persona_rerun"}
    assert steering["few_shot_v1"] == steering["few_shot_v2"] == 300  # llama3-70b GlobalOpinionQA re-runs
    # GPT-3.5's shifted GlobalOpinionQA persona files ask some countries twice: the later answer is a re-run
    rerun = imported[imported["steering"] == "persona_rerun"]
    assert set(rerun["model"]) == {"gpt-3.5-turbo-0125"} and set(rerun["dataset"]) == {"global_opinions"}
    keys = ["model", "method", "steering", "dataset", "item_id", "attribute", "group"]
    assert not imported.duplicated(keys).any()  # one prediction per pair: ``distalign score`` takes the file
    none = imported[imported["steering"] == "none"]
    assert none["group"].isna().all() and none["attribute"].isna().all()
    # groups the benchmark does not evaluate, and log-p rows without mass on any option letter
    assert {"CREGION", "EDUCATION", "INCOME"} <= set(imported["attribute"].dropna())
    logp = imported[imported["method"] == "logprobs"]["probs"]
    assert sum(1 for p in logp if len(p) and np.nansum(p) == 0) >= 10
    scaled = imported[imported["method"] == "logprobs+temperature"]["probs"]
    assert any(len(p) and np.isnan(p).all() for p in scaled)
    text = imported[imported["method"].isin(["verbalize", "seq"])]
    assert text["probs"].isna().all() and all(isinstance(r, list) and r for r in text["response"])


def test_options_as_shown_align_the_release_targets_with_the_human_distributions(
    release_dir: Path, release_surveys: dict
) -> None:
    """With ``options``, the letters of each stored target land on the loader's human distribution: the
    option order of the prompts is recovered."""
    df = import_release(release_dir)
    checked = 0
    for source, rows in df[df["steering"].isin(["persona", "few_shot"]) & df["options"].notna()].groupby(
        "source"
    ):
        stored = json.loads((release_dir / source).read_text())
        for r in rows.itertuples():
            survey = release_surveys[r.dataset]
            dist = next((d for d in survey.for_item(r.item_id) if d.group == r.group), None)
            if dist is None:
                continue
            target = list(stored[r.item_id]["expected_results"].values())
            item = survey.items[r.item_id]
            aligned = np.zeros(item.n_options)
            aligned[[item.option_index(o) for o in r.options]] = target
            np.testing.assert_allclose(aligned / aligned.sum(), dist.probs, atol=1e-9, err_msg=source)
            checked += 1
    assert checked > 40_000


def test_globalopinionqa_rows_name_the_country_of_their_target(
    imported: pd.DataFrame, release_dir: Path
) -> None:
    data = json.loads((release_dir / "Global_Values/data/data.json").read_text())
    shifted = imported[
        (imported["source"] == "results/globalvalues/sequence/gpt-3.5-turbo-0125/task1/globalvalues/0.json")
    ]
    assert len(shifted) == 100
    # this run's slot 0 holds the second country's targets; every other file holds its own slot's country
    assert all(r.group == data[r.item_id]["countries"][1] for r in shifted.itertuples())
    usual = imported[imported["source"] == "results/globalvalues/sequence/gpt-4/task1/globalvalues/0.json"]
    assert all(r.group == data[r.item_id]["countries"][0] for r in usual.itertuples())


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_written_file_reads_back(imported: pd.DataFrame, tmp_path: Path, suffix: str) -> None:
    sample = pd.concat(
        [
            imported[imported["method"] == m].head(50)
            for m in ("verbalize", "seq", "logprobs", "logprobs+temperature")
        ]
        + [
            imported[
                imported["probs"].map(lambda p: p is not None and len(p) > 0 and np.isnan(p).all())
            ].head(2)
        ]
    ).reset_index(drop=True)
    path = write_predictions(sample.drop(columns=["release_tv", "release_mass"]), tmp_path / f"p{suffix}")
    back = read_predictions(path)
    assert len(back) == len(sample)
    for got, want in zip(back.to_dict("records"), sample.to_dict("records"), strict=True):
        for column in ("model", "method", "steering", "dataset", "item_id"):
            assert got[column] == want[column]
        probs = got.get("probs")
        if want["probs"] is not None:
            probs = json.loads(probs) if isinstance(probs, str) else list(probs)
            np.testing.assert_array_equal(np.asarray(probs, float), np.asarray(want["probs"], float))
        options = got.get("options")
        if want["options"] is not None:
            assert list(json.loads(options) if isinstance(options, str) else options) == want["options"]


def test_missing_results_folder_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="distalign data download meister2024"):
        import_release(tmp_path)


def test_notebook_ece_bins_span_the_observed_range() -> None:
    """The notebook's bins run from the smallest to the largest model probability: a model that is off by
    the same 0.1 everywhere has ECE 0.1 whichever bins are used."""
    from distalign.report.meister2024.ece import notebook_ece

    output = np.linspace(0.2, 0.6, 50)
    assert notebook_ece(output + 0.1, output) == pytest.approx(0.1)
    assert notebook_ece(output + 0.1, output, unit=True) == pytest.approx(0.1)
    assert notebook_ece(output, output) == pytest.approx(0.0)


@pytest.mark.parametrize(
    "model,method,party", [("gpt-4", "verbalize", "Democrat"), ("gpt-3.5-turbo-0125", "seq", "Republican")]
)
def test_no_steering_difference_is_the_mc_order_lettering(
    release_dir: Path, model: str, method: str, party: str
) -> None:
    """The release's OpinionQA task0 TVs are reproduced by lettering the targets in MC_options order, not
    by the stored (alphabetical) targets the project scores against."""
    from distalign.report.meister2024.no_steering import check

    c = check(release_dir, model, method, party)
    assert c.n == 100
    assert c.mc_order_matches >= 0.8 * c.n > c.stored_matches
    assert abs(c.mc_order_mean - c.release_mean) < 0.01 < abs(c.stored_mean - c.release_mean)
