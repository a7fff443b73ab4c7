"""The custom format: valid files in every encoding, and each validation error naming file, row, column."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distalign.errors import InputError
from distalign.survey import load_custom, load_survey

Rows = list[dict[str, Any]]
OPTS = ["Yes", "No", "Refused"]


def base_rows() -> Rows:
    return [
        {"item_id": "Q1", "question": "Build a park?", "options": OPTS, "attribute": "POLPARTY",
         "group": "Democrat", "probs": [0.6, 0.3, 0.1], "similar": ["Q2"], "wave": "W1"},
        {"item_id": "Q1", "question": "Build a park?", "options": OPTS, "attribute": "POLPARTY",
         "group": "Republican", "probs": [0.2, 0.7, 0.1]},
        {"item_id": "Q2", "question": "Extend library hours?", "options": OPTS, "attribute": "POLPARTY",
         "group": "Democrat", "counts": [10, 5, 5], "similar": ["Q1"]},
    ]  # fmt: skip


def _union(rows: Rows) -> list[str]:
    return list(dict.fromkeys(k for r in rows for k in r))


def write_jsonl(rows: Rows, path: Path) -> Path:
    path = path.with_suffix(".jsonl")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_csv(rows: Rows, path: Path) -> Path:
    path = path.with_suffix(".csv")
    cols = _union(rows)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            w.writerow(
                [
                    "" if r.get(c) is None else json.dumps(r[c]) if isinstance(r[c], list) else r[c]
                    for c in cols
                ]
            )
    return path


def write_parquet(rows: Rows, path: Path) -> Path:
    path = path.with_suffix(".parquet")
    cols = _union(rows)
    pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in rows]), path)
    return path


WRITERS: dict[str, Callable[[Rows, Path], Path]] = {
    "jsonl": write_jsonl,
    "csv": write_csv,
    "parquet": write_parquet,
}


def row_label(fmt: str, n: int) -> str:
    """How each format names data row ``n`` (1-based): JSONL by line, CSV by row and line, Parquet by row."""
    return {"jsonl": f"line {n}", "csv": f"row {n} (line {n + 1})", "parquet": f"row {n}"}[fmt]


def _set(row: int, **kv: Any) -> Callable[[Rows], None]:
    def apply(rows: Rows) -> None:
        rows[row - 1].update(kv)

    return apply


def _drop_column(col: str) -> Callable[[Rows], None]:
    def apply(rows: Rows) -> None:
        for r in rows:
            r.pop(col, None)

    return apply


def _append(**kv: Any) -> Callable[[Rows], None]:
    def apply(rows: Rows) -> None:
        rows.append({**rows[1], **kv})

    return apply


# (case, mutation, data row the error must name (None: a whole column is missing), column)
CASES = [
    ("missing column", _drop_column("question"), None, "question"),
    ("missing value", _set(2, item_id=None), 2, "item_id"),
    ("no probs or counts", _set(2, probs=None), 2, "probs"),
    ("options/probs length", _set(2, probs=[0.5, 0.5]), 2, "probs"),
    ("options/counts length", _set(3, counts=[10, 5]), 3, "counts"),
    ("ordinal length", _set(2, ordinal=[1.0, None]), 2, "ordinal"),
    ("negative probs", _set(2, probs=[1.2, -0.3, 0.1]), 2, "probs"),
    ("NaN probs", _set(2, probs=[0.5, math.nan, 0.5]), 2, "probs"),
    ("negative counts", _set(3, counts=[10, -5, 5]), 3, "counts"),
    ("probs sum", _set(2, probs=[0.5, 0.3, 0.1]), 2, "probs"),
    ("probs and counts", _set(2, counts=[1, 2, 3]), 2, "probs"),
    ("inconsistent options", _set(2, options=["Yes", "No", "Don't know"]), 2, "options"),
    ("inconsistent question", _set(2, question="Build two parks?"), 2, "question"),
    ("duplicate", _append(), 4, "group"),
    ("unknown similar id", _set(3, similar=["Q9"]), 3, "similar"),
]


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize(("case", "mutate", "row", "column"), CASES, ids=[c[0] for c in CASES])
def test_malformed(
    tmp_path: Path, fmt: str, case: str, mutate: Callable[[Rows], None], row: int | None, column: str
) -> None:
    rows = base_rows()
    mutate(rows)
    path = WRITERS[fmt](rows, tmp_path / "survey")
    with pytest.raises(InputError) as err:
        load_custom(path)
    msg = str(err.value)
    assert err.value.file == str(path)
    assert f"column {column!r}" in msg, msg
    if row is not None:
        assert row_label(fmt, row) in msg, msg
    elif fmt == "jsonl":
        assert row_label(fmt, 1) in msg, msg  # JSONL has no header: the first row lacking it is named


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_valid(tmp_path: Path, fmt: str) -> None:
    path = WRITERS[fmt](base_rows(), tmp_path / "town")
    s = load_custom(path)
    assert s.name == "town" and list(s.items) == ["Q1", "Q2"]
    q1 = s.items["Q1"]
    assert q1.options == tuple(OPTS) and q1.ordinal == (1.0, 2.0, None)
    assert q1.dataset == "town" and q1.metadata == {"wave": "W1"}
    assert [(d.item_id, d.group) for d in s] == [("Q1", "Democrat"), ("Q1", "Republican"), ("Q2", "Democrat")]
    q2 = s.distributions[2]
    assert q2.probs.tolist() == pytest.approx([0.5, 0.25, 0.25]) and q2.n_respondents == 20
    assert s.distributions[0].n_respondents is None
    (ex,) = s.examples("Q1", "Democrat")
    assert (ex.id, ex.question, ex.probs) == ("Q2", "Extend library hours?", pytest.approx((0.5, 0.25, 0.25)))
    assert s.examples("Q1", "Republican") == ()  # Q2 has no Republican row, and no list was given


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_small_drift_is_renormalised_and_options_kept(tmp_path: Path, fmt: str) -> None:
    rows = base_rows()
    rows[1]["probs"] = [0.2004, 0.7, 0.1]
    rows[1]["ordinal"] = [2.0, 1.0, None]
    rows[0]["ordinal"] = [2.0, 1.0, None]
    rows[0]["dataset"] = "mine"
    s = load_custom(WRITERS[fmt](rows, tmp_path / "drift"))
    assert s.name == "mine" and s.items["Q1"].ordinal == (2.0, 1.0, None)
    assert s.distributions[1].probs.sum() == pytest.approx(1.0, abs=1e-12)
    assert s.distributions[1].probs[0] == pytest.approx(0.2004 / 1.0004)


def test_csv_accepts_python_literal_lists(tmp_path: Path) -> None:
    path = tmp_path / "lit.csv"
    path.write_text(
        "item_id,question,options,attribute,group,probs,ordinal\n"
        'Q1,Park?,"[\'Yes\', ""Don\'t know""]",SEX,Female,"[0.25, 0.75]","[1, None]"\n'
    )
    s = load_custom(path)
    assert s.items["Q1"].options == ("Yes", "Don't know") and s.items["Q1"].ordinal == (1.0, None)


def test_bad_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unsupported file type"):
        load_custom(tmp_path / "survey.xlsx")
    with pytest.raises(InputError, match="not found"):
        load_custom(tmp_path / "absent.csv")


def test_bad_json_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(base_rows()[0]) + "\n{not json\n")
    with pytest.raises(InputError, match="line 2"):
        load_custom(path)


def test_through_registry(tmp_path: Path) -> None:
    path = write_jsonl(base_rows(), tmp_path / "reg")
    assert len(load_survey("custom", path=path)) == 3


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_file_that_is_not_utf8_names_file_line_and_byte(tmp_path: Path, fmt: str) -> None:
    path = WRITERS[fmt](base_rows(), tmp_path / "latin")
    path.write_bytes(path.read_bytes().replace(b"Extend library", b"Extend caf\xe9 library"))  # Latin-1
    with pytest.raises(InputError) as err:
        load_custom(path)
    msg = str(err.value)
    line = 3 if fmt == "jsonl" else 4  # the CSV header is line 1
    assert err.value.file == str(path) and f"line {line}" in msg and "0xe9" in msg and "UTF-8" in msg, msg


def test_a_repeated_option_label_is_named(tmp_path: Path) -> None:
    rows = base_rows()
    for r in rows:
        r["options"] = ["Yes", "No", "Yes"]
    with pytest.raises(InputError, match="option label 'Yes' appears more than once"):
        load_custom(write_jsonl(rows, tmp_path / "dup"))


@pytest.mark.parametrize("n", [0, -3])
def test_n_respondents_must_be_above_zero(tmp_path: Path, n: int) -> None:
    rows = base_rows()
    rows[1]["n_respondents"] = n
    with pytest.raises(InputError, match="line 2, column 'n_respondents': must be a number above 0"):
        load_custom(write_jsonl(rows, tmp_path / "resp"))
