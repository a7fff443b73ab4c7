"""Verbalized distributions: the model writes the probability of each option (usually as JSON).

Seen in practice: JSON objects, single-quoted Python dicts, bare ``A: 20%`` lines, ``"Option A": 0.2``,
option labels as keys, lists in option order (``[20, 30, 40, 10]``, what Kambhatla et al.'s prompt asks
for, also with ``%`` signs), markdown code fences, prose around the object and trailing commas. Numbers
may be percents, fractions or counts; any positive total is renormalised.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

from distalign.methods.parsed import Parsed
from distalign.methods.parsers._text import bounded, option_index, to_number

_FENCE = re.compile(r"```[A-Za-z0-9_-]*\s*\n?(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_PAIR = re.compile(
    r"(?:^|(?<=[\n,;{]))[ \t]*(?P<key>[^\n,;:={}\[\]]{1,80}?)[ \t]*(?:[:=]|\)|\s[-\u2013])[ \t]*"
    r"[\"']?(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)[ \t]*(?P<pct>%)?",
    re.M,
)
#: bound on the number of bracketed spans tried per answer.
_MAX_SPANS = 64


def _spans(text: str, open_: str, close: str) -> list[str]:
    """Top-level balanced ``open_ ... close`` spans, in order (linear scan, no regex backtracking)."""
    out: list[str] = []
    depth, start = 0, -1
    for m in re.finditer(f"[{re.escape(open_)}{re.escape(close)}]", text):
        i, ch = m.start(), m.group()
        if ch == open_:
            if depth == 0:
                start = i
            depth += 1
        elif ch == close and depth > 0:
            depth -= 1
            if depth == 0:
                out.append(text[start : i + 1])
                if len(out) >= _MAX_SPANS:
                    break
    return out


def _load(span: str) -> object:
    """JSON, then JSON without trailing commas, then a Python literal (single quotes); ``None`` if none."""
    for candidate in (span, _TRAILING_COMMA.sub(r"\1", span)):
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):
            pass
    try:
        return ast.literal_eval(span)
    except Exception:  # literal_eval raises many kinds (SyntaxError, ValueError, MemoryError, ...)
        return None


Values = list[float | None]  # one entry per shown option; None: the answer gives no number for it


def _from_pairs(
    pairs: Sequence[tuple[object, object]], letters: Sequence[str], labels: Sequence[str] | None
) -> tuple[Values | None, list[str]]:
    values: Values = [None] * len(letters)
    notes: list[str] = []
    ignored: list[str] = []
    for key, raw in pairs:
        idx = option_index(key, letters, labels)
        if idx is None:
            ignored.append(str(key)[:40])
            continue
        x, _ = to_number(raw)
        if x is None:
            notes.append(f"non-numeric value for {key!s:.40}")
            continue
        values[idx] = x
    if ignored:
        notes.append(f"ignored keys: {', '.join(repr(k) for k in ignored[:10])}")
    return (values if any(v is not None for v in values) else None), notes


def _single_object(text: str) -> str | None:
    """The text when it is nothing but one flat JSON-looking object (what well-behaved models write), so
    the span scan would find exactly it; ``None`` otherwise."""
    body = text.strip()
    if len(body) < 2 or body[0] != "{" or body[-1] != "}":
        return None
    inner = body[1:-1]
    return None if "{" in inner or "}" in inner or "`" in body else body


def _flat_object(body: str) -> object:
    """One flat object read as JSON, or as a single-quoted Python dict of strings and numbers (what
    several models write): without double quotes and backslashes, swapping the quotes is exact, and
    far cheaper than ``ast.literal_eval``. ``None`` when neither reads."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        pass
    if '"' in body or "\\" in body:
        return None
    try:
        obj = json.loads(body.replace("'", '"'))
    except (ValueError, RecursionError):
        return None
    plain = isinstance(obj, dict) and all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in obj.values()
    )
    return obj if plain else None  # null, true, false: not Python; the full heuristics decide


