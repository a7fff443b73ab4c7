"""Shared helpers for reading model text: bounded input, option-key matching, number reading.

Model text is untrusted and sometimes huge; every parser first cuts it to ``MAX_CHARS`` so that regular
expressions and literal evaluation stay fast and bounded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

#: answers longer than this are cut (from the end of the text, where final answers live).
MAX_CHARS = 20_000

_KEY_LETTER = re.compile(
    r"^(?:option|choice|answer)?\s*[\(\[]?\s*([A-Za-z])\s*[\)\]]?\s*(?:[.:)\-]\s*.*)?$", re.S | re.I
)
#: an option index ("3", "(3)", "3.", "3) Agree", "Option 3"); a range such as "1-2" is not one
_KEY_INDEX = re.compile(
    r"^(?:option|choice|answer)?\s*[\(\[]?\s*([0-9]+)\s*[\)\]]?\s*(?:[.:)](?![0-9])\s*.*)?$", re.S | re.I
)
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
_STRIP = " \t\r\n\"'`*_"


def bounded(text: object) -> str:
    """The text as a ``str`` of at most ``MAX_CHARS`` characters (non-strings become empty)."""
    if not isinstance(text, str):
        return ""
    return text if len(text) <= MAX_CHARS else text[-MAX_CHARS:]


def normalise_label(s: str) -> str:
    return " ".join(s.strip(_STRIP + ".:").casefold().split())


def option_index(key: object, letters: Sequence[str], labels: Sequence[str] | None) -> int | None:
    """Which shown option a key names: its label text first (labels may start with a letter-like
    word, e.g. "A great deal"), then a letter in forms like ``A``, ``(a)``, ``Option A``, ``A. Agree``, or,
    when the options are numbered, an index in the same forms (``3``, ``(3)``, ``3. Agree``)."""
    if not isinstance(key, str):
        return None
    try:  # the same few keys recur across thousands of answers
        return _option_index(key, tuple(letters), tuple(labels) if labels else None)
    except TypeError:  # unhashable letters or labels
        return _option_index.__wrapped__(key, letters, labels)


@lru_cache(maxsize=8192)
def _option_index(key: str, letters: Sequence[str], labels: Sequence[str] | None) -> int | None:
    norm = normalise_label(key)
    if labels:
        for i, label in enumerate(labels[: len(letters)]):
            if normalise_label(label) == norm:
                return i
    stripped = key.strip(_STRIP)
    m = _KEY_LETTER.match(stripped) or _KEY_INDEX.match(stripped)
    if m is None:
        return None
    upper = [x.upper() for x in letters]
    letter = m.group(1).upper()
    return upper.index(letter) if letter in upper else None


def to_number(value: object) -> tuple[float | None, bool]:
    """A finite number from a JSON value or a string such as ``"12.5%"``; the flag says it was a percent."""
    if isinstance(value, bool):
        return None, False
    if isinstance(value, int | float):
        x = float(value)
        return (x, False) if math.isfinite(x) else (None, False)
    if not isinstance(value, str) or len(value) > 64:
        return None, False
    s = value.strip().rstrip(",")
    pct = s.endswith("%")
    s = s.rstrip("%").strip()
    if not _NUMBER.match(s):
        return None, False
    x = float(s)
    return (x, pct) if math.isfinite(x) else (None, False)
