"""Predictions from any source (a sweep, another tool, human annotators), read and checked against the
surveys before anything is scored.

Schema (one row per model x method x steering x dataset x item x attribute x group; full text in
``PREDICTIONS_FORMAT.md``):

=========== ======== ================================================================================
column      required meaning
=========== ======== ================================================================================
model       yes      who predicted (a model name, or e.g. ``human``)
method      yes      elicitation method (``verbalize``, ``seq``, ``logprobs``, ...); picks the parser
steering    yes      ``none``, ``persona``, ``few_shot`` (other names are kept as they are)
dataset     yes      ``opinionqa``, ``nyt_books``, ``global_opinions`` (or a loaded custom survey)
item_id     yes      the item's id (the column may be called ``item``)
attribute   no       e.g. ``POLPARTY``; with ``group`` empty the row is scored against every group
group       no       e.g. ``Democrat``; may be given without ``attribute`` when it is unambiguous
probs       one of   list aligned with the options, or a mapping label -> p or letter -> p
response    one of   raw model text (or a list of texts for n generations), parsed by ``method``
options     no       option labels in the order shown to the model; letters A, B, ... refer to them
=========== ======== ================================================================================

In CSV, ``probs``, ``options`` and list-valued ``response`` cells are JSON strings. Probabilities must be
finite and non-negative with a positive sum; they are renormalised (so percents and counts work).
Errors name the file, the 1-based data row and the column.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from distalign.errors import InputError
from distalign.methods.registry import PARSERS, parse_response
from distalign.survey.model import Item, Survey

KEYS: tuple[str, ...] = ("model", "method", "steering", "dataset", "item_id")
_DEFAULT_STR = pd.Series(["text"]).dtype
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
META_COLUMNS: tuple[str, ...] = (
    "row", "model", "method", "steering", "dataset", "item_id", "attribute", "group",
    "status", "detail", "n_total", "n_valid",
)  # fmt: skip


def letters_for(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]


def is_blank(value: Any) -> bool:
    """Null, NaN or empty text (lists and mappings are never blank, even when empty)."""
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and not value.strip()


def read_predictions(path: str | Path) -> pd.DataFrame:
    """The raw predictions table with a ``row`` column (1-based data row); format by extension."""
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"unknown predictions format {path.suffix!r} (use {', '.join(SUFFIXES)})", file=path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    try:
        if kind == "jsonl":
            df = _read_jsonl(path)
        elif kind == "csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            df = pd.read_parquet(path)
    except InputError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for malformed files
        raise InputError(
            f"cannot read {kind}: {str(exc).splitlines()[0] if str(exc) else exc!r}", file=path
        ) from None
    if df.empty:
        raise InputError("no predictions in file", file=path)
    df = df.reset_index(drop=True)
    df["row"] = np.arange(1, len(df) + 1)
    return df


def _read_jsonl(path: Path) -> pd.DataFrame:
    records: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(x for x in fh if x.strip()):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON ({exc.msg})", file=path, where=f"row {n + 1}") from None
            if not isinstance(obj, dict):
                raise InputError("expected one JSON object per line", file=path, where=f"row {n + 1}")
            records.append(obj)
    return pd.DataFrame.from_records(records)


@dataclass(frozen=True)
class Resolved:
    """Validated predictions, columnar: ``meta`` (``META_COLUMNS``) and ``probs`` (n, K), each row over
    its *dataset's* options, zero-padded; ``parsed`` is False where no distribution could be read."""

    meta: pd.DataFrame
    probs: np.ndarray
    parsed: np.ndarray

    def __len__(self) -> int:
        return len(self.meta)


@dataclass(frozen=True)
class _Text:
    """A factorised text column: ``codes`` index ``uniques``, ``-1`` where missing."""

    codes: np.ndarray
    uniques: list[str]
    #: the input column, when it already holds exactly these texts as pandas' default string dtype
    source: pd.api.extensions.ExtensionArray | None = None

    @property
    def values(self) -> np.ndarray:
        """Per row, the text or ``None``."""
        return np.array([*self.uniques, None], dtype=object)[self.codes]

    def column(self) -> pd.api.extensions.ExtensionArray:
        """The column as pandas would infer it from :attr:`values`, built from the distinct texts."""
        if self.source is not None:
            return self.source
        return pd.Series([*self.uniques, None]).array.take(self.codes)

    def recoded(self, codes: np.ndarray) -> _Text:
        """The column whose row ``i`` holds this column's value at position ``codes[i]``."""
        return _Text(self.codes[codes], self.uniques)

    @classmethod
    def of(cls, values: np.ndarray) -> _Text:
        codes, uniques = pd.factorize(values)
        return cls(codes, list(uniques))


