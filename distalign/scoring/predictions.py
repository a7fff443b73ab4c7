"""Predictions from any source (a sweep, another tool, human annotators), read and checked against the
surveys before anything is scored.

One row per model x method x steering x dataset x item x attribute x group, with either ``probs`` (a list
over the options, or a mapping label/letter -> p) or a raw ``response`` that the method's parser reads;
the columns and rules are in ``PREDICTIONS_FORMAT.md`` beside this module. Errors name the file, the
1-based data row and the column. Real files (the benchmark release's own outputs) also hold rows for groups
the benchmark does not evaluate, log-p rows with no mass on any option and repeated rows: the ``strict``
and ``unique`` switches of :func:`resolve_predictions` say whether those are errors or are skipped, scored
as failed extractions and counted once, with one :class:`PredictionsWarning` each.

Rows are checked one by one in three passes, each over every row before the next starts: which
prediction a row is (its keys, item and group), then what it says (options, probabilities), then, only
when every row is valid, the responses are parsed. Each check of a value that repeats over the rows
(a dataset, an item, a group, a list of options, a parser setting, a response) runs once per distinct
value.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from distalign.errors import InputError
from distalign.methods.registry import PARSERS, get_method
from distalign.survey.model import Item, Survey
from distalign.survey.parsing import read_jsonl, table_kind

KEYS: tuple[str, ...] = ("model", "method", "steering", "dataset", "item_id")
#: what makes two rows the same prediction
IDENTITY: tuple[str, ...] = (*KEYS, "attribute", "group")
#: the cells a row may carry besides its identity (``probs`` is read as ``given``)
VALUES: tuple[str, ...] = ("probs", "response", "options", "method_params", "letters")
META_COLUMNS: tuple[str, ...] = (
    "row", "model", "method", "steering", "dataset", "item_id", "attribute", "group",
    "status", "detail", "n_total", "n_valid",
)  # fmt: skip
NO_MASS = "no probability mass (all zero, NaN or null)"
#: how many examples a warning names
EXAMPLES = 3

#: ``progress(done, total)``, called now and then while responses are parsed
Progress = Callable[[int, int], None]


class PredictionsWarning(UserWarning):
    """Rows of a predictions file left out (no human distribution) or merged (repeated), not errors."""


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
    kind = table_kind(path, "predictions")
    if not path.is_file():
        raise InputError("file not found", file=path)
    try:
        if kind == "jsonl":
            df = pd.DataFrame.from_records([obj for _, obj in read_jsonl(path, count="row")])
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


@dataclass(frozen=True)
class Resolved:
    """Validated predictions, columnar: ``meta`` (``META_COLUMNS``) and ``probs`` (n, K), each row over
    its *dataset's* options, zero-padded; ``parsed`` is False where no distribution could be read.
    ``skipped`` counts input rows left out: ``no_human`` (no human distribution for the row's item and
    group) and ``duplicate`` (an identical repeat of an earlier row)."""

    meta: pd.DataFrame
    probs: np.ndarray
    parsed: np.ndarray
    skipped: Mapping[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.meta)


@dataclass(slots=True)
class _Row:
    """One row that names an evaluated prediction: its number in the file, keys, item and cells (blank
    cells are ``None``)."""

    number: int
    keys: tuple[str | None, ...]
    item: Item
    given: Any  # the probs cell as given
    response: Any
    options: Any
    method_params: Any
    letters: Any
    shown: list[int] | None = None  # the item's options in the order shown, when the row says so
    probs: list[float] | None = None  # read from ``given``
    at: list[int] | None = None  # the item's option index of each of ``probs``
    status: str = "ok"
    detail: str = "probs"
    n_total: int = 1
    n_valid: int = 1


def _given(value: Any) -> Any:
    """A cell's value (Parquet's arrays as lists), or ``None`` when it is blank."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return None if is_blank(value) else value


def _json(value: Any, kind: type | tuple[type, ...]) -> Any:
    """A list/mapping cell; CSV cells and string-typed columns hold it as JSON text. ``None`` if not one."""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value if isinstance(value, kind) else None


def _key(value: Any) -> str:
    """A cell's value as text, to find repeated values."""
    return value if isinstance(value, str) else repr(value)


