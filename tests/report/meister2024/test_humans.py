"""The human-annotator study read from the survey tool's exports, scored like any predictions."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distalign.errors import InputError
from distalign.report.meister2024.humans import ANNOTATIONS, derived_human_tvs, human_predictions
from distalign.scoring.score import score_predictions


@pytest.fixture(scope="module")
def humans(release_dir: Path) -> pd.DataFrame:
    return human_predictions(release_dir)


def test_every_item_and_group_gets_an_estimate_of_up_to_four_annotators(humans: pd.DataFrame) -> None:
    counts = humans.fillna({"group": "-"}).groupby(["dataset", "steering", "group"]).size()
    assert counts[("opinionqa", "none", "-")] == 100 and counts[("nyt_books", "none", "-")] == 235
    for group in ("Democrat", "Republican", "Male", "Female", "Black", "White"):
        assert counts[("opinionqa", "persona", group)] == counts[("opinionqa", "few_shot", group)] == 100
    for group in ("Democrat", "Republican", "Male", "Female"):
        assert counts[("nyt_books", "persona", group)] == counts[("nyt_books", "few_shot", group)] == 235
    assert humans["n_annotators"].between(3, 4).all()
    assert all(len(p) == len(o) for p, o in zip(humans["probs"], humans["options"], strict=True))


def test_nyt_scores_equal_the_authors_derived_tvs(
    humans: pd.DataFrame, release_surveys: dict, release_dir
) -> None:
    """NYT has four Likert options for every group, so the authors' pipeline has nothing to misalign there:
    the pair TVs must be the ones they derived, for each steering mode."""
    nyt = humans[humans["dataset"] == "nyt_books"]
    scored = score_predictions(nyt, {"nyt_books": release_surveys["nyt_books"]})
    derived = derived_human_tvs(release_dir)
    for steering in ("none", "persona", "few_shot"):
        ours = np.sort(scored[scored["steering"] == steering]["tv"].to_numpy())
        theirs = np.sort(
            derived[(derived["dataset"] == "nyt_books") & (derived["steering"] == steering)]["tv"]
        )
        np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_more_annotators_change_the_estimate(release_dir: Path, humans: pd.DataFrame) -> None:
    every = human_predictions(release_dir, max_annotators=None)
    assert every["n_annotators"].max() > 4 and len(every) == len(humans)
    assert not np.allclose(
        np.concatenate(every["probs"].to_list()), np.concatenate(humans["probs"].to_list())
    )


def test_an_export_whose_question_is_not_an_item_is_named(release_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(release_dir / "opinions_qa", tmp_path / "opinions_qa")
    shutil.copytree(release_dir / "nytimes", tmp_path / "nytimes")
    shutil.copytree(release_dir / ANNOTATIONS, tmp_path / ANNOTATIONS)
    export = tmp_path / ANNOTATIONS / "Distributional_Alignment_No_Steering_May 21, 2024_18.01.csv"
    text = export.read_text(encoding="utf-8-sig")
    export.write_text(text.replace("Thinking about long-range foreign policy goals", "Invented question", 1))
    with pytest.raises(InputError, match="Invented question.*not an item of opinionqa") as err:
        human_predictions(tmp_path)
    assert "No_Steering_May 21" in str(err.value)