def _first_rows(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """The first row of each code."""
    first = np.zeros(n_codes, dtype=np.int64)
    first[codes[::-1]] = np.arange(codes.size - 1, -1, -1)
    return first


def _combine(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the distinct combinations of some code columns (``-1`` allowed) and each one's first row."""
    key = np.zeros(columns[0].size, dtype=np.int64)
    for c in columns:
        key = key * (int(c.max(initial=-1)) + 2) + c + 1
    codes, uniques = pd.factorize(key)
    return codes, _first_rows(codes, len(uniques))


def _cells(df: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An optional column's cells (``None`` when absent), whether each is given and whether it is a
    plain list."""
    if column not in df.columns:
        return (
            np.full(len(df), None, dtype=object),
            np.zeros(len(df), dtype=bool),
            np.zeros(len(df), dtype=bool),
        )
    values = df[column].to_numpy(dtype=object)
    return values, *_present(values)


def _present(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``not is_blank`` per cell, and whether the cell is a plain list; decided once per cell type
    (texts and floats still per cell)."""
    codes, kinds = pd.factorize(np.fromiter(map(type, values), dtype=object, count=len(values)))
    present, is_list = np.ones(len(values), dtype=bool), np.zeros(len(values), dtype=bool)
    for c, kind in enumerate(kinds):
        rows = np.flatnonzero(codes == c)
        if kind is type(None) or kind is type(pd.NA):
            present[rows] = False
        elif issubclass(kind, float):
            present[rows] = ~np.isnan(values[rows].astype(float))
        elif issubclass(kind, str):
            present[rows] = [bool(v.strip()) for v in values[rows]]
        is_list[rows] = kind is list
    return present, is_list


class _Checker:
    """Validation with messages naming the file, the 1-based row and the column."""

    def __init__(self, source: str | Path | None, rows: np.ndarray) -> None:
        self.source, self.rows = source, rows

    def fail(self, reason: str, i: int, column: str) -> InputError:
        return InputError(reason, file=self.source, where=f"row {int(self.rows[i])}, column {column!r}")

    def first(self, bad: np.ndarray, reason: str, column: str, positions: np.ndarray | None = None) -> None:
        """Raises for the first ``bad`` row; ``bad`` covers ``positions`` (default: every row)."""
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise self.fail(reason, i if positions is None else int(positions[i]), column)

    def text(self, df: pd.DataFrame, column: str, required: bool) -> _Text:
        """A text column, factorised (ids are matched unstripped; blanks become missing)."""
        if column not in df.columns:
            return _Text(np.full(len(df), -1, dtype=np.int64), [])
        # factorise first: distinct values are few, so per-value Python work stays small
        try:
            codes, uniques = pd.factorize(df[column])
        except TypeError:  # unhashable cells (lists, mappings)
            kinds = np.array(
                [isinstance(v, str | int | np.integer) or is_blank(v) for v in df[column]], dtype=bool
            )
            self.first(~kinds, "expected text", column)
            raise
        distinct = list(uniques)
        bad = [not isinstance(v, str | int | np.integer) for v in distinct]
        if any(bad):
            raise self.fail("expected text", int(np.argmax(codes == bad.index(True))), column)
        strip = column != "item_id"
        text = [(v.strip() if strip else v) if isinstance(v, str) else str(v) for v in distinct]
        # stripping may merge values and blank ones become missing: factorise the texts again
        tcodes, tuniques = pd.factorize(
            np.array([t if t.strip() else None for t in text] + [None], dtype=object)
        )
        unchanged = df[column].dtype == _DEFAULT_STR and text == distinct and all(t.strip() for t in text)
        out = _Text(tcodes[codes], list(tuniques), df[column].array if unchanged else None)
        if required:
            self.first(out.codes < 0, "missing value", column)
        return out


def _json(value: Any, kind: type | tuple[type, ...]) -> Any:
    """A list/mapping cell; CSV cells and string-typed columns hold it as JSON text. ``None`` if not one."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, tuple):
        value = list(value)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value if isinstance(value, kind) else None


def _response(value: Any) -> Any:
    """Text, a list of texts (n generations; JSON text in CSV) or, for log-probs, a mapping or list."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, str) and value.lstrip().startswith("["):
        decoded = _json(value, list)
        if decoded and all(isinstance(x, str) for x in decoded):
            return decoded
    return value


def _hashable(value: Any) -> Hashable:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple((str(k), _hashable(v)) for k, v in value.items())
    return value


def _groups_by_item(surveys: Mapping[str, Survey]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for name, survey in surveys.items():
        for d in survey.distributions:
            out.setdefault((name, d.item_id), []).append((d.attribute, d.group))
    return out


def _find_item(surveys: Mapping[str, Survey], dataset: str, item_id: str) -> Item | str:
    survey = surveys.get(dataset)
    if survey is None:
        return f"unknown dataset {dataset!r} (loaded: {', '.join(surveys)})"
    item = survey.items.get(item_id) or survey.items.get(item_id.strip())
    return item if item is not None else f"unknown item {item_id[:80]!r} in dataset {dataset!r}"


def _check_group(
    known: list[tuple[str, str]], attribute: str | None, group: str | None
) -> tuple[str, str] | None:
    """``None`` when fine, else (column, reason)."""
    if group is None:
        return None if attribute is None else ("group", f"attribute {attribute!r} given without a group")
    hits = [(a, g) for a, g in known if g == group and attribute in (None, a)]
    if not hits:
        named = f"{attribute}={group}" if attribute else group
        choices = ", ".join(f"{a}={g}" for a, g in known)
        return "group", f"group {named!r} not evaluated on this item (known: {choices})"
    return ("attribute", f"group {group!r} is ambiguous; give its attribute") if len(hits) > 1 else None


def _shown(value: Any, item: Item) -> list[int] | str:
    """Indices into the item's options of the options as shown to the model, or a reason."""
    if not isinstance(value, list | tuple | np.ndarray) and is_blank(value):
        return list(range(item.n_options))
    labels = _json(value, list)
    if labels is None:
        return "options must be a list of labels"
    out: list[int] = []
    for label in labels:
        if not isinstance(label, str):
            return f"option {label!r} is not a label"
        try:
            out.append(item.option_index(label))
        except KeyError:
            return f"option {label!r} is not an option of item {item.id[:80]!r}"
    if len(set(out)) != len(out) or len(out) < 2:
        return "options must name at least two distinct options"
    return out


def _mapping_probs(mapping: Mapping[Any, Any], item: Item, shown: list[int]) -> np.ndarray | str:
    """A label -> p or letter -> p mapping over the item's options (labels win over letters)."""
    letters = dict(zip(letters_for(len(shown)), shown, strict=True))
    out = np.zeros(item.n_options)
    for key, p in mapping.items():
        try:
            idx = item.option_index(str(key))
        except KeyError:
            idx = letters.get(str(key).strip().upper())
        if idx is None:
            return f"{key!r} is neither an option label nor a shown letter"
        if isinstance(p, bool) or not isinstance(p, int | float | np.integer | np.floating):
            return f"{p!r} is not a number"
        out[idx] = float(p)
    return out


def _items(
    check: _Checker, surveys: Mapping[str, Survey], col: Mapping[str, _Text], attribute: _Text, group: _Text
) -> tuple[np.ndarray, list[Item]]:
    """Per row, the code of its (dataset, item) among the items found; items and groups are checked once
    per distinct combination, not per row."""
    dataset, item_id = col["dataset"], col["item_id"]
    codes, first = _combine(dataset.codes, item_id.codes)
    found = [
        _find_item(surveys, dataset.uniques[dataset.codes[i]], item_id.uniques[item_id.codes[i]])
        for i in first
    ]
    for i, item in zip(first, found, strict=True):
        if isinstance(item, str):
            raise check.fail(item, int(i), "dataset" if item.startswith("unknown dataset") else "item_id")
    items: list[Item] = found  # type: ignore[assignment]
    groups_by_item = _groups_by_item(surveys)
    attrs, groups = np.array([*attribute.uniques, None]), np.array([*group.uniques, None])
    for i in _combine(codes, attribute.codes, group.codes)[1]:
        known = groups_by_item.get((dataset.uniques[dataset.codes[i]], items[codes[i]].id), [])
        problem = _check_group(known, attrs[attribute.codes[i]], groups[group.codes[i]])
        if problem is not None:
            raise check.fail(problem[1], int(i), problem[0])
    return codes, items


def _list_probs(
    check: _Checker, probs: np.ndarray, rows: np.ndarray, lists: np.ndarray, n_opts: np.ndarray
) -> tuple[int, str] | None:
    """Writes plain lists aligned with their item's options into ``probs`` in bulk; else the first
    problem as (row, reason)."""
    lens = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    wrong = np.flatnonzero(lens != n_opts)
    if wrong.size:
        j = wrong[0]
        return int(rows[j]), f"{lens[j]} probabilities for {n_opts[j]} options"
    try:
        flat = np.fromiter(chain.from_iterable(lists), dtype=float, count=int(lens.sum()))
    except (TypeError, ValueError):
        for j, v in zip(rows, lists, strict=True):
            if any(isinstance(x, bool) or not isinstance(x, int | float) for x in v):
                raise check.fail(f"{v!r} is not a list of numbers", int(j), "probs") from None
        raise
    starts = np.cumsum(lens) - lens
    probs[np.repeat(rows, lens), np.arange(flat.size) - np.repeat(starts, lens)] = flat
    return None


def _other_probs(
    check: _Checker,
    probs: np.ndarray,
    rows: np.ndarray,
    values_in: np.ndarray,
    items: np.ndarray,
    shown_rows: Mapping[int, list[int]],
) -> tuple[int, str] | None:
    """Mappings, JSON text and custom option orders, row by row (then written in blocks of equal
    options); else the first problem as (row, reason)."""
    blocks: dict[tuple[int, ...], tuple[list[int], list[Any]]] = {}
    for i in rows.tolist():
        value = values_in[i] if type(values_in[i]) is list else _json(values_in[i], (list, dict))
        if value is None:
            return i, "probs must be a list of numbers or a mapping option -> number"
        shown = shown_rows.get(i)
        if isinstance(value, dict):
            vec = _mapping_probs(value, items[i], shown or list(range(items[i].n_options)))
            if isinstance(vec, str):
                return i, vec
            value, shown = vec.tolist(), None
        width_i = items[i].n_options if shown is None else len(shown)
        if len(value) != width_i:
            return i, f"{len(value)} probabilities for {width_i} options"
        idx, values = blocks.setdefault(tuple(range(width_i)) if shown is None else tuple(shown), ([], []))
        idx.append(i)
        values.append(value)
    for shown_t, (idx, values) in blocks.items():
        try:
            block = np.array(values, dtype=float)
        except (TypeError, ValueError):
            for j, v in zip(idx, values, strict=True):
                if any(isinstance(x, bool) or not isinstance(x, int | float) for x in v):
                    raise check.fail(f"{v!r} is not a list of numbers", j, "probs") from None
            raise
        probs[np.ix_(idx, np.array(shown_t))] = block
    return None


def _normalise(check: _Checker, probs: np.ndarray, rows: np.ndarray) -> None:
    """Checks the given rows of probabilities and renormalises each."""
    block = probs if rows.size == len(probs) else probs[rows]
    bad = (~np.isfinite(block) | (block < 0)).any(axis=1)
    check.first(bad, "probabilities must be finite and non-negative", "probs", rows)
    total = block.sum(axis=1, keepdims=True)
    check.first(total[:, 0] <= 0, "probabilities sum to zero", "probs", rows)
    block /= total
    if block is not probs:
        probs[rows] = block


def resolve_predictions(
    df: pd.DataFrame,
    surveys: Mapping[str, Survey],
    source: str | Path | None = None,
    width: int | None = None,
) -> Resolved:
    """Validate every row (raising ``InputError`` naming file, row and column before any parsing), then
    parse the responses. Rows are checked in bulk: text columns are factorised, items and groups are
    checked per distinct combination, plain probability lists are read in one pass; only mappings,
    JSON text, custom option orders and responses are handled row by row."""
    if "item_id" not in df.columns and "item" in df.columns:
        df = df.rename(columns={"item": "item_id"})
    missing = [c for c in KEYS if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", file=source, where="header")
    if "probs" not in df.columns and "response" not in df.columns:
        raise InputError("needs a 'probs' or a 'response' column", file=source, where="header")
    n = len(df)
    rows = df["row"].to_numpy() if "row" in df.columns else np.arange(1, n + 1)
    check = _Checker(source, rows)
    col = {c: check.text(df, c, required=True) for c in KEYS}
    attribute, group = check.text(df, "attribute", False), check.text(df, "group", False)
    probs_in, has_probs, is_list = _cells(df, "probs")
    response_in, has_response, _ = _cells(df, "response")
    options_in, has_options, _ = _cells(df, "options")

    k = width or max((it.n_options for s in surveys.values() for it in s.items.values()), default=0)
    probs = np.zeros((n, k))
    parsed = np.zeros(n, dtype=bool)
    n_total, n_valid = np.ones(n, dtype=int), np.ones(n, dtype=int)

    codes, found = _items(check, surveys, col, attribute, group)
    items = np.array([*found, None], dtype=object)[codes]
    n_opts = np.array([it.n_options for it in found], dtype=int)[codes]

    # options as shown (rare): rows with a custom order or subset
    shown_rows: dict[int, list[int]] = {}
    shown_cache: dict[tuple[int, Hashable], list[int] | str] = {}
    for i in np.flatnonzero(has_options).tolist():
        key = (codes[i], _hashable(options_in[i]))
        if key not in shown_cache:
            shown_cache[key] = _shown(options_in[i], items[i])
        if isinstance(shown_cache[key], str):
            raise check.fail(shown_cache[key], i, "options")
        shown_rows[i] = shown_cache[key]

    check.first(~has_probs & ~has_response, "neither probs nor response given", "probs")
    method = col["method"]
    known = np.array([m in PARSERS for m in method.uniques], dtype=bool)
    no_parser = ~has_probs & ~known[method.codes]
    if no_parser.any():
        i = int(np.flatnonzero(no_parser)[0])
        name = method.uniques[method.codes[i]]
        raise check.fail(f"no parser for method {name!r} (known: {', '.join(sorted(PARSERS))})", i, "method")

    # probs: plain lists over the item's options in bulk; everything else row by row
    bulk = has_probs & is_list
    bulk[list(shown_rows)] = False
    bulk_rows, other_rows = np.flatnonzero(bulk), np.flatnonzero(has_probs & ~bulk)
    problems = [
        _other_probs(check, probs, other_rows, probs_in, items, shown_rows),
        _list_probs(check, probs, bulk_rows, probs_in[bulk_rows], n_opts[bulk_rows]),
    ]
    first_problem = min((p for p in problems if p is not None), default=None)
    if first_problem is not None:
        raise check.fail(first_problem[1], first_problem[0], "probs")
    _normalise(check, probs, np.flatnonzero(has_probs))
    parsed[has_probs] = True

    status, detail = _Text(np.zeros(n, dtype=np.int64), ["ok"]), _Text(np.zeros(n, dtype=np.int64), ["probs"])
    if not has_probs.all():
        status, detail = _parse_responses(
            probs, parsed, n_total, n_valid, method.values, items, shown_rows, response_in, ~has_probs
        )

    meta = pd.DataFrame(
        {
            "row": rows,
            **{c: col[c].column() for c in ("model", "method", "steering", "dataset")},
            "item_id": _Text.of(np.array([it.id for it in found], dtype=object)).recoded(codes).column(),
            "attribute": attribute.column(),
            "group": group.column(),
            "status": status.column(),
            "detail": detail.column(),
            "n_total": n_total,
            "n_valid": n_valid,
        }
    )
    return Resolved(meta=meta, probs=probs, parsed=parsed)


def _parse_responses(
    probs: np.ndarray,
    parsed: np.ndarray,
    n_total: np.ndarray,
    n_valid: np.ndarray,
    methods: np.ndarray,
    items: np.ndarray,
    shown_rows: Mapping[int, list[int]],
    response_in: np.ndarray,
    todo: np.ndarray,
) -> tuple[_Text, _Text]:
    """Parses the responses of the ``todo`` rows (all rows are valid: parsing starts only now) into
    ``probs``, ``parsed`` and the counts; returns the status and detail columns."""
    status = np.full(len(probs), "ok", dtype=object)
    detail = np.full(len(probs), "probs", dtype=object)
    cache: dict[tuple[str, Hashable, tuple[str, ...]], Any] = {}
    for i in np.flatnonzero(todo).tolist():
        item, response = items[i], _response(response_in[i])
        shown = shown_rows.get(i, list(range(item.n_options)))
        labels = tuple(item.options[j] for j in shown)
        key = (methods[i], _hashable(response), labels)
        p = cache.get(key)
        if p is None:
            p = cache[key] = parse_response(methods[i], response, letters_for(len(shown)), labels)
        status[i], detail[i], n_total[i], n_valid[i] = p.status, p.detail, p.n_total, p.n_valid
        if p.probs is not None:
            probs[i, shown] = p.probs
            parsed[i] = True
    return _Text.of(status), _Text.of(detail)


def datasets_in(df: pd.DataFrame, source: str | Path | None = None) -> list[str]:
    """The dataset names a predictions table refers to (to know which surveys to load)."""
    if "dataset" not in df.columns:
        raise InputError("missing column(s) dataset", file=source, where="header")
    return sorted({str(v).strip() for v in df["dataset"] if not is_blank(v)})


__all__ = ["META_COLUMNS", "Resolved", "datasets_in", "read_predictions", "resolve_predictions"]
