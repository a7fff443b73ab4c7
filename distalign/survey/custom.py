"""Your own survey in a documented table format (JSONL, CSV or Parquet), one row per item x group.

Columns (schema; also in ``CUSTOM_FORMAT.md``):

==============  ========  ===========================================================================
column          required  meaning
==============  ========  ===========================================================================
item_id         yes       question identifier (rows of the same item must agree on question/options)
question        yes       question text shown to the model
options         yes       list of option labels in the order shown (CSV: a JSON or Python list string)
attribute       yes       demographic attribute, e.g. ``POLPARTY``
group           yes       group within the attribute, e.g. ``Democrat``
probs           one of    list of probabilities aligned with ``options`` (sum within 1e-3 of 1;
                          small drift is renormalised)
counts          one of    list of respondent counts aligned with ``options`` (p = count / total)
ordinal         no        list of ordinal positions, ``null`` for no-opinion options; default: 1..N in
                          order, with "Refused"/"Don't know"/"Not sure"/"No answer"/"Missing…" as null
n_respondents   no        number of respondents, above 0 (default: the sum of ``counts``)
dataset         no        survey name (default: the file's stem); one value per file; not a built-in
                          dataset's name
similar         no        list of other item ids, most similar first: few-shot candidates for this row's
                          group
(any other)     no        kept as item metadata (text)
==============  ========  ===========================================================================

Errors name the file, the row as a user sees it (JSONL: ``line N``; CSV: ``row N (line L)`` with the header
on line 1; Parquet: ``row N``, 1-based) and the column.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distalign.errors import InputError
from distalign.survey.model import Example, GroupDistribution, Item, Survey
from distalign.survey.parsing import TABLE_SUFFIXES, default_ordinal, literal_list, read_jsonl

REQUIRED: tuple[str, ...] = ("item_id", "question", "options", "attribute", "group")
OPTIONAL: tuple[str, ...] = ("probs", "counts", "ordinal", "n_respondents", "dataset", "similar")
SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class _Row:
    label: str  # where a user finds it: "line 4", "row 3 (line 4)", "row 3"
    values: dict[str, Any]


def _blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def _read_jsonl(path: Path) -> tuple[list[str] | None, list[_Row]]:
    return None, [_Row(f"line {n}", obj) for n, obj in read_jsonl(path)]


def _read_csv(path: Path) -> tuple[list[str] | None, list[_Row]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header = [str(h).strip() for h in reader.fieldnames or ()]
        reader.fieldnames = header
        rows = [
            _Row(f"row {n} (line {reader.line_num})", {k: v for k, v in rec.items() if k is not None})
            for n, rec in enumerate(reader, start=1)
        ]
    return header, rows


def _read_parquet(path: Path) -> tuple[list[str] | None, list[_Row]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(f"cannot read as Parquet ({exc})", file=path) from None
    return table.column_names, [_Row(f"row {n}", rec) for n, rec in enumerate(table.to_pylist(), start=1)]


class _Parser:
    """Turns one raw row into typed fields, raising errors that point at the row and column."""

    def __init__(self, path: Path, row: _Row) -> None:
        self.path, self.row = path, row

    def error(self, column: str, reason: str) -> InputError:
        return InputError(reason, file=self.path, where=f"{self.row.label}, column {column!r}")

    def get(self, column: str) -> Any:
        value = self.row.values.get(column)
        return None if _blank(value) else value

    def text(self, column: str) -> str:
        value = self.get(column)
        if value is None:
            raise self.error(column, "missing value (required column)")
        return str(value)

    def list(self, column: str) -> list[Any] | None:
        value = self.get(column)
        if value is None:
            return None
        if isinstance(value, str):
            return literal_list(value, file=self.path, where=f"{self.row.label}, column {column!r}")
        if isinstance(value, list | tuple | np.ndarray):
            return list(value)
        raise self.error(column, f"expected a list, got {type(value).__name__}")

    def numbers(self, column: str, n: int, *, allow_null: bool = False) -> list[float | None] | None:
        values = self.list(column)
        if values is None:
            return None
        if len(values) != n:
            raise self.error(column, f"{len(values)} values for {n} options")
        out: list[float | None] = []
        for v in values:
            if allow_null and _blank(v):
                out.append(None)
                continue
            try:
                out.append(float(v))
            except (TypeError, ValueError):
                raise self.error(column, f"{v!r} is not a number") from None
        return out


@dataclass(frozen=True)
class _Parsed:
    label: str
    item: Item
    dist: GroupDistribution
    dataset: str | None
    similar: tuple[str, ...]


def _parse_row(path: Path, row: _Row) -> _Parsed:
    p = _Parser(path, row)
    item_id, question = p.text("item_id"), p.text("question")
    attribute, group = p.text("attribute"), p.text("group")
    raw_options = p.list("options")
    if raw_options is None:
        raise p.error("options", "missing value (required column)")
    options = tuple(str(o) for o in raw_options)
    if len(options) < 2:
        raise p.error("options", f"needs at least two option labels, got {list(options)}")
    repeated = next((o for i, o in enumerate(options) if o in options[:i]), None)
    if repeated is not None:
        raise p.error("options", f"option label {repeated!r} appears more than once; labels must be distinct")
    n = len(options)

    probs_in, counts_in = p.numbers("probs", n), p.numbers("counts", n)
    if probs_in is not None and counts_in is not None:
        raise p.error("probs", "give either probs or counts, not both")
    if probs_in is None and counts_in is None:
        raise p.error("probs", "missing: give probs (or counts) aligned with options")
    column = "probs" if probs_in is not None else "counts"
    values = np.array(probs_in if probs_in is not None else counts_in, dtype=float)
    if not np.all(np.isfinite(values)):
        raise p.error(column, "contains NaN or infinite values")
    if np.any(values < 0):
        raise p.error(column, "contains negative values")
    total = float(values.sum())
    if column == "probs" and abs(total - 1.0) > SUM_TOLERANCE:
        raise p.error(column, f"sums to {total:.6g}, not 1 (tolerance {SUM_TOLERANCE})")
    if total <= 0:
        raise p.error(column, "all zero: no respondents")

    n_resp = p.get("n_respondents")
    if n_resp is not None:
        try:
            n_resp = float(n_resp)
        except (TypeError, ValueError):
            raise p.error("n_respondents", f"{n_resp!r} is not a number") from None
        if not math.isfinite(n_resp) or n_resp <= 0:
            raise p.error("n_respondents", f"must be a number above 0, got {n_resp:g}")
    elif column == "counts":
        n_resp = total

    ordinal_in = p.numbers("ordinal", n, allow_null=True)
    ordinal = default_ordinal(options) if ordinal_in is None else tuple(ordinal_in)
    similar = tuple(str(s) for s in p.list("similar") or ())
    dataset = p.get("dataset")
    known = set(REQUIRED) | set(OPTIONAL)
    metadata = {k: str(v) for k, v in row.values.items() if k not in known and not _blank(v)}
    item = Item("", item_id, question, options, ordinal, metadata)
    dist = GroupDistribution("", item_id, attribute, group, values / total, n_resp)
    return _Parsed(row.label, item, dist, None if dataset is None else str(dataset), similar)


def _not_utf8(path: Path) -> InputError:
    """Where the first byte that is not UTF-8 is (the decoder's own offset counts from a buffer, not from
    the start of the file)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        pos = exc.start
        line = data.count(b"\n", 0, pos) + 1
        column = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
        return InputError(
            f"not UTF-8 text: byte 0x{data[pos]:02x} at byte offset {pos} ({exc.reason}); save the file "
            f"as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
            file=path,
            where=f"line {line}, column {column}",
        )
    return InputError("not UTF-8 text; save the file as UTF-8", file=path)


