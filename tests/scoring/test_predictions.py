import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distalign.errors import InputError
from distalign.scoring.predictions import read_predictions, resolve_predictions

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
    monkeypatch.setattr(mod, "parse_response", lambda *a: calls.append(a))
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
        ({"probs": [1, 0, 0, 0]}, {"probs": '[0.5, "x", 0, 0]'}, 3, "not a list of numbers"),
        ({"probs": '{"A": 0, "B": 0}'}, {"probs": [0.5, -1, 0, 0]}, 3, "finite and non-negative"),
    ],
)
def test_first_bad_row_is_named_whichever_form_it_has(surveys, second, third, row, message) -> None:
    good = {**BASE, "probs": [0.25] * 4}
    df = pd.DataFrame([good, {**good, **second}, {**good, **third}])
    with pytest.raises(InputError, match=f"row {row}, column 'probs'.*{message}"):
        resolve_predictions(df, surveys, source="preds.jsonl")
