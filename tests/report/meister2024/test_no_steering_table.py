"""Table 10: no steering beside steering, with the release's CSV rows beside."""

from __future__ import annotations

import math

import pandas as pd

from distalign.report.meister2024.no_steering_table import table_10
from distalign.report.meister2024.notes import Provenance


def _row(kind: str, model: str, method: str, steering: str, dataset: str, mean: float) -> dict:
    return {"kind": kind, "model": model, "method": method, "steering": steering, "dataset": dataset,
            "mean": mean, "ci_low": mean - 0.01, "ci_high": mean + 0.01, "n": 10}  # fmt: skip


def test_rows_sit_beside_the_release_and_its_own_human_tvs() -> None:
    rows = [_row("model", "gpt-4", "verbalize", "none", d, m) for d, m in
            [("opinionqa", 0.2), ("nyt_books", 0.23), ("all", 0.215)]]  # fmt: skip
    two = [_row("model", "gpt-4", "verbalize", "all", "all", 0.204)]
    humans = [_row("human", "human", "estimate", s, d, 0.25) for s in ("none", "all") for d in ("all",)]
    release = pd.DataFrame(
        [("model", "gpt-4", "verbalize", "none", "opinionqa", 0.4, 0.01),
         ("model", "gpt-4", "verbalize", "none", "nyt_books", 0.23, 0.006),
         ("model", "gpt-4", "verbalize", "all", "both", 0.204, 0.003),
         ("human", "human", None, "all", "both", 0.247, 0.005)],
        columns=["kind", "model", "method", "steering", "dataset", "mean", "pm"],
    )  # fmt: skip
    derived = pd.DataFrame(
        {"dataset": ["opinionqa", "opinionqa", "nyt_books", "nyt_books", "opinionqa", "nyt_books"],
         "steering": ["none", "none", "none", "none", "persona", "few_shot"],
         "tv": [0.1, 0.3, 0.4, 0.4, 0.5, 0.1]}
    )  # fmt: skip

    def prov(model: str, method: str, steerings, datasets) -> Provenance:
        return Provenance(10, 0, 0, 0, math.nan)

    t = table_10(rows, two, humans, release, prov, derived).set_index(["kind", "steering", "dataset"])
    gpt = t.loc["model"]
    assert gpt.loc[("none", "opinionqa"), "published"] == 0.4
    assert "MC_options" in gpt.loc[("none", "opinionqa"), "why"]  # 0.2 vs 0.4: the stated reason
    assert not gpt.loc[("none", "nyt_books"), "why"]  # equal to the CSV: nothing to explain
    assert gpt.loc[("all", "all"), "published"] == 0.204
    assert math.isnan(gpt.loc[("none", "all"), "published"])
    human = t.loc["human"]
    assert human.loc[("none", "all"), "release_recomputed"] == (0.2 + 0.4) / 2  # mean of the dataset means
    assert human.loc[("all", "all"), "release_recomputed"] == (0.5 + 0.1) / 2
    assert human.loc[("all", "all"), "published"] == 0.247
