"""Table 6: annotators split by their own group, estimating their own vs the other group."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distalign.report.meister2024.humans import (
    ANNOTATIONS,
    EXPORTS,
    IN_GROUP,
    OUT_GROUP,
    in_out_group_predictions,
    read_exports,
)
from distalign.report.meister2024.ingroup import TOLERANCE, table_6
from distalign.report.meister2024.published import published_frame

KEY = ("nyt_books", "persona")


@pytest.fixture(scope="module")
def split(release_dir: Path) -> pd.DataFrame:
    return in_out_group_predictions(release_dir, exports=read_exports(release_dir, keys=[KEY]))


def _members_first_answers(release_dir: Path, party: str, block: str, title: str) -> np.ndarray:
    """Straight from the CSV: the first 4 complete answers of the annotators of ``party`` to the block of
    the book ``title`` (found by its question header)."""
    with (release_dir / ANNOTATIONS / EXPORTS[KEY][0]).open(encoding="utf-8-sig", newline="") as fh:
        records = list(csv.reader(fh))
    names, texts = records[0], records[1]
    number = next(
        n.split("_")[0]
        for n, t in zip(names, texts, strict=True)
        if n.endswith("_Q138") and f"Book Title: {title}" in t
    )
    cols = [names.index(f"{number}_{block}_{k}") for k in range(1, 5)]
    party_col = names.index("Q_DemRepub")
    picked = []
    for r in records[3:]:
        if r[party_col] != party:
            continue
        try:
            picked.append([float(r[c]) for c in cols])
        except ValueError:
            continue
    return np.array(picked[:4])


def test_members_estimate_their_own_and_the_other_group(split: pd.DataFrame, release_dir: Path) -> None:
    title = next(iter(json.loads((release_dir / "nytimes" / "data.json").read_text(encoding="utf-8"))))
    rows = split[(split["item_id"] == title) & (split["annotators"] == "Democrat")].set_index("method")
    own = _members_first_answers(release_dir, "Democrat", "Q_NoSteering", title)
    other = _members_first_answers(release_dir, "Democrat", "Q135", title)
    assert rows.loc[IN_GROUP, "group"] == "Democrat" and rows.loc[OUT_GROUP, "group"] == "Republican"
    np.testing.assert_allclose(rows.loc[IN_GROUP, "probs"], own.mean(axis=0))
    np.testing.assert_allclose(rows.loc[OUT_GROUP, "probs"], other.mean(axis=0))
    assert rows.loc[IN_GROUP, "n_annotators"] == len(own)


def test_every_group_of_the_export_is_split(split: pd.DataFrame) -> None:
    pairs = split.groupby(["method", "annotators", "group"]).size()
    assert set(pairs.index) == {
        (IN_GROUP, "Democrat", "Democrat"), (OUT_GROUP, "Democrat", "Republican"),
        (IN_GROUP, "Republican", "Republican"), (OUT_GROUP, "Republican", "Democrat"),
        (IN_GROUP, "Male", "Male"), (OUT_GROUP, "Male", "Female"),
        (IN_GROUP, "Female", "Female"), (OUT_GROUP, "Female", "Male"),
    }  # fmt: skip
    assert (pairs <= 235).all()


def test_table_6_sets_the_notebook_values_beside_and_explains_what_differs() -> None:
    rows = [
        {"kind": "human", "model": "human", "method": p.method, "steering": p.steering, "dataset": p.dataset,
         "mean": p.mean + (0.01 if p.dataset == "opinionqa" and p.method == IN_GROUP else 0.0),
         "ci_low": p.mean - p.pm, "ci_high": p.mean + p.pm, "n": 100}
        for p in published_frame("table6").itertuples()
    ]  # fmt: skip
    t = table_6(rows)
    assert len(t) == 8 and t["source"].str.contains("notebook").all()
    moved = (t["dataset"] == "opinionqa") & (t["method"] == IN_GROUP)
    assert (t.loc[moved, "why"] == "unexplained").all()
    assert (t.loc[~moved, "why"].isin(["", np.nan]) | (t.loc[~moved, "dataset"] == "nyt_books")).all()
    assert (t.loc[~moved, "diff"].abs() <= TOLERANCE).all()