def _candidates(
    text: str, letters: Sequence[str], labels: Sequence[str] | None
) -> list[tuple[Values, list[str]]]:
    found: list[tuple[Values, list[str]]] = []
    for span in _spans(text, "{", "}"):
        obj = _load(span)
        if isinstance(obj, Mapping):
            values, notes = _from_pairs(list(obj.items()), letters, labels)
        else:  # e.g. `{"A": 20%}`: not a literal, but its pairs are readable
            values, notes = _from_pairs(_regex_pairs(span), letters, labels)
        if values is not None:
            found.append((values, notes))
    if not found:
        for span in _spans(text, "[", "]"):
            obj = _load(span)
            if obj is None:  # e.g. [20%, 30%, 50%]: not a literal, but a list of numbers
                obj = span[1:-1].split(",")
            if isinstance(obj, list) and len(obj) == len(letters):
                nums = [to_number(x)[0] for x in obj]
                if all(x is not None for x in nums):
                    found.append((nums, ["list in letter order"]))
    if not found:
        values, notes = _from_pairs(_regex_pairs(text), letters, labels)
        if values is not None:
            found.append((values, notes))
    return found


def _regex_pairs(text: str) -> list[tuple[str, str]]:
    return [(m["key"], m["num"] + (m["pct"] or "")) for m in _PAIR.finditer(text)]


def _found(text: str, letters: Sequence[str], labels: Sequence[str] | None) -> list[tuple[Values, list[str]]]:
    """The candidate distributions of a text. A bare JSON object is read directly (one ``json.loads``);
    anything else, or an object that names no option, goes through the full heuristics."""
    s = bounded(text)
    single = _single_object(s)
    if single is not None:
        obj = _flat_object(single)
        if isinstance(obj, Mapping):
            values, notes = _from_pairs(list(obj.items()), letters, labels)
            if values is not None:
                return [(values, notes)]
    fenced = _FENCE.findall(s)
    body = "\n".join(fenced) if fenced else s
    return _candidates(body, letters, labels) or (_candidates(s, letters, labels) if fenced else [])


def _verbalized(
    text: str, letters: Sequence[str], labels: Sequence[str] | None
) -> tuple[np.ndarray | None, str, str]:
    """``parse_verbalized`` without building the record: (probabilities or None, status, detail)."""
    if not letters:
        return None, "unparsed", "no options"
    found = _found(text, letters, labels)
    if not found:
        return None, "unparsed", "no probabilities for the options found"
    values, notes = max(reversed(found), key=lambda c: sum(v is not None for v in c[0]))
    missing = [letters[i] for i, v in enumerate(values) if v is None]
    filled = [0.0 if v is None else v for v in values]
    if any(v < 0 for v in filled):
        return None, "unparsed", "negative probability"
    array = np.array(filled, dtype=float)
    total = float(array.sum())
    if not math.isfinite(total) or total <= 0:
        return None, "unparsed", "probabilities sum to zero"
    probs = array / total
    if not all(map(math.isfinite, probs.tolist())):
        return None, "unparsed", "probabilities not representable"
    scale = "percent" if abs(total - 100) <= 5 else "fraction" if abs(total - 1) <= 0.05 else f"sum {total:g}"
    notes = [scale, *notes]
    if missing:
        notes.append(f"missing options set to 0: {', '.join(missing)}")
    return probs, "partial" if missing else "ok", "; ".join(notes)


def parse_verbalized(text: str, letters: Sequence[str], labels: Sequence[str] | None = None) -> Parsed:
    """One verbalized answer over the shown ``letters``. Never raises.

    Among several objects in the text the one naming the most options wins (the last on ties); options
    it omits get probability 0 (status ``partial``). Negative or all-zero numbers are unparsed.
    """
    probs, status, detail = _verbalized(text, letters, labels)
    return Parsed.unparsed(detail) if probs is None else Parsed(probs=probs, status=status, detail=detail)


def parse_verbalized_many(
    texts: Sequence[str] | str, letters: Sequence[str], labels: Sequence[str] | None = None
) -> Parsed:
    """n generations: discard the unparseable ones and average the rest, renormalised (Kambhatla et al.)."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts) if isinstance(texts, Sequence) else []
    parsed = [_verbalized(t, letters, labels) for t in texts]
    good = [probs for probs, _, _ in parsed if probs is not None]
    n = len(parsed)
    if not good:
        reasons = sorted({detail for _, _, detail in parsed})
        return Parsed.unparsed(f"0 of {n} parsed: {'; '.join(reasons)[:200]}", n_total=max(n, 1))
    mean = np.mean(np.stack(good), axis=0)
    mean = mean / mean.sum()
    status = "ok" if len(good) == n and all(status == "ok" for _, status, _ in parsed) else "partial"
    return Parsed(
        probs=mean, status=status, detail=f"{len(good)} of {n} parsed", n_total=n, n_valid=len(good)
    )