def _response(value: Any) -> Any:
    """Text, a list of texts (n generations; JSON text in CSV) or, for log-probs, a mapping or list."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        decoded = _json(value, list)
        if decoded and all(isinstance(x, str) for x in decoded):
            return decoded
    return value


class _Checker:
    """Checks rows against the surveys, once per distinct value; errors and warnings name the file, the
    1-based data row and the column."""

    def __init__(self, surveys: Mapping[str, Survey], source: str | Path | None, strict: bool) -> None:
        self.surveys, self.source, self.strict = surveys, source, strict
        self.known: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for name, survey in surveys.items():
            for d in survey.distributions:
                self.known.setdefault((name, d.item_id), []).append((d.attribute, d.group))
        self.texts: dict[tuple[str, Any], str | None] = {}
        self.items: dict[tuple[str, str], Item | tuple[str, str]] = {}
        self.verdicts: dict[tuple[str, str, str | None, str | None], str | None] = {}
        self.shown: dict[tuple[str, str], list[int] | str] = {}
        self.skipped: list[str] = []  # examples of rows without a human distribution

    def error(self, reason: str, number: int, column: str) -> InputError:
        return InputError(reason, file=self.source, where=f"row {number}, column {column!r}")

    def warn(self, message: str) -> None:
        prefix = f"{self.source}: " if self.source is not None else ""
        warnings.warn(prefix + message, PredictionsWarning, stacklevel=4)

    def text(self, value: Any, column: str, number: int) -> str | None:
        """A key cell as text: stripped (item ids are kept exactly as given), blanks ``None``."""
        try:
            return self.texts[column, value]
        except (KeyError, TypeError):  # new, or unhashable (a list or a mapping: an error)
            if not (isinstance(value, str | int | np.integer) or is_blank(value)):
                raise self.error("expected text", number, column) from None
            text = None if is_blank(value) else str(value) if column == "item_id" else str(value).strip()
            self.texts[column, value] = text
            return text

    def item(self, dataset: str, item_id: str, number: int) -> Item:
        if (dataset, item_id) not in self.items:
            survey = self.surveys.get(dataset)
            if survey is None:
                found: Item | tuple[str, str] = (
                    "dataset", f"unknown dataset {dataset!r} (loaded: {', '.join(self.surveys)})"
                )  # fmt: skip
            else:
                item = survey.items.get(item_id) or survey.items.get(item_id.strip())
                found = item or ("item_id", f"unknown item {item_id[:80]!r} in dataset {dataset!r}")
            self.items[dataset, item_id] = found
        found = self.items[dataset, item_id]
        if isinstance(found, tuple):
            raise self.error(found[1], number, found[0])
        return found

    def evaluated(self, dataset: str, item: Item, attribute: str | None, group: str | None, n: int) -> bool:
        """Whether the row names an evaluated group (or none); a row naming an attribute and a group with
        no human distribution on its item is skipped (an error with ``strict``)."""
        key = (dataset, item.id, attribute, group)
        if key not in self.verdicts:
            self.verdicts[key] = self._verdict(self.known.get((dataset, item.id), []), attribute, group)
            if self.verdicts[key] == "skip" and len(self.skipped) < EXAMPLES:
                self.skipped.append(f"row {n} ({dataset}, {attribute}={group})")
        verdict = self.verdicts[key]
        if verdict is None or verdict == "skip":
            return verdict is None
        raise self.error(verdict, n, "attribute" if verdict.endswith("give its attribute") else "group")

    def _verdict(self, known: list[tuple[str, str]], attribute: str | None, group: str | None) -> str | None:
        """``None`` when the row names an evaluated group (or none), ``"skip"`` when it names an attribute
        and a group with no human distribution on this item, else the reason it is an error."""
        if group is None:
            return None if attribute is None else f"attribute {attribute!r} given without a group"
        hits = [(a, g) for a, g in known if g == group and attribute in (None, a)]
        if len(hits) > 1:
            return f"group {group!r} is ambiguous; give its attribute"
        if hits:
            return None
        if attribute is not None and not self.strict:
            return "skip"
        named = f"{attribute}={group}" if attribute else group
        choices = ", ".join(f"{a}={g}" for a, g in known)
        return f"group {named!r} not evaluated on this item (known: {choices})"

    def options(self, row: _Row) -> list[int] | None:
        """The item's options in the order the row says they were shown (``None``: the item's order)."""
        value = row.options
        if value is None:
            return None
        key = (row.item.id, _key(value))
        if key not in self.shown:
            self.shown[key] = _shown(value, row.item)
        shown = self.shown[key]
        if isinstance(shown, str):
            raise self.error(shown, row.number, "options")
        return shown


def _shown(value: Any, item: Item) -> list[int] | str:
    """Indices into the item's options of the options as shown to the model, or a reason."""
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


