import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distalign.errors import InputError
from distalign.scoring.predictions import PredictionsWarning, read_predictions, resolve_predictions

BASE = {"model": "m", "method": "verbalize", "steering": "persona", "dataset": "opinionqa", "item_id": "Q1",
        "attribute": "POLPARTY", "group": "Democrat"}  # fmt: skip


def _resolve(surveys, **row):
    return resolve_predictions(pd.DataFrame([{**BASE, **row}]), surveys, source="preds.jsonl")


def test_probs_forms_agree(surveys) -> None:
    target = np.array([0.5, 0.3, 0.2, 0.0])
    forms = [
        {"probs": [0.5, 0.3, 0.2, 0.0]},
        {"probs": [50, 30, 20, 0]},
        {"probs": {"Agree": 0.5, "Neutral": 0.3, "Disagree": 0.2}},
        {"probs": {"A": 0.5, "B": 0.3, "C": 0.2}},
        {"probs": {"A": 0.2, "B": 0.5, "C": 0.3}, "options": ["Disagree", "Agree", "Neutral", "Refused"]},
        {"probs": [0.2, 0.5, 0.3], "options": ["Disagree", "Agree", "Neutral"]},
        {"response": '{"A": 20, "B": 50, "C": 30}', "options": ["Disagree", "Agree", "Neutral", "Refused"]},
        {"response": "C: 20%, A: 50%, B: 30%"},
    ]
    for form in forms:
        r = _resolve(surveys, **form)
        np.testing.assert_allclose(r.probs[0, :4], target, err_msg=str(form))
        assert r.parsed[0]


def test_item_alias_and_blank_group(surveys) -> None:
    row = {k: v for k, v in BASE.items() if k not in {"item_id", "group", "attribute"}}
    r = resolve_predictions(
        pd.DataFrame([{**row, "item": "Q2", "group": "", "probs": [1, 0, 0, 0]}]), surveys
    )
    assert r.meta.loc[0, "item_id"] == "Q2" and r.meta.loc[0, "group"] is None


def test_unparsed_response_is_kept_with_status(surveys) -> None:
    r = _resolve(surveys, response=["no idea", '{"A": 1}', "still no"])
    assert r.parsed[0] and r.meta.loc[0, "status"] == "partial"
    assert (r.meta.loc[0, "n_total"], r.meta.loc[0, "n_valid"]) == (3, 1)
    r = _resolve(surveys, response="I refuse")
    assert not r.parsed[0] and r.meta.loc[0, "status"] == "unparsed"


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        ({"dataset": "nope"}, "dataset", "unknown dataset"),
        ({"item_id": "Q9"}, "item_id", "unknown item"),
        ({"group": "Green"}, "group", "not evaluated"),
        ({"attribute": "SEX"}, "group", "not evaluated"),
        ({"options": ["Agree", "Maybe"]}, "options", "'Maybe' is not an option"),
        ({"probs": [0.5, 0.5]}, "probs", "2 probabilities for 4 options"),
        ({"probs": [0.5, -0.5, 1, 0]}, "probs", "finite and non-negative"),
        ({"probs": [0.5, float("nan"), 0.5, 0]}, "probs", "finite and non-negative"),
        ({"probs": [0, 0, 0, 0]}, "probs", "sum to zero"),
        ({"probs": {"Z": 1}}, "probs", "neither an option label"),
        ({"probs": "not json"}, "probs", "list of numbers"),
        ({"probs": None}, "probs", "neither probs nor response"),
        ({"model": ""}, "model", "missing value"),
        ({"method": "telepathy", "probs": None, "response": "A"}, "method", "no parser"),
    ],
)
def test_bad_rows_name_file_row_and_column(surveys, row, column, message) -> None:
    good = {**BASE, "probs": [0.25] * 4}
    df = pd.DataFrame([good, {**good, **row}])
    with pytest.raises(InputError) as exc:
        resolve_predictions(df, surveys, source="preds.jsonl")
    text = str(exc.value)
    assert text.startswith("preds.jsonl: row 2, column ") and f"'{column}'" in text and message in text


