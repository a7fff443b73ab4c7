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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from distalign.errors import InputError
from distalign.methods.parsers import PARSERS, parse_response
from distalign.survey.model import Item, Survey

KEYS: tuple[str, ...] = ("model", "method", "steering", "dataset", "item_id")
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


class _Checker:
    """Validation with messages naming the file, the 1-based row and the column."""

    def __init__(self, source: str | Path | None, rows: np.ndarray) -> None:
        self.source, self.rows = source, rows

    def fail(self, reason: str, i: int, column: str) -> InputError:
        return InputError(reason, file=self.source, where=f"row {int(self.rows[i])}, column {column!r}")

    def first(self, bad: np.ndarray, reason: str, column: str) -> None:
        if bad.any():
            raise self.fail(reason, int(np.flatnonzero(bad)[0]), column)

    def text(self, df: pd.DataFrame, column: str, required: bool) -> np.ndarray:
        """A text column as an object array with ``None`` for blanks (ids are matched unstripped)."""
        if column not in df.columns:
            return np.full(len(df), None, dtype=object)
        # factorise first: distinct values are few, so per-value Python work stays small
        try:
            codes, uniques = pd.factorize(df[column].to_numpy(dtype=object))
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
        out = np.array([t if t.strip() else None for t in text] + [None], dtype=object)[codes]
        if required:
            self.first(np.equal(out, None), "missing value", column)
        return out

    def number_block(self, block: np.ndarray, idx: list[int]) -> np.ndarray:
        """Checks a (rows, options) block of probabilities and renormalises each row."""
        bad = ~np.isfinite(block) | (block < 0)
        self.first_of(bad.any(axis=1), idx, "probabilities must be finite and non-negative")
        total = block.sum(axis=1, keepdims=True)
        self.first_of(total[:, 0] <= 0, idx, "probabilities sum to zero")
        return block / total

    def first_of(self, bad: np.ndarray, idx: list[int], reason: str) -> None:
        if bad.any():
            raise self.fail(reason, idx[int(np.flatnonzero(bad)[0])], "probs")


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


