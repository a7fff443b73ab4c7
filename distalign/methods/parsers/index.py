"""Integer-index answers: the options were shown as a list and the model names a position ``1..l``
(Kambhatla et al. 2025: "Respond with only a single integer number in the inclusive range [1,l]").

A number is read only when it is the one number the answer names (echoed option labels removed first, so
"3 (15-24 years)" is 3); "1 or 2", "between 1 and 4" and "1-2" name several and stay unparsed, as does a
number outside ``1..l``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from distalign.methods.parsers._text import option_index

#: an integer that is not part of a decimal number or a percentage
_INTEGER = re.compile(r"(?<![0-9.,])[0-9]+(?![0-9%]|[.,][0-9])")


def is_index(letters: Sequence[str]) -> bool:
    """Whether the shown option symbols are the integers 1..l (rather than letters)."""
    return bool(letters) and all(str(x) == str(i) for i, x in enumerate(letters, start=1))


def _without_labels(text: str, labels: Sequence[str]) -> tuple[str, list[int]]:
    """The text with every echoed option label removed (longest first, case-insensitive), and which
    labels it named."""
    named: list[int] = []
    out = text
    for i in sorted(range(len(labels)), key=lambda k: -len(labels[k])):
        label = labels[i].strip()
        if not label:
            continue
        pattern = re.compile(rf"(?<!\w){re.escape(label)}(?!\w)", re.I)
        if pattern.search(out):
            named.append(i)
            out = pattern.sub(" ", out)
    return out, named


def index_answer(segment: str, n: int, labels: Sequence[str] | None) -> tuple[int | None, str]:
    """The 0-based option an answer names, or ``None`` and why."""
    seg = segment.strip()
    if not seg:
        return None, "empty answer"
    letters = [str(i) for i in range(1, n + 1)]
    for candidate in (seg, seg.splitlines()[0]):
        idx = option_index(candidate, letters, labels)
        if idx is not None:
            return idx, ""
    rest, named = _without_labels(seg, labels[:n] if labels else ())
    numbers = {int(m.group()) for m in _INTEGER.finditer(rest)}
    if len(numbers) > 1:
        return None, f"several numbers named ({', '.join(map(str, sorted(numbers)[:4]))})"
    if numbers:
        k = numbers.pop()
        return (k - 1, "") if 1 <= k <= n else (None, f"answer {k} outside 1..{n}")
    # no number: an answer that names exactly one option label ("Some priority"); labels were removed
    # longest first, so "Agree" inside "Strongly agree" does not count twice
    if len(named) == 1:
        return named[0], ""
    return None, "several option labels named" if named else "no option index found"