def _not_a_number(value: Any) -> str | None:
    """What a probability that is neither a number nor null is instead, for the error message. Booleans
    are not numbers, nor is text that looks like one."""
    if value is None or type(value) in (float, int):
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, bool | np.bool_):
        return f"{value!r}, a boolean, not a number"
    if isinstance(value, str):
        return f"{value!r}, a text, not a number (write numbers without quotes)"
    return f"{value!r}, a {type(value).__name__}, not a number"


def _probs(value: Any, item: Item, shown: list[int] | None) -> tuple[list[float], list[int]] | str:
    """One probs cell (a list in the shown order, a mapping label/letter -> p, or JSON text of either)
    as numbers (null is NaN) and the item's option index of each, or the reason it is not one."""
    value = _json(value, (list, dict))
    if value is None:
        return "probs must be a list of numbers or a mapping option -> number"
    idx = shown or list(range(item.n_options))
    if isinstance(value, dict):  # labels win over the letters shown
        letters = dict(zip(letters_for(len(idx)), idx, strict=True))
        values: list[Any] = []
        idx = []
        for key, p in value.items():
            try:
                idx.append(item.option_index(str(key)))
            except KeyError:
                if str(key).strip().upper() not in letters:
                    return f"{key!r} is neither an option label nor a shown letter"
                idx.append(letters[str(key).strip().upper()])
            if (kind := _not_a_number(p)) is not None:
                return f"the probability of {key!r} is {kind}"
            values.append(p)
    else:
        if len(value) != len(idx):
            return f"{len(value)} probabilities for {len(idx)} options"
        values = value
        for position, x in enumerate(values, start=1):
            if (kind := _not_a_number(x)) is not None:
                return f"probability {position} of {len(values)} is {kind}"
    return [math.nan if x is None else float(x) for x in values], idx