def resolve_predictions(
    df: pd.DataFrame,
    surveys: Mapping[str, Survey],
    source: str | Path | None = None,
    width: int | None = None,
) -> Resolved:
    """Validate every row (raising ``InputError`` naming file, row and column before any parsing), then
    parse the responses. Rows are checked in bulk; only dictionary lookups run per row."""
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
    empty = np.full(n, None, dtype=object)
    probs_in = df["probs"].to_numpy(dtype=object) if "probs" in df.columns else empty
    response_in = df["response"].to_numpy(dtype=object) if "response" in df.columns else empty
    options_in = df["options"].to_numpy(dtype=object) if "options" in df.columns else empty

    k = width or max((it.n_options for s in surveys.values() for it in s.items.values()), default=0)
    probs = np.zeros((n, k))
    parsed = np.zeros(n, dtype=bool)
    status = np.full(n, "ok", dtype=object)
    detail = np.full(n, "probs", dtype=object)
    n_total, n_valid = np.ones(n, dtype=int), np.ones(n, dtype=int)

    # items and groups: checked once per distinct combination, not per row
    codes, combos = pd.factorize(
        pd.Series(list(zip(col["dataset"], col["item_id"], strict=True)), dtype=object)
    )
    found = [_find_item(surveys, ds, iid) for ds, iid in combos]
    for c, item in enumerate(found):
        if isinstance(item, str):
            column = "dataset" if item.startswith("unknown dataset") else "item_id"
            raise check.fail(item, int(np.argmax(codes == c)), column)
    items = np.array(found + [None], dtype=object)[codes]
    item_ids = np.array([it.id for it in found], dtype=object)[codes]
    n_opts = np.array([it.n_options for it in found], dtype=int)[codes]
    groups_by_item = _groups_by_item(surveys)
    gkeys = pd.Series(list(zip(col["dataset"], item_ids, attribute, group, strict=True)), dtype=object)
    gcodes, gcombos = pd.factorize(gkeys)
    for c, (ds, iid, attr, grp) in enumerate(gcombos):
        problem = _check_group(groups_by_item.get((ds, iid), []), attr, grp)
        if problem is not None:
            raise check.fail(problem[1], int(np.argmax(gcodes == c)), problem[0])

    # options as shown (rare): rows with a custom order or subset
    shown_rows: dict[int, list[int]] = {}
    shown_cache: dict[tuple[str, str, Hashable], list[int] | str] = {}
    for i in np.flatnonzero(
        [isinstance(v, list | tuple | np.ndarray) or not is_blank(v) for v in options_in]
    ):
        key = (col["dataset"][i], item_ids[i], _hashable(options_in[i]))
        if key not in shown_cache:
            shown_cache[key] = _shown(options_in[i], items[i])
        if isinstance(shown_cache[key], str):
            raise check.fail(shown_cache[key], int(i), "options")
        shown_rows[int(i)] = shown_cache[key]

    has_probs = np.array(
        [isinstance(v, list | dict | np.ndarray) or not is_blank(v) for v in probs_in], dtype=bool
    )
    has_response = np.array(
        [isinstance(v, list | np.ndarray) or not is_blank(v) for v in response_in], dtype=bool
    )
    check.first(~has_probs & ~has_response, "neither probs nor response given", "probs")
    methods = col["method"]
    no_parser = ~has_probs & ~np.isin(methods, list(PARSERS))
    if no_parser.any():
        i = int(np.flatnonzero(no_parser)[0])
        raise check.fail(
            f"no parser for method {methods[i]!r} (known: {', '.join(sorted(PARSERS))})", i, "method"
        )

    # probs: lists are checked in blocks of equal width; mappings and custom option orders row by row
    blocks: dict[tuple[int, ...], tuple[list[int], list[Any]]] = {}
    for i in np.flatnonzero(has_probs).tolist():
        value = probs_in[i] if type(probs_in[i]) is list else _json(probs_in[i], (list, dict))
        if value is None:
            raise check.fail("probs must be a list of numbers or a mapping option -> number", i, "probs")
        shown = shown_rows.get(i)
        if isinstance(value, dict):
            vec = _mapping_probs(value, items[i], shown or list(range(n_opts[i])))
            if isinstance(vec, str):
                raise check.fail(vec, i, "probs")
            value, shown = vec.tolist(), None
        width_i = n_opts[i] if shown is None else len(shown)
        if len(value) != width_i:
            raise check.fail(f"{len(value)} probabilities for {width_i} options", i, "probs")
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
        probs[np.ix_(idx, np.array(shown_t))] = check.number_block(block, idx)
        parsed[idx] = True
    responses = [
        (i, items[i], shown_rows.get(i, list(range(n_opts[i]))), _response(response_in[i]))
        for i in np.flatnonzero(~has_probs).tolist()
    ]

    cache: dict[tuple[str, Hashable, tuple[str, ...]], Any] = {}
    for i, item, shown, response in responses:  # all rows are valid: parsing starts only now
        labels = tuple(item.options[j] for j in shown)
        key = (col["method"][i], _hashable(response), labels)
        p = cache.get(key)
        if p is None:
            p = cache[key] = parse_response(col["method"][i], response, letters_for(len(shown)), labels)
        status[i], detail[i], n_total[i], n_valid[i] = p.status, p.detail, p.n_total, p.n_valid
        if p.probs is not None:
            probs[i, shown] = p.probs
            parsed[i] = True

    meta = pd.DataFrame(
        {
            "row": rows,
            **{c: col[c] for c in ("model", "method", "steering", "dataset")},
            "item_id": item_ids,
            "attribute": attribute,
            "group": group,
            "status": status,
            "detail": detail,
            "n_total": n_total,
            "n_valid": n_valid,
        }
    )
    return Resolved(meta=meta, probs=probs, parsed=parsed)


def datasets_in(df: pd.DataFrame, source: str | Path | None = None) -> list[str]:
    """The dataset names a predictions table refers to (to know which surveys to load)."""
    if "dataset" not in df.columns:
        raise InputError("missing column(s) dataset", file=source, where="header")
    return sorted({str(v).strip() for v in df["dataset"] if not is_blank(v)})


__all__ = ["META_COLUMNS", "Resolved", "datasets_in", "read_predictions", "resolve_predictions"]
