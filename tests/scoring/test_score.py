import numpy as np
import pandas as pd
import pytest

from distalign.errors import InputError
from distalign.scoring.predictions import PredictionsWarning
from distalign.scoring.score import score_predictions

ROW = {"model": "m", "method": "verbalize", "steering": "persona", "dataset": "opinionqa", "item_id": "Q1",
       "attribute": "POLPARTY", "group": "Republican"}  # fmt: skip
REPUBLICAN_Q1 = np.array([0.1, 0.3, 0.5, 0.1])


def test_tv_and_alignment_by_hand(surveys) -> None:
    scored = score_predictions(pd.DataFrame([{**ROW, "probs": [0.5, 0.3, 0.1, 0.1]}]), surveys)
    assert scored.loc[0, "tv"] == pytest.approx(0.4)  # 0.5 * (0.4 + 0 + 0.4 + 0)
    # substantive parts renormalised by 0.9: CDF gaps 4/9 and 4/9 over unit steps; range 2
    assert scored.loc[0, "alignment"] == pytest.approx(1 - (8 / 9) / 2)
    np.testing.assert_allclose(scored.loc[0, "human"], REPUBLICAN_Q1)


def test_shuffled_options_score_like_aligned_probs(surveys) -> None:
    aligned = {**ROW, "probs": [0.4, 0.3, 0.2, 0.1]}
    shown = ["Refused", "Disagree", "Agree", "Neutral"]
    by_letter = {**ROW, "probs": None, "response": '{"A": 10, "B": 20, "C": 40, "D": 30}', "options": shown}
    by_letter_probs = {**ROW, "probs": {"A": 0.1, "B": 0.2, "C": 0.4, "D": 0.3}, "options": shown}
    scored = score_predictions(pd.DataFrame([aligned, by_letter, by_letter_probs]), surveys)
    np.testing.assert_allclose(scored["tv"], scored.loc[0, "tv"])
    np.testing.assert_allclose(scored["alignment"], scored.loc[0, "alignment"])
    assert scored.loc[0, "tv"] == pytest.approx(
        0.5 * np.abs(np.array([0.4, 0.3, 0.2, 0.1]) - REPUBLICAN_Q1).sum()
    )


def test_no_steering_row_expands_to_every_group(surveys) -> None:
    row = {**ROW, "steering": "none", "attribute": None, "group": None, "probs": [0.25] * 4}
    scored = score_predictions(pd.DataFrame([row]), surveys)
    assert sorted(scored["group"]) == ["Democrat", "Republican"]
    assert set(scored["attribute"]) == {"POLPARTY"} and set(scored["row"]) == {1}


def test_group_without_attribute_is_matched(surveys) -> None:
    scored = score_predictions(pd.DataFrame([{**ROW, "attribute": None, "probs": [1, 0, 0, 0]}]), surveys)
    assert scored["group"].tolist() == ["Republican"] and scored.loc[0, "attribute"] == "POLPARTY"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("uniform", 0.5 * np.abs(0.25 - REPUBLICAN_Q1).sum()),
        ("worst", 1 - REPUBLICAN_Q1.min()),  # one-hot on the least likely human option
        ("exclude", np.nan),
    ],
)
def test_unparsed_policies(surveys, policy, expected) -> None:
    rows = [{**ROW, "response": "I will not answer", "probs": None}, {**ROW, "probs": list(REPUBLICAN_Q1)}]
    scored = score_predictions(pd.DataFrame(rows), surveys, unparsed=policy)
    assert scored["status"].tolist() == ["unparsed", "ok"]
    np.testing.assert_allclose(scored.loc[0, "tv"], expected)
    assert scored.loc[1, "tv"] == pytest.approx(0)


def test_unknown_policy_is_input_error(surveys) -> None:
    with pytest.raises(InputError, match="unknown policy"):
        score_predictions(pd.DataFrame([{**ROW, "probs": [1, 0, 0, 0]}]), surveys, unparsed="ignore")  # type: ignore[arg-type]


def test_vectorised_scores_match_a_per_row_loop(surveys) -> None:
    rng = np.random.default_rng(1)
    rows, expected = [], []
    for ds, s in surveys.items():
        for d in s.distributions:
            p = rng.dirichlet(np.ones(4))
            keys = {"dataset": ds, "item_id": d.item_id, "attribute": d.attribute, "group": d.group}
            rows.append({**ROW, **keys, "probs": list(p)})
            expected.append(0.5 * np.abs(p - d.probs).sum())
    scored = score_predictions(pd.DataFrame(rows), surveys)
    np.testing.assert_allclose(scored["tv"], expected)


def test_expand_pairs_each_prediction_with_its_groups(surveys) -> None:
    from distalign.scoring.score import SurveyTable

    table = SurveyTable.build(surveys)
    meta = pd.DataFrame(
        [
            ("opinionqa", "Q2", None, None),  # no group: every group of the item
            ("opinionqa", "Q1", "POLPARTY", "Democrat"),
            ("global_opinions", "Is it good?", None, "Chile"),  # group without attribute
            ("nyt_books", "Book A", "AGE", "Male"),  # attribute disagrees: no pair
            ("nyt_books", "Book B", None, None),  # unknown item: no pair
        ],
        columns=["dataset", "item_id", "attribute", "group"],
    )
    pi, di = table.expand(meta)
    keys = table.keys
    expected = [
        (i, d)
        for i, (ds, item, attr, group) in enumerate(meta.itertuples(index=False))
        for d in range(len(keys))
        if (keys.dataset[d], keys.item_id[d]) == (ds, item)
        and (pd.isna(group) or (keys.group[d] == group and (pd.isna(attr) or attr == keys.attribute[d])))
    ]
    assert list(zip(pi.tolist(), di.tolist(), strict=True)) == expected
    assert [p for p, _ in expected] == [0, 0, 1, 2]


def test_huge_probabilities_score_as_their_distribution(surveys) -> None:
    scored = score_predictions(pd.DataFrame([{**ROW, "probs": [1e308, 1e308, 1e308, 0.1]}]), surveys)
    np.testing.assert_allclose(scored.loc[0, "pred"], [1 / 3, 1 / 3, 1 / 3, 0], atol=1e-12)
    assert scored.loc[0, "tv"] == pytest.approx(
        0.5 * np.abs(np.array([1, 1, 1, 0]) / 3 - REPUBLICAN_Q1).sum()
    )


def test_skipped_rows_are_counted_on_the_result(surveys) -> None:
    row = {**ROW, "probs": [1, 0, 0, 0]}
    rows = [row, {**row, "attribute": "EDUCATION", "group": "College"}, row]
    with pytest.warns(PredictionsWarning) as caught:
        scored = score_predictions(pd.DataFrame(rows), surveys, strict=False, unique=True)
    assert ["skipped 1 row" in str(w.message) for w in caught] == [True, False]
    assert "counted 1 repeated row(s) once" in str(caught[1].message)
    assert len(scored) == 1 and scored.attrs["skipped"] == {"no_human": 1, "duplicate": 1}
