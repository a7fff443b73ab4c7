"""Predictions from any source (a sweep, another tool, human annotators), read and checked against the
surveys before anything is scored.

One row per model x method x steering x dataset x item x attribute x group, with either ``probs`` (a list
over the options, or a mapping label/letter -> p) or a raw ``response`` that the method's parser reads;
the columns and rules are in ``PREDICTIONS_FORMAT.md`` beside this module. Errors name the file, the
1-based data row and the column. Real files (the benchmark release's own outputs) also hold rows for groups
the benchmark does not evaluate, log-p rows with no mass on any option and repeated rows: the ``strict``
and ``unique`` switches of :func:`resolve_predictions` say whether those are errors or are skipped, scored
as failed extractions and counted once, with one :class:`PredictionsWarning` each.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from itertools import chain
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


class _Rows:
    """Errors and warnings naming the file, the 1-based data row and the column."""

    def __init__(self, source: str | Path | None, rows: np.ndarray) -> None:
        self.source, self.rows = source, rows

    def error(self, reason: str, i: int, column: str) -> InputError:
        return InputError(reason, file=self.source, where=f"row {int(self.rows[i])}, column {column!r}")

    def first(self, bad: np.ndarray, reason: str, column: str, at: np.ndarray | None = None) -> None:
        """Raises for the first ``bad`` row; ``bad`` covers the rows ``at`` (default: every row)."""
        if bad.any():
            i = int(np.argmax(bad))
            raise self.error(reason, i if at is None else int(at[i]), column)

    def warn(self, message: str) -> None:
        prefix = f"{self.source}: " if self.source is not None else ""
        warnings.warn(prefix + message, PredictionsWarning, stacklevel=4)


def _text(df: pd.DataFrame, column: str, rows: _Rows, required: bool) -> pd.Series:
    """A key column as text: stripped (item ids are kept exactly as given), blanks missing. Each distinct
    value is checked once (a file repeats a handful of names over its rows)."""
    if column not in df.columns:
        return pd.Series([None] * len(df), dtype=object)
    clean: dict[Any, str | None] = {}
    out: list[str | None] = []
    for i, value in enumerate(df[column].tolist()):
        try:
            text = clean[value]
        except (KeyError, TypeError):  # new, or unhashable (a list or a mapping: an error below)
            if not (isinstance(value, str | int | np.integer) or is_blank(value)):
                raise rows.error("expected text", i, column) from None
            text = None if is_blank(value) else str(value) if column == "item_id" else str(value).strip()
            clean[value] = text
        if text is None and required:
            raise rows.error("missing value", i, column)
        out.append(text)
    return pd.Series(out, dtype=object)


def _combinations(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the number of its distinct combination of the frame's columns, and each one's first row."""
    codes = frame.groupby(list(frame.columns), sort=False, dropna=False).ngroup().to_numpy()
    return codes, np.unique(codes, return_index=True)[1]