def test_validation_happens_before_parsing(surveys, monkeypatch) -> None:
    import distalign.scoring.predictions as mod

    calls = []
    monkeypatch.setattr(mod, "get_method", lambda *a, **k: calls.append(a))
    df = pd.DataFrame([{**BASE, "response": "A: 100"}, {**BASE, "item_id": "Q404", "response": "A: 100"}])
    with pytest.raises(InputError, match="row 2"):
        resolve_predictions(df, surveys)
    assert calls == []


def _write_all(tmp_path: Path, rows: list[dict]) -> list[Path]:
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    csv = tmp_path / "p.csv"
    flat = [{k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in r.items()} for r in rows]
    pd.DataFrame(flat).to_csv(csv, index=False)
    parquet = tmp_path / "p.parquet"
    # a column cannot mix texts and lists in Parquet: list responses travel as JSON text there too
    pd.DataFrame(
        [
            {**r, "response": json.dumps(r["response"]) if isinstance(r["response"], list) else r["response"]}
            for r in rows
        ]
    ).to_parquet(parquet)
    return [jsonl, csv, parquet]


def test_three_formats_read_the_same(surveys, tmp_path) -> None:
    rows = [
        {**BASE, "probs": [0.1, 0.2, 0.3, 0.4], "response": None},
        {**BASE, "method": "verbalize", "probs": None, "response": ['{"A": 100}', '{"B": 100}']},
        {**BASE, "method": "seq", "group": None, "attribute": None, "probs": None, "response": "A A B C"},
    ]
    resolved = [
        resolve_predictions(read_predictions(p), surveys, source=p) for p in _write_all(tmp_path, rows)
    ]
    for r in resolved:
        np.testing.assert_allclose(r.probs[:, :4], resolved[0].probs[:, :4])
        assert r.meta["row"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(resolved[0].probs[1, :4], [0.5, 0.5, 0, 0])


def test_malformed_files(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"model": "m"}\n{oops\n')
    with pytest.raises(InputError, match=r"bad.jsonl: row 2: not valid JSON"):
        read_predictions(bad)
    with pytest.raises(InputError, match="unknown predictions format"):
        read_predictions(tmp_path / "x.txt")
    with pytest.raises(InputError, match="file not found"):
        read_predictions(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("second", "third", "row", "message"),
    [
        ({"probs": {"Z": 1}}, {"probs": [0.5, 0.5]}, 2, "neither an option label"),
        ({"probs": [0.5, 0.5]}, {"probs": {"Z": 1}}, 2, "2 probabilities"),
        ({"probs": [1, 0, 0, 0]}, {"probs": '[0.5, "x", 0, 0]'}, 3, "probability 2 of 4 is .x., a text"),
        ({"probs": '{"A": 0, "B": 0}'}, {"probs": [0.5, -1, 0, 0]}, 3, "finite and non-negative"),
    ],
)
def test_first_bad_row_is_named_whichever_form_it_has(surveys, second, third, row, message) -> None:
    good = {**BASE, "probs": [0.25] * 4}
    df = pd.DataFrame([good, {**good, **second}, {**good, **third}])
    with pytest.raises(InputError, match=f"row {row}, column 'probs'.*{message}"):
        resolve_predictions(df, surveys, source="preds.jsonl")


def _lenient(surveys, rows, **kwargs):
    return resolve_predictions(pd.DataFrame(rows), surveys, source="preds.jsonl", strict=False, **kwargs)


def test_rows_without_a_human_distribution_are_skipped_with_one_warning(surveys) -> None:
    good = {**BASE, "probs": [0.25] * 4}
    rows = [
        good,
        {**good, "attribute": "CREGION", "group": "South"},
        {**good, "attribute": "CREGION", "group": "Northeast"},
        {**good, "item_id": "Q2", "attribute": "CREGION", "group": "South"},
        {**good, "attribute": "POLPARTY", "group": "Independent"},
    ]
    with pytest.warns(PredictionsWarning) as caught:
        r = _lenient(surveys, rows)
    assert len(caught) == 1
    text = str(caught[0].message)
    assert text.startswith("preds.jsonl: skipped 4 row(s)") and "row 2 (opinionqa, CREGION=South)" in text
    assert "--strict" in text
    assert r.meta["row"].tolist() == [1] and r.skipped["no_human"] == 4
    # strict (the default) names the first such row
    with pytest.raises(InputError, match=r"preds.jsonl: row 2, column 'group': group 'CREGION=South'"):
        resolve_predictions(pd.DataFrame(rows), surveys, source="preds.jsonl")


def test_a_group_without_attribute_must_exist_even_when_lenient(surveys) -> None:
    rows = [
        {**BASE, "probs": [0.25] * 4},
        {**BASE, "attribute": None, "group": "Martian", "probs": [1, 0, 0, 0]},
    ]
    with pytest.raises(InputError, match=r"row 2, column 'group': group 'Martian' not evaluated"):
        _lenient(surveys, rows)


def test_every_row_skipped_is_an_error(surveys) -> None:
    with pytest.warns(PredictionsWarning), pytest.raises(InputError, match="nothing to score"):
        _lenient(
            surveys, [{**BASE, "attribute": "INCOME", "group": "$100,000 or more", "probs": [1, 0, 0, 0]}]
        )


@pytest.mark.parametrize(
    "probs",
    [[0, 0, 0, 0], [float("nan")] * 4, [None, None, None, None], [0, None, float("nan"), 0], {"A": 0, "B": 0},
     "[0, 0, 0, 0]", "[null, null, null, null]", "[NaN, 0, 0, 0]"],
)  # fmt: skip
def test_no_mass_on_any_option_is_a_failed_extraction(surveys, probs) -> None:
    r = _lenient(surveys, [{**BASE, "probs": [0.1, 0.2, 0.3, 0.4]}, {**BASE, "probs": probs}])
    assert r.parsed.tolist() == [True, False]
    assert (
        r.meta["status"].tolist() == ["ok", "unparsed"] and "no probability mass" in r.meta.loc[1, "detail"]
    )
    assert (r.meta["n_valid"].tolist(), r.meta["n_total"].tolist()) == ([1, 0], [1, 1])


@pytest.mark.parametrize(
    ("probs", "message"),
    [
        ([0.5, -0.5, 1, 0], "finite and non-negative"),
        ([0.5, float("inf"), 0, 0], "finite and non-negative"),
        ([0, float("-inf"), 0, 0], "finite and non-negative"),
        ([0.5, None, 0.5, 0], "finite and non-negative"),
        ([0.5, 0.5], "2 probabilities for 4 options"),
        ([0, 0], "2 probabilities for 4 options"),
        ([0.5, "x", 0, 0], "probability 2 of 4 is .x., a text, not a number"),
    ],
)
def test_bad_values_stay_errors_when_lenient(surveys, probs, message) -> None:
    with pytest.raises(InputError, match=rf"preds.jsonl: row 2, column 'probs': .*{message}"):
        _lenient(surveys, [{**BASE, "probs": [0.25] * 4}, {**BASE, "probs": probs}])


def test_huge_probabilities_are_normalised_without_overflow(surveys) -> None:
    r = _lenient(
        surveys, [{**BASE, "probs": [1e308, 1e308, 1e308, 0.1]}, {**BASE, "probs": {"A": 1e308, "B": 1e308}}]
    )
    np.testing.assert_allclose(r.probs[:, :4], [[1 / 3, 1 / 3, 1 / 3, 0], [0.5, 0.5, 0, 0]], atol=1e-12)
    assert r.parsed.all()


def _keyed(**row):
    return {**BASE, "steering": "none", "attribute": None, "group": None, **row}


def test_conflicting_repeats_are_errors_naming_both_rows(surveys) -> None:
    rows = [_keyed(probs=[0.1, 0.2, 0.3, 0.4]), _keyed(item_id="Q2", probs=[1, 0, 0, 0]),
            _keyed(probs=[0.4, 0.3, 0.2, 0.1])]  # fmt: skip
    with pytest.raises(InputError, match=r"preds.jsonl: row 3, column 'probs': conflicts with row 1"):
        _lenient(surveys, rows, unique=True)
    response_rows = [_keyed(method="seq", response="A B"), _keyed(method="seq", response="A C")]
    with pytest.raises(InputError, match=r"row 2, column 'response': conflicts with row 1"):
        _lenient(surveys, response_rows, unique=True)
    assert len(_lenient(surveys, rows)) == 3  # without unique=True every row is its own prediction


def test_identical_repeats_count_once_with_one_warning(surveys) -> None:
    seq = _keyed(method="seq", response="A B", probs=None)
    rows = [_keyed(probs=[0.1, 0.2, 0.3, 0.4]), _keyed(item_id="Q2", probs=[1, 0, 0, 0]),
            _keyed(probs=[10, 20, 30, 40]), _keyed(probs=[0.1, 0.2, 0.3, 0.4]), seq, seq]  # fmt: skip
    with pytest.warns(PredictionsWarning) as caught:
        r = _lenient(surveys, rows, unique=True)
    assert len(caught) == 1 and "counted 3 repeated row(s) once" in str(caught[0].message)
    assert "row 3 repeats row 1" in str(caught[0].message)
    assert r.meta["row"].tolist() == [1, 2, 5] and r.skipped["duplicate"] == 3
    with pytest.raises(InputError, match=r"row 3, column 'item_id': repeats row 1"):
        resolve_predictions(pd.DataFrame(rows), surveys, source="preds.jsonl", unique=True)


def test_progress_reports_parsed_responses(surveys) -> None:
    rows = [{**BASE, "method": "seq", "response": "A B" * (i % 3 + 1), "probs": None} for i in range(2500)]
    calls: list[tuple[int, int]] = []
    resolve_predictions(pd.DataFrame(rows), surveys, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 2500), (1000, 2500), (2000, 2500), (2500, 2500)]


def test_each_row_is_parsed_with_its_own_method_params(surveys) -> None:
    seq = {"model": "m", "method": "seq", "steering": "none", "dataset": "opinionqa", "item_id": "Q1"}
    vts = dict(seq, method="verbalize_then_sample", response='{"A": 30, "B": 70, "C": 0, "D": 0}')
    df = pd.DataFrame(
        [
            dict(seq, model="default", response="A B B C A A B C A A"),
            dict(seq, model="ten", response="A B B C A A B C A A", method_params={"seq_len": 10}),
            dict(vts, model="default"),
            dict(vts, model="thousand", method_params=json.dumps({"n_respondents": 1000, "seed": 7})),
        ]
    )
    r = resolve_predictions(df, surveys)
    assert list(r.meta["status"]) == ["partial", "ok", "ok", "ok"]  # 10 of the default 30 letters
    # drawn respondents: 30 give multiples of 1/30, 1000 of 1/1000 (and another draw)
    assert np.allclose(r.probs[2] * 30, np.round(r.probs[2] * 30))
    assert not np.allclose(r.probs[3] * 30, np.round(r.probs[3] * 30))
    assert np.allclose(r.probs[3] * 1000, np.round(r.probs[3] * 1000))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"seq_length": 10}, "row 1, column 'method_params': unknown parameter 'seq_length' for method"),
        ({"seq_len": "10"}, "row 1, column 'method_params': parameter 'seq_len' of method 'seq' must be int"),
        ("[10]", "row 1, column 'method_params': method_params must be a JSON object"),
    ],
)
def test_bad_method_params_name_the_row(surveys, params, message) -> None:
    row = {"model": "m", "method": "seq", "steering": "none", "dataset": "opinionqa", "item_id": "Q1"}
    df = pd.DataFrame([dict(row, response="A B", method_params=params)])
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        resolve_predictions(df, surveys, "p.jsonl")


def test_answers_are_read_with_the_letters_shown(surveys) -> None:
    """The supervision protocol numbers its options: an answer "2" is the second option only when the row
    says so; with the default letters A, B, ... it is no answer."""
    row = {"model": "m", "method": "self_random", "steering": "base", "dataset": "opinionqa", "item_id": "Q1"}
    df = pd.DataFrame(
        [
            dict(row, response=["2", "2", "1"], letters=["1", "2", "3", "4"]),
            dict(row, model="x", response=["2", "2", "1"]),
        ]
    )
    r = resolve_predictions(df, surveys)
    assert list(r.meta["status"]) == ["ok", "unparsed"]
    assert r.probs[0, :4] == pytest.approx([1 / 3, 2 / 3, 0, 0])
    bad = pd.DataFrame([dict(row, response="2", letters=["1", "2"])])
    with pytest.raises(InputError, match="row 1, column 'letters': letters must be a list of 4 texts"):
        resolve_predictions(bad, surveys)


def test_a_jsonl_error_names_the_data_row_not_the_line(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"model": "m"}\n\n{oops\n')  # the second row is on the third line
    with pytest.raises(InputError, match=r"bad.jsonl: row 2: not valid JSON"):
        read_predictions(bad)
