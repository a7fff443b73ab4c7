import numpy as np
import pandas as pd
import pytest

from distalign.report.leaderboard import baseline_rows, human_baseline_rows, kss_table, leaderboard


def _scored(records: list[tuple[str, str, str, str, float]], status: str = "ok") -> pd.DataFrame:
    """(method, steering, dataset, group, tv) records; each is one prediction."""
    return pd.DataFrame(
        [
            {
                "row": i,
                "model": "m",
                "method": me,
                "steering": st,
                "dataset": ds,
                "item_id": "x",
                "group": g,
                "tv": tv,
                "status": status,
            }  # fmt: skip
            for i, (me, st, ds, g, tv) in enumerate(records)
        ]
    )


def _find(rows, **kw):
    hits = [r for r in rows if all(r[k] == v for k, v in kw.items())]
    assert len(hits) == 1, (kw, hits)
    return hits[0]


def test_three_is_the_mean_of_dataset_means_over_persona_and_few_shot() -> None:
    scored = _scored(
        [
            ("seq", "persona", "opinionqa", "a", 0.1),
            ("seq", "few_shot", "opinionqa", "a", 0.3),
            ("seq", "persona", "opinionqa", "b", 0.2),
            ("seq", "none", "opinionqa", "a", 0.9),  # not in the "all" pool
            ("seq", "persona", "nyt_books", "a", 0.4),
            ("seq", "persona", "global_opinions", "a", 0.6),
            ("seq", "few_shot", "global_opinions", "a", 0.8),
        ]
    )
    rows = leaderboard(scored, n_resamples=200)
    assert _find(rows, steering="all", dataset="opinionqa")["mean"] == pytest.approx(0.2)
    three = _find(rows, steering="all", dataset="three")
    assert three["mean"] == pytest.approx((0.2 + 0.4 + 0.7) / 3)  # not the pooled mean 0.4
    assert three["n"] == 6 and three["ci_low"] <= three["mean"] <= three["ci_high"]
    # one dataset is its own headline row: no "all" aggregate that would claim more
    assert _find(rows, steering="none", dataset="opinionqa")["mean"] == pytest.approx(0.9)
    assert not [r for r in rows if r["steering"] == "none" and r["dataset"] in ("all", "three")]
    assert _find(rows, steering="persona", dataset="three")["mean"] == pytest.approx((0.15 + 0.4 + 0.6) / 3)
    issue_schema = ("kind", "model", "method", "steering", "dataset", "mean", "ci_low", "ci_high", "n")
    assert tuple(rows[0]) == (*issue_schema, "extraction_rate")


def test_aggregate_is_all_without_the_three_datasets() -> None:
    rows = leaderboard(
        _scored([("seq", "persona", "opinionqa", "a", 0.1), ("seq", "persona", "nyt_books", "a", 0.3)])
    )
    assert {r["dataset"] for r in rows} == {"opinionqa", "nyt_books", "all"}
    # persona alone is not named "all" (that pools persona and few-shot)
    assert _find(rows, steering="persona", dataset="all")["mean"] == pytest.approx(0.2)
    assert not [r for r in rows if r["steering"] == "all"]


def test_excluded_answers_leave_means_but_count_in_extraction() -> None:
    scored = _scored([("seq", "persona", "opinionqa", "a", 0.2), ("seq", "persona", "opinionqa", "b", 0.4)])
    scored.loc[2] = {**scored.loc[1], "row": 2, "tv": np.nan, "status": "unparsed"}
    row = _find(leaderboard(scored, n_resamples=50), steering="persona", dataset="opinionqa")
    assert row["mean"] == pytest.approx(0.3) and row["n"] == 2
    assert row["extraction_rate"] == pytest.approx(2 / 3)


def test_extraction_counts_each_prediction_once() -> None:
    scored = _scored([("seq", "none", "opinionqa", g, 0.5) for g in "abcdef"])
    scored["row"] = 0  # one no-steering answer scored on six groups
    scored.loc[:, "status"] = "unparsed"
    scored = pd.concat([scored, _scored([("seq", "none", "opinionqa", "a", 0.1)]).assign(row=1)])
    row = _find(leaderboard(scored, n_resamples=50), steering="none", dataset="opinionqa")
    assert row["extraction_rate"] == pytest.approx(0.5)


def test_kss_table() -> None:
    scored = _scored(
        [("seq", "persona", "opinionqa", "a", 0.3), ("verbalize", "persona", "opinionqa", "a", 0.2)]
    )
    table = kss_table(leaderboard(scored, n_resamples=50))
    row = _find(table, dataset="opinionqa")
    assert row["kss"] == pytest.approx(0.5) and row["model"] == "m"


def test_baseline_rows_on_tiny_surveys(surveys) -> None:
    rows = baseline_rows(surveys, n_resamples=100)
    uniform_opinionqa = _find(rows, model="uniform", dataset="opinionqa")
    # Q1/Q2 x Democrat/Republican against uniform over 4 options
    groups = ([0.6, 0.2, 0.2, 0.0], [0.1, 0.3, 0.5, 0.1], [0.0, 0.2, 0.2, 0.6], [0.1, 0.5, 0.3, 0.1])
    expected = np.mean([0.5 * np.abs(np.array(p) - 0.25).sum() for p in groups])
    assert uniform_opinionqa["mean"] == pytest.approx(expected)
    assert _find(rows, model="majority", dataset="nyt_books")["mean"] == pytest.approx(0.5)
    assert {r["dataset"] for r in rows} == {"opinionqa", "nyt_books", "global_opinions", "three"}
    assert all(r["kind"] == "baseline" and r["method"] is None for r in rows)


def test_human_annotators_are_rows_of_their_own_kind() -> None:
    scored = pd.concat(
        [
            _scored([("seq", "persona", "opinionqa", "a", 0.3)]),
            _scored([("estimate", "persona", "opinionqa", "a", 0.25)]).assign(model="human", row=1),
        ]
    )
    kinds = {(r["model"], r["kind"]) for r in leaderboard(scored, n_resamples=20)}
    assert kinds == {("m", "model"), ("human", "human")}


def test_baselines_from_the_scored_human_distributions_equal_those_of_the_surveys(surveys) -> None:
    from_surveys = baseline_rows(surveys, n_resamples=100)
    dists = {name: [d.probs for d in s.distributions] for name, s in surveys.items()}
    from_items = human_baseline_rows(dists, n_resamples=100)
    assert from_items == from_surveys
