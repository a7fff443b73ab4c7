"""Sequences of sampled answers: the model writes e.g. 30 option letters and their frequencies are the
distribution (Meister et al. 2024, "sequence" expression).

Prose around the sequence must not count ("A sequence: B, C, ..." starts with the article "A"), so the
parser takes the longest run of consecutive letter tokens. A token is a single letter (either case)
or, for outputs without separators such as ``ABBAC``, an upper-case word made mostly of option letters
(its other letters are then ignored and reported, as in a spaced answer).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from distalign.methods.parsed import Parsed
from distalign.methods.parsers._text import bounded

_WORD = re.compile(r"[A-Za-z]+")


def _longest_run(text: str, valid: frozenset[str]) -> list[str]:
    """Letters of the run of letter tokens with the most valid letters (ties: longer, then later)."""
    best: list[str] = []
    best_key = (0, 0)
    run: list[str] = []

    def close() -> None:
        nonlocal best, best_key
        key = (sum(c in valid for c in run), len(run))
        if run and key >= best_key:
            best, best_key = list(run), key

    for m in _WORD.finditer(text):
        w = m.group()
        if len(w) == 1:
            run.append(w.upper())
        elif w.isupper() and 2 * sum(c in valid for c in w) > len(w):
            run.extend(w)
        else:
            close()
            run = []
    close()
    # invalid letters at the edges are prose ("... A, B, C\nI hope ..."), not answers
    lo, hi = 0, len(best)
    while lo < hi and best[lo] not in valid:
        lo += 1
    while hi > lo and best[hi - 1] not in valid:
        hi -= 1
    return best[lo:hi] if lo < hi else best


def parse_sequence(text: str, letters: Sequence[str], expected_len: int = 30) -> Parsed:
    """Letter frequencies over the shown ``letters``. Never raises.

    Letters outside the options are ignored and reported; a length other than ``expected_len`` or any
    ignored letter makes the result ``partial``; no valid letter is unparsed.
    """
    upper = [str(x).upper() for x in letters]
    if not upper:
        return Parsed.unparsed("no options")
    valid = frozenset(upper)
    text = bounded(text)
    tokens = text.split()
    # the well-formed answers ("B A C ...", "BAC..."): every token made of option letters, so the longest
    # run is all of them
    if tokens and valid.issuperset(tokens):
        run = tokens
    elif tokens and all(t.isascii() and t.isalpha() and valid.issuperset(t) for t in tokens):
        run = list("".join(tokens))
    else:
        run = _longest_run(text, valid)
    counts = Counter(run)
    n_valid = sum(counts[c] for c in valid)
    if n_valid == 0:
        return Parsed.unparsed(
            "no option letter found" if not run else f"no option letter among {''.join(run)[:40]}"
        )
    probs = np.array([counts[c] for c in upper], dtype=float) / n_valid
    notes = [f"{n_valid} letters"]
    invalid = {c: k for c, k in counts.items() if c not in valid}
    if invalid:
        notes.append("ignored: " + ", ".join(f"{c}x{k}" for c, k in sorted(invalid.items())))
    if n_valid != expected_len:
        notes.append(f"expected {expected_len}")
    status = "ok" if not invalid and n_valid == expected_len else "partial"
    return Parsed(probs=probs, status=status, detail="; ".join(notes))