def _normalise(probs: np.ndarray, checker: _Checker, numbers: list[int]) -> np.ndarray:
    """Renormalises the rows in place (each divided by its largest value first, so that huge values do
    not overflow); returns the rows with no mass on any option (all zero, NaN or null: a failed
    extraction, an error with ``strict``). NaN counts as 0 only where nothing else is positive."""
    with np.errstate(invalid="ignore"):
        nan = np.isnan(probs)
        filled = np.where(nan, 0.0, probs)
        peak = filled.max(axis=1, initial=0.0)
        bad = (filled < 0).any(axis=1) | np.isinf(peak) | (nan.any(axis=1) & (peak > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise checker.error("probabilities must be finite and non-negative", numbers[i], "probs")
    filled /= np.where(peak > 0, peak, 1.0)[:, None]
    total = filled.sum(axis=1)
    no_mass = total == 0
    if checker.strict and no_mass.any():
        i = int(np.argmax(no_mass))
        raise checker.error(f"probabilities sum to zero: {NO_MASS}", numbers[i], "probs")
    probs[:] = filled / np.where(no_mass, 1.0, total)[:, None]
    return no_mass


def _letters(value: Any, n: int, checker: _Checker, number: int) -> list[str]:
    """A row's answer keys as shown (e.g. ``["1", "2", "3"]``): one distinct text per shown option."""
    letters = _json(value, list)
    if letters is None or len(letters) != n or not all(isinstance(x, str) and x.strip() for x in letters):
        raise checker.error(f"letters must be a list of {n} texts, one per option shown", number, "letters")
    if len(set(letters)) != n:
        raise checker.error("letters must be distinct", number, "letters")
    return letters


def _differs(a: _Row, b: _Row, probs_a: np.ndarray, probs_b: np.ndarray) -> str | None:
    """The column where two rows of one prediction differ, if any."""
    if (a.probs is None) != (b.probs is None):
        return "probs"
    if a.probs is not None:
        return None if np.allclose(probs_a, probs_b, rtol=0, atol=1e-12) else "probs"
    for column in ("response", "method_params"):
        if _key(getattr(a, column)) != _key(getattr(b, column)):
            return column
    return None if a.shown == b.shown else "options"


def _unique(rows: list[_Row], probs: np.ndarray, checker: _Checker) -> list[bool]:
    """Which rows to keep when each (model, ..., group) must be one prediction: a repeat with the same
    values counts once (one warning; an error with ``strict``), a repeat with other values is an error
    naming both rows."""
    first: dict[tuple[str | None, ...], int] = {}
    keep = [True] * len(rows)
    examples: list[str] = []
    for i, row in enumerate(rows):
        j = first.setdefault(row.keys, i)
        if j == i:
            continue
        earlier, column = rows[j].number, _differs(rows[j], row, probs[j], probs[i])
        if column is not None:
            reason = f"conflicts with row {earlier}: same {', '.join(IDENTITY)} but another {column}"
            raise checker.error(reason, row.number, column)
        if checker.strict:
            reason = f"repeats row {earlier} (same prediction, same values)"
            raise checker.error(reason, row.number, "item_id")
        keep[i] = False
        examples.append(f"row {row.number} repeats row {earlier}")
    if examples:
        checker.warn(
            f"counted {len(examples):,} repeated row(s) once (same prediction, same values), e.g. "
            f"{examples[0]}; --strict makes them errors"
        )
    return keep


def _header(df: pd.DataFrame, source: str | Path | None) -> pd.DataFrame:
    if "item_id" not in df.columns and "item" in df.columns:
        df = df.rename(columns={"item": "item_id"})
    missing = [c for c in KEYS if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", file=source, where="header")
    if "probs" not in df.columns and "response" not in df.columns:
        raise InputError("needs a 'probs' or a 'response' column", file=source, where="header")
    return df.reset_index(drop=True)


def _rows(df: pd.DataFrame, checker: _Checker) -> tuple[list[_Row], int]:
    """The rows naming an evaluated prediction, and how many were skipped (no human distribution)."""
    numbers = df["row"].tolist() if "row" in df.columns else range(1, len(df) + 1)
    columns = [df[c].tolist() if c in df.columns else [None] * len(df) for c in (*IDENTITY, *VALUES)]
    out: list[_Row] = []
    skipped = 0
    for number, *values in zip(numbers, *columns, strict=True):
        keys = [checker.text(v, c, number) for c, v in zip(IDENTITY, values, strict=False)]
        for column, key in zip(KEYS, keys, strict=False):
            if key is None:
                raise checker.error("missing value", number, column)
        dataset, item_id, attribute, group = keys[3:]
        item = checker.item(dataset, item_id, number)
        keys[4] = item.id  # as the survey spells it
        if not checker.evaluated(dataset, item, attribute, group, number):
            skipped += 1
            continue
        out.append(_Row(number, tuple(keys), item, *map(_given, values[len(IDENTITY) :])))
    if skipped:
        checker.warn(
            f"skipped {skipped:,} row(s) whose item and group have no human distribution (groups the "
            f"benchmark does not evaluate), e.g. {', '.join(checker.skipped)}; --strict makes them errors"
        )
    if not out:
        raise InputError("nothing to score: every row was skipped (see the warning)", file=checker.source)
    return out, skipped


def _values(row: _Row, checker: _Checker) -> None:
    """Checks what a row says (options, probs or a response with a parser) and reads its probs."""
    row.shown = checker.options(row)
    probs, method = row.given, row.keys[1]
    if probs is None:
        if row.response is None:
            raise checker.error("neither probs nor response given", row.number, "probs")
        if method not in PARSERS:
            known = ", ".join(sorted(PARSERS))
            raise checker.error(f"no parser for method {method!r} (known: {known})", row.number, "method")
        return
    read = _probs(probs, row.item, row.shown)
    if isinstance(read, str):
        raise checker.error(read, row.number, "probs")
    row.probs, row.at = read


def resolve_predictions(
    df: pd.DataFrame,
    surveys: Mapping[str, Survey],
    source: str | Path | None = None,
    width: int | None = None,
    *,
    strict: bool = True,
    unique: bool = False,
    progress: Progress | None = None,
) -> Resolved:
    """Validate every row (raising ``InputError`` naming file, row and column before any parsing), then
    parse the responses.

    ``strict=False`` (``distalign score`` without ``--strict``) accepts what real files hold: a row naming
    an attribute and a group with no human distribution on its item is skipped (one
    ``PredictionsWarning`` with the count and examples), and probabilities with no mass on any option are
    a failed extraction (status ``unparsed``). ``unique=True`` (a file: each row one prediction) rejects
    a (model, method, steering, dataset, item, attribute, group) given twice with other values, and counts
    an identical repeat once (a warning; an error with ``strict``). ``Resolved.skipped`` counts the rows
    left out.
    """
    checker = _Checker(surveys, source, strict)
    rows, no_human = _rows(_header(df, source), checker)
    for row in rows:
        _values(row, checker)
    k = width or max((it.n_options for s in surveys.values() for it in s.items.values()), default=0)
    probs = np.zeros((len(rows), k))
    given = [i for i, row in enumerate(rows) if row.probs is not None]
    for i in given:
        probs[i, rows[i].at] = rows[i].probs
    parsed = np.zeros(len(rows), dtype=bool)
    block = probs[given]
    parsed[given] = ~_normalise(block, checker, [rows[i].number for i in given])
    probs[given] = block
    for i in given:
        if not parsed[i]:
            rows[i].status, rows[i].detail, rows[i].n_valid = "unparsed", NO_MASS, 0
    keep = _unique(rows, probs, checker) if unique else [True] * len(rows)
    rows, probs, parsed = [r for r, k in zip(rows, keep, strict=True) if k], probs[keep], parsed[keep]
    _parse(rows, probs, parsed, checker, progress)
    meta = pd.DataFrame(
        {
            "row": [r.number for r in rows],
            **{c: [r.keys[j] for r in rows] for j, c in enumerate(IDENTITY)},
            **{c: [getattr(r, c) for r in rows] for c in ("status", "detail", "n_total", "n_valid")},
        }
    )
    skipped = {"no_human": no_human, "duplicate": keep.count(False)}
    return Resolved(meta=meta, probs=probs, parsed=parsed, skipped=skipped)


def _parse(
    rows: list[_Row], probs: np.ndarray, parsed: np.ndarray, checker: _Checker, progress: Progress | None
) -> None:
    """Parses the responses of the rows without probs into ``probs`` and ``parsed``: each with its
    method and the row's own ``method_params`` (a mapping, or its JSON text), else the method's defaults;
    one method object per distinct setting, one parse per distinct answer."""
    parsers: dict[tuple[str, str | None], Callable[..., Any]] = {}
    answers: dict[tuple[str, str | None, str, tuple[str, ...], tuple[str, ...]], Any] = {}
    todo = [i for i, row in enumerate(rows) if row.probs is None]
    for done, i in enumerate(todo):
        if progress is not None and done % 1000 == 0:
            progress(done, len(todo))
        row, method = rows[i], str(rows[i].keys[1])
        idx = row.shown or list(range(row.item.n_options))
        labels = tuple(row.item.options[j] for j in idx)
        letters = letters_for(len(idx))
        if row.letters is not None:
            letters = _letters(row.letters, len(idx), checker, row.number)
        params = row.method_params
        setting = None if params is None else _key(params)
        if (method, setting) not in parsers:
            parsers[method, setting] = _parser(method, params, checker, row.number)
        response = _response(row.response)
        key = (method, setting, _key(response), labels, tuple(letters))
        if key not in answers:
            answers[key] = parsers[method, setting](response, letters, labels)
        p = answers[key]
        row.status, row.detail, row.n_total, row.n_valid = p.status, p.detail, p.n_total, p.n_valid
        if p.probs is not None:
            probs[i, idx] = p.probs
            parsed[i] = True
    if progress is not None:
        progress(len(todo), len(todo))


def _parser(method: str, value: Any, checker: _Checker, number: int) -> Callable[..., Any]:
    """The method's answer parser with the row's ``method_params``."""
    params = {} if value is None else _json(value, dict)
    if params is None:
        reason = "method_params must be a JSON object (parameter -> value)"
        raise checker.error(reason, number, "method_params")
    try:
        return get_method(method, **{str(k): v for k, v in params.items()}).parse_answer
    except InputError as exc:
        raise checker.error(exc.reason, number, "method_params") from None


def datasets_in(df: pd.DataFrame, source: str | Path | None = None) -> list[str]:
    """The dataset names a predictions table refers to (to know which surveys to load)."""
    if "dataset" not in df.columns:
        raise InputError("missing column(s) dataset", file=source, where="header")
    return sorted({str(v).strip() for v in df["dataset"] if not is_blank(v)})


__all__ = [
    "META_COLUMNS",
    "PredictionsWarning",
    "Resolved",
    "datasets_in",
    "read_predictions",
    "resolve_predictions",
]