def _optional(df: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An optional column's cells, whether each holds a value (lists and mappings always do) and whether
    it is a plain list (or array: Parquet's lists)."""
    if column not in df.columns:
        return np.full(len(df), None, dtype=object), np.zeros(len(df), bool), np.zeros(len(df), bool)
    if isinstance(df[column].dtype, pd.StringDtype):  # CSV: only texts
        given = (df[column].notna() & df[column].str.strip().ne("")).to_numpy(dtype=bool)
        return df[column].to_numpy(dtype=object), given, np.zeros(len(df), bool)
    values = df[column].to_numpy(dtype=object)
    kinds = np.fromiter(map(type, values), dtype=object, count=len(values))
    given, text = pd.notna(values), np.equal(kinds, str)
    given[text] = [bool(v.strip()) for v in values[text]]
    return values, given, pd.Series(kinds).isin([list, np.ndarray]).to_numpy()


def _json(value: Any, kind: type | tuple[type, ...]) -> Any:
    """A list/mapping cell; CSV cells and string-typed columns hold it as JSON text. ``None`` if not one."""
    if isinstance(value, np.ndarray | tuple):
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


def _find_item(survey: Survey | None, dataset: str, item_id: str, names: str) -> Item | tuple[str, str]:
    """The item, or (column, reason)."""
    if survey is None:
        return "dataset", f"unknown dataset {dataset!r} (loaded: {names})"
    item = survey.items.get(item_id) or survey.items.get(item_id.strip())
    return item if item is not None else ("item_id", f"unknown item {item_id[:80]!r} in dataset {dataset!r}")


def _group_verdict(known: list[tuple[str, str]], attribute: Any, group: Any, strict: bool) -> str | None:
    """``None`` when the row names an evaluated group (or none), ``"skip"`` when it names an attribute
    and a group with no human distribution on this item, else the reason it is an error."""
    attribute, group = (None if pd.isna(v) else v for v in (attribute, group))
    if group is None:
        return None if attribute is None else f"attribute {attribute!r} given without a group"
    hits = [(a, g) for a, g in known if g == group and attribute in (None, a)]
    if len(hits) > 1:
        return f"group {group!r} is ambiguous; give its attribute"
    if hits:
        return None
    if attribute is not None and not strict:
        return "skip"
    named = f"{attribute}={group}" if attribute else group
    choices = ", ".join(f"{a}={g}" for a, g in known)
    return f"group {named!r} not evaluated on this item (known: {choices})"


def _targets(
    keys: pd.DataFrame, surveys: Mapping[str, Survey], rows: _Rows, strict: bool
) -> tuple[list[Item], np.ndarray, np.ndarray]:
    """The items the rows name, each row's item (a number into them) and whether the row has a human
    distribution to be scored against; each distinct (dataset, item, attribute, group) is checked once.
    Rows naming an attribute and a group with no distribution are skipped with one warning (errors with
    ``strict``); a group given without its attribute must exist on the item."""
    known: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for name, survey in surveys.items():
        for d in survey.distributions:
            known.setdefault((name, d.item_id), []).append((d.attribute, d.group))
    columns = ["dataset", "item_id", "attribute", "group"]
    codes, first = _combinations(keys[columns])
    distinct = keys.iloc[first][columns].to_numpy()
    items: list[Item] = []
    numbers: dict[tuple[str, str], int] = {}
    item_of, keep = np.zeros(len(first), dtype=np.int64), np.ones(len(first), dtype=bool)
    for c, (i, (dataset, item_id, attribute, group)) in enumerate(zip(first.tolist(), distinct, strict=True)):
        if (dataset, item_id) not in numbers:
            item = _find_item(surveys.get(dataset), dataset, item_id, ", ".join(surveys))
            if isinstance(item, tuple):
                raise rows.error(item[1], i, item[0])
            numbers[dataset, item_id] = len(items)
            items.append(item)
        item_of[c] = numbers[dataset, item_id]
        item = items[item_of[c]]
        verdict = _group_verdict(known.get((dataset, item.id), []), attribute, group, strict)
        if verdict == "skip":
            keep[c] = False
        elif verdict is not None:
            raise rows.error(verdict, i, "attribute" if verdict.endswith("give its attribute") else "group")
    if not keep.all():
        examples = [
            f"row {rows.rows[i]} ({dataset}, {attribute}={group})"
            for i, (dataset, _, attribute, group) in zip(
                first[~keep][:EXAMPLES], distinct[~keep][:EXAMPLES], strict=True
            )
        ]
        rows.warn(
            f"skipped {int((~keep[codes]).sum()):,} row(s) whose item and group have no human distribution "
            f"(groups the benchmark does not evaluate), e.g. {', '.join(examples)}; --strict makes them "
            "errors"
        )
    return items, item_of[codes], keep[codes]


def _deduplicated(
    keys: pd.DataFrame, differs: Callable[[int, int], str | None], rows: _Rows, strict: bool
) -> np.ndarray:
    """Which rows to keep when each (model, ..., group) must be one prediction: a repeat with the same
    values counts once (one warning; an error with ``strict``), a repeat with other values is an error
    naming both rows. ``differs(j, i)`` names the column where rows ``j`` and ``i`` differ, if any."""
    keep = np.ones(len(keys), dtype=bool)
    repeated = np.flatnonzero(keys.duplicated(keep=False).to_numpy())
    first: dict[int, int] = {}
    for code, i in zip(_combinations(keys.iloc[repeated])[0].tolist(), repeated.tolist(), strict=True):
        j = first.setdefault(code, i)
        if j == i:
            continue
        column = differs(j, i)
        if column is not None:
            same = ", ".join(IDENTITY)
            raise rows.error(
                f"conflicts with row {rows.rows[j]}: same {same} but another {column}", i, column
            )
        if strict:
            raise rows.error(f"repeats row {rows.rows[j]} (same prediction, same values)", i, "item_id")
        if keep.all():
            example = f"row {rows.rows[i]} repeats row {rows.rows[j]}"
        keep[i] = False
    if not keep.all():
        rows.warn(
            f"counted {int((~keep).sum()):,} repeated row(s) once (same prediction, same values), e.g. "
            f"{example}; --strict makes them errors"
        )
    return keep


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


def _shown_rows(
    df: pd.DataFrame, items: list[Item], item_codes: np.ndarray, rows: _Rows
) -> dict[int, list[int]]:
    """For the (rare) rows with an ``options`` cell, the option indices as shown; checked once per item
    and distinct cell."""
    out: dict[int, list[int]] = {}
    cache: dict[tuple[int, Hashable], list[int] | str] = {}
    options, given, _ = _optional(df, "options")
    for i in np.flatnonzero(given).tolist():
        key = (int(item_codes[i]), _hashable(options[i]))
        if key not in cache:
            cache[key] = _shown(options[i], items[key[0]])
        shown = cache[key]
        if isinstance(shown, str):
            raise rows.error(shown, i, "options")
        out[i] = shown
    return out


def _mapping_probs(mapping: Mapping[Any, Any], item: Item, shown: list[int]) -> list[Any] | str:
    """A label -> p or letter -> p mapping over the item's options (labels win over letters)."""
    letters = dict(zip(letters_for(len(shown)), shown, strict=True))
    out: list[Any] = [0.0] * item.n_options
    for key, p in mapping.items():
        try:
            idx = item.option_index(str(key))
        except KeyError:
            idx = letters.get(str(key).strip().upper())
        if idx is None:
            return f"{key!r} is neither an option label nor a shown letter"
        if (kind := _not_a_number(p)) is not None:
            return f"the probability of {key!r} is {kind}"
        out[idx] = p
    return out


def _is_number_type(kind: type) -> bool:
    """Real numbers (numpy's too); booleans are not, nor is text that looks like a number."""
    return issubclass(kind, numbers.Real) and not issubclass(kind, bool | np.bool_)


def _not_a_number(value: Any) -> str | None:
    """What a probability that is neither a number nor null is instead, for the error message."""
    if value is None or _is_number_type(type(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return f"{value!r}, a boolean, not a number"
    if isinstance(value, str):
        return f"{value!r}, a text, not a number (write numbers without quotes)"
    return f"{value!r}, a {type(value).__name__}, not a number"


def _numbers(values: list[Any]) -> np.ndarray | str:
    """A list of numbers (null is NaN) as floats, or a reason naming the first value that is not one."""
    for position, x in enumerate(values, start=1):
        if (kind := _not_a_number(x)) is not None:
            return f"probability {position} of {len(values)} is {kind}"
    return np.array(values, dtype=float)


def _one_probs(value: Any, item: Item, shown: list[int] | None) -> tuple[np.ndarray, list[int]] | str:
    """One probs cell (a list in the shown order, a mapping or JSON text of either) as values and the
    item's option index of each, or a reason."""
    value = value if type(value) is list else _json(value, (list, dict))
    if value is None:
        return "probs must be a list of numbers or a mapping option -> number"
    if isinstance(value, dict):
        value = _mapping_probs(value, item, shown or list(range(item.n_options)))
        if isinstance(value, str):
            return value
        shown = None
    idx = shown or list(range(item.n_options))
    if len(value) != len(idx):
        return f"{len(value)} probabilities for {len(idx)} options"
    numbers = _numbers(value)
    return numbers if isinstance(numbers, str) else (numbers, idx)


def _read_probs(
    values: np.ndarray, has: np.ndarray, is_list: np.ndarray, items: list[Item], item_codes: np.ndarray,
    shown: Mapping[int, list[int]], probs: np.ndarray, rows: _Rows,
) -> None:  # fmt: skip
    """Writes every given probs cell into ``probs`` (over the item's options), raising for the first
    bad row. Plain lists over the item's options, the bulk of any real file, are read in one pass."""
    plain = has & is_list
    plain[list(shown)] = False
    bulk, problems = np.flatnonzero(plain), []
    n_options = np.array([it.n_options for it in items])[item_codes[bulk]]
    lengths = np.fromiter(map(len, values[bulk]), dtype=np.int64, count=bulk.size)
    if (wrong := np.flatnonzero(lengths != n_options)).size:
        problems.append(
            (bulk[wrong[0]], f"{lengths[wrong[0]]} probabilities for {n_options[wrong[0]]} options")
        )
    else:
        cells = list(chain.from_iterable(values[bulk]))
        if not all(map(_is_number_type, set(map(type, cells)))):
            plain[bulk] = False  # nulls, booleans or texts in some list: read every list row by row
        else:
            flat = np.array(cells, dtype=float)
            within = np.arange(flat.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            probs[np.repeat(bulk, lengths), within] = flat
    for i in np.flatnonzero(has & ~plain).tolist():
        one = _one_probs(values[i], items[item_codes[i]], shown.get(i))
        if isinstance(one, str):
            problems.append((i, one))
            break
        probs[i, one[1]] = one[0]
    if problems:
        i, reason = min(problems)
        raise rows.error(reason, int(i), "probs")


def _normalise(probs: np.ndarray, has: np.ndarray, rows: _Rows, strict: bool) -> np.ndarray:
    """Renormalises the given rows in place; returns the rows with no mass on any option (all zero, NaN
    or null: a failed extraction, an error with ``strict``). A row whose sum is not finite (a NaN, an
    infinity, or huge values whose sum overflows) is looked at alone: NaN counts as 0 where nothing else
    is positive, and the row is divided by its largest value before it is summed."""
    index = np.flatnonzero(has)
    block = probs if index.size == len(probs) else probs[index]
    with np.errstate(over="ignore", invalid="ignore"):  # the rows this concerns are handled below
        total = block.sum(axis=1)
    bad = (block < 0).any(axis=1)
    odd = ~np.isfinite(total)
    sub = np.nan_to_num(block[odd], nan=0.0, posinf=np.inf, neginf=-np.inf)
    peak = sub.max(axis=1, initial=0.0)
    bad[odd] |= np.isinf(peak) | (np.isnan(block[odd]).any(axis=1) & (peak > 0))
    rows.first(bad, "probabilities must be finite and non-negative", "probs", at=index)
    sub /= np.where(peak > 0, peak, 1.0)[:, None]
    block[odd], total[odd] = sub, sub.sum(axis=1)
    no_mass = total == 0
    if strict:
        rows.first(no_mass, f"probabilities sum to zero: {NO_MASS}", "probs", at=index)
    block /= np.where(no_mass, 1.0, total)[:, None]
    if block is not probs:
        probs[index] = block
    out = np.zeros(len(probs), dtype=bool)
    out[index[no_mass]] = True
    return out


def _letters(value: Any, n: int, rows: _Rows, i: int) -> list[str]:
    """A row's answer keys as shown (e.g. ``["1", "2", "3"]``): one distinct text per shown option."""
    letters = _json(value, list)
    if letters is None or len(letters) != n or not all(isinstance(x, str) and x.strip() for x in letters):
        raise rows.error(f"letters must be a list of {n} texts, one per option shown", i, "letters")
    if len(set(letters)) != n:
        raise rows.error("letters must be distinct", i, "letters")
    return letters


class _Parsers:
    """Each row's parser: its method with the row's own ``method_params`` (a mapping, or its JSON text),
    else with the method's defaults; one method object per distinct setting."""

    def __init__(self, rows: _Rows) -> None:
        self.rows = rows
        self.made: dict[tuple[str, Hashable], Callable[..., Any]] = {}

    def get(self, method: str, value: Any, setting: Hashable, i: int) -> Callable[..., Any]:
        if (method, setting) not in self.made:
            params = {} if value is None else _json(value, dict)
            if params is None:
                reason = "method_params must be a JSON object (parameter -> value)"
                raise self.rows.error(reason, i, "method_params")
            try:
                parser = get_method(method, **{str(k): v for k, v in params.items()}).parse_answer
            except InputError as exc:
                raise self.rows.error(exc.reason, i, "method_params") from None
            self.made[method, setting] = parser
        return self.made[method, setting]


def _header(df: pd.DataFrame, source: str | Path | None) -> pd.DataFrame:
    if "item_id" not in df.columns and "item" in df.columns:
        df = df.rename(columns={"item": "item_id"})
    missing = [c for c in KEYS if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", file=source, where="header")
    if "probs" not in df.columns and "response" not in df.columns:
        raise InputError("needs a 'probs' or a 'response' column", file=source, where="header")
    return df.reset_index(drop=True)


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
    parse the responses. Checks run once per distinct value (datasets, items, groups) or on whole columns.

    ``strict=False`` (``distalign score`` without ``--strict``) accepts what real files hold: a row naming
    an attribute and a group with no human distribution on its item is skipped (one
    ``PredictionsWarning`` with the count and examples), and probabilities with no mass on any option are
    a failed extraction (status ``unparsed``). ``unique=True`` (a file: each row one prediction) rejects
    a (model, method, steering, dataset, item, attribute, group) given twice with other values, and counts
    an identical repeat once (a warning; an error with ``strict``). ``Resolved.skipped`` counts the rows
    left out.
    """
    df = _header(df, source)
    rows = _Rows(source, df["row"].to_numpy() if "row" in df.columns else np.arange(1, len(df) + 1))
    keys = pd.DataFrame({c: _text(df, c, rows, required=c in KEYS) for c in IDENTITY})
    items, item_codes, evaluated = _targets(keys, surveys, rows, strict)
    keys["item_id"] = [items[c].id for c in item_codes]  # as the survey spells it
    if not evaluated.all():
        df, keys = df[evaluated].reset_index(drop=True), keys[evaluated].reset_index(drop=True)
        item_codes, rows = item_codes[evaluated], _Rows(source, rows.rows[evaluated])
    if keys.empty:
        raise InputError("nothing to score: every row was skipped (see the warning)", file=source)

    shown = _shown_rows(df, items, item_codes, rows)
    cells, has_probs, is_list = _optional(df, "probs")
    responses, has_response, _ = _optional(df, "response")
    params, has_params, _ = _optional(df, "method_params")
    keyed, has_letters, _ = _optional(df, "letters")
    rows.first(~has_probs & ~has_response, "neither probs nor response given", "probs")
    no_parser = ~has_probs
    if no_parser.any():
        no_parser[no_parser] = ~keys["method"][no_parser].isin(list(PARSERS)).to_numpy()
    if no_parser.any():
        name = keys["method"].iat[int(np.argmax(no_parser))]
        rows.first(
            no_parser, f"no parser for method {name!r} (known: {', '.join(sorted(PARSERS))})", "method"
        )

    n = len(keys)
    k = width or max((it.n_options for s in surveys.values() for it in s.items.values()), default=0)
    probs = np.zeros((n, k))
    if has_probs.any():
        _read_probs(cells, has_probs, is_list, items, item_codes, shown, probs, rows)
    no_mass = _normalise(probs, has_probs, rows, strict)

    def differs(j: int, i: int) -> str | None:
        if has_probs[i] != has_probs[j]:
            return "probs"
        if has_probs[i]:
            return None if np.allclose(probs[i], probs[j], rtol=0, atol=1e-12) else "probs"
        if _hashable(_response(responses[i])) != _hashable(_response(responses[j])):
            return "response"
        if _hashable(params[i] if has_params[i] else None) != _hashable(params[j] if has_params[j] else None):
            return "method_params"
        return None if shown.get(i) == shown.get(j) else "options"

    keep = _deduplicated(keys, differs, rows, strict) if unique else np.ones(n, dtype=bool)

    # status and detail as numbers into the few distinct texts
    status = np.where(no_mass, "unparsed", "ok").astype(object)
    detail = np.where(no_mass, NO_MASS, "probs").astype(object)
    n_total, n_valid = np.ones(n, dtype=int), np.where(no_mass, 0, 1)
    parsed = has_probs & ~no_mass
    todo = np.flatnonzero(~has_probs & keep).tolist()
    methods = keys["method"].to_numpy(dtype=object) if todo else np.empty(0, dtype=object)
    parsers = _Parsers(rows)
    cached: dict[tuple[str, Hashable, Hashable, tuple[str, ...], tuple[str, ...]], Any] = {}
    for done, i in enumerate(todo):
        if progress is not None and done % 1000 == 0:
            progress(done, len(todo))
        item, response = items[item_codes[i]], _response(responses[i])
        idx = shown.get(i, list(range(item.n_options)))
        labels = tuple(item.options[j] for j in idx)
        letters = _letters(keyed[i], len(idx), rows, i) if has_letters[i] else letters_for(len(idx))
        setting = _hashable(params[i]) if has_params[i] else None
        key = (methods[i], setting, _hashable(response), labels, tuple(letters))
        if (p := cached.get(key)) is None:
            parse = parsers.get(methods[i], params[i] if has_params[i] else None, setting, i)
            p = cached[key] = parse(response, letters, labels)
        status[i], detail[i] = p.status, p.detail
        n_total[i], n_valid[i] = p.n_total, p.n_valid
        if p.probs is not None:
            probs[i, idx] = p.probs
            parsed[i] = True
    if progress is not None:
        progress(len(todo), len(todo))

    meta = pd.DataFrame(
        {
            "row": rows.rows,
            **{c: keys[c].array for c in IDENTITY},
            "status": status,
            "detail": detail,
            "n_total": n_total,
            "n_valid": n_valid,
        }
    )
    skipped = {"no_human": int((~evaluated).sum()), "duplicate": int((~keep).sum())}
    if not keep.all():
        meta, probs, parsed = meta[keep].reset_index(drop=True), probs[keep], parsed[keep]
    return Resolved(meta=meta, probs=probs, parsed=parsed, skipped=skipped)


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