def _rows(path: Path) -> Iterator[_Row]:
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        kinds = sorted(TABLE_SUFFIXES)
        raise InputError(f"unsupported file type {path.suffix!r}; use one of {kinds}", file=path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    try:
        header, rows = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}[kind](path)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    if header is not None:
        for column in REQUIRED:
            if column not in header:
                raise InputError(
                    f"missing required column (found {header})", file=path, where=f"column {column!r}"
                )
        if "probs" not in header and "counts" not in header:
            raise InputError("missing column: give probs or counts", file=path, where="column 'probs'")
    if not rows:
        raise InputError("no rows", file=path)
    return iter(rows)


def load_custom(path: str | Path) -> Survey:
    """Read and validate a custom survey file; every problem is reported before anything runs."""
    path = Path(path)
    parsed = [_parse_row(path, row) for row in _rows(path)]

    names = {p.dataset for p in parsed if p.dataset is not None}
    if len(names) > 1:
        raise InputError(
            f"one dataset name per file, found {sorted(names)}", file=path, where="column 'dataset'"
        )
    name = names.pop() if names else path.stem

    items: dict[str, Item] = {}
    first_row: dict[str, str] = {}
    seen: dict[tuple[str, str, str], str] = {}
    dists: list[GroupDistribution] = []
    for p in parsed:
        prev = items.get(p.item.id)
        if prev is None:
            it = p.item
            items[it.id] = Item(name, it.id, it.question, it.options, it.ordinal, it.metadata)
            first_row[p.item.id] = p.label
        else:
            for col, a, b in (
                ("options", prev.options, p.item.options),
                ("question", prev.question, p.item.question),
                ("ordinal", prev.ordinal, p.item.ordinal),
            ):
                if a != b:
                    raise InputError(
                        f"item {p.item.id!r} has {col} {list(b) if col != 'question' else b!r} here but "
                        f"{list(a) if col != 'question' else a!r} in {first_row[p.item.id]}",
                        file=path,
                        where=f"{p.label}, column {col!r}",
                    )
        key = (p.item.id, p.dist.attribute, p.dist.group)
        if key in seen:
            raise InputError(
                f"duplicate row for item {key[0]!r}, {key[1]}={key[2]!r} (first in {seen[key]})",
                file=path,
                where=f"{p.label}, column 'group'",
            )
        seen[key] = p.label
        d = p.dist
        dists.append(GroupDistribution(name, d.item_id, d.attribute, d.group, d.probs, d.n_respondents))

    by_key = {(d.item_id, d.attribute, d.group): d for d in dists}
    similar: dict[tuple[str, str], tuple[Example, ...]] = {}
    shared: dict[tuple[str, str, str], Example] = {}  # one record per candidate, however many lists hold it
    for p, d in zip(parsed, dists, strict=True):
        if not p.similar:
            continue
        examples: list[Example] = []
        for cand in p.similar:
            if cand not in items:
                raise InputError(f"unknown item id {cand!r}", file=path, where=f"{p.label}, column 'similar'")
            other = by_key.get((cand, d.attribute, d.group))
            if cand != d.item_id and other is not None:
                ex = shared.get((cand, d.attribute, d.group))
                if ex is None:
                    it = items[cand]
                    ex = Example(cand, it.question, it.options, tuple(map(float, other.probs)))
                    shared[(cand, d.attribute, d.group)] = ex
                examples.append(ex)
        similar[(d.item_id, d.group)] = tuple(examples)
    return Survey(name, items, tuple(dists), similar, source=str(path))
