"""Single answers: one option letter (or label) per generation, and the empirical distribution of n
such answers (self-random sampling at T>0, or one answer per prompt paraphrase).

Chain-of-thought answers are read from their final-answer marker (``<answer>...</answer>`` or
Kambhatla et al.'s ``<ANS_START>...</ANS_END>``, else the text after the last "Answer:" or "Response:"),
so letters in the reasoning do not count. Options numbered 1..l are read as integer indices
(:mod:`distalign.methods.parsers.index`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from distalign.methods.parsed import Parsed
from distalign.methods.parsers._text import bounded, option_index
from distalign.methods.parsers.index import index_answer, is_index

_ANSWER_COLON = re.compile(r"(?:answer|response)\s*(?:is)?\s*[:\-]", re.I)
#: the final-answer markers prompts ask for: <answer>...</answer> and <ANS_START>...</ANS_END> (the end
#: tag also accepted without its slash or as </ANS_START>, as models write it)
_START = re.compile(r"<\s*(?:answer|ANS_START)\s*>", re.I)
_END = re.compile(r"<\s*/?\s*(?:answer|ANS_END|ANS_START)\s*>", re.I)
_CUE = re.compile(
    r"(?:answer|option|choice|choose|pick|select)\w*\s*(?:is|would be|:|-)?\s*"
    r"[\(\[\"'*]*((?-i:[A-Z]))(?![A-Za-z])",
    re.I,
)
_NON_WORD = re.compile(r"[^\w]+")
_UPPER_TOKEN = re.compile(r"(?<![A-Za-z])\(?([A-Z])(?![A-Za-z])")


def _words(s: str) -> str:
    """Lower-case words separated by single spaces, padded, for whole-word containment tests."""
    return f" {' '.join(_NON_WORD.sub(' ', s.casefold()).split())} "


def extract_final_answer(text: str, start: str | None = None, end: str | None = None) -> str | None:
    """The final answer of a reasoning trace: the last ``start...end`` span (or the text after an
    unclosed last ``start``), else the text after the last "Answer:"/"Response:"; ``None`` when there is no
    marker. Without ``start`` the known markers are used (``<answer>``, ``<ANS_START>``)."""
    s = bounded(text)
    if start is None:
        starts = list(_START.finditer(s))
        if starts:
            rest = s[starts[-1].end() :]
            m = _END.search(rest)
            return (rest[: m.start()] if m else rest).strip()
    elif start:
        i = s.rfind(start)
        if i >= 0:
            rest = s[i + len(start) :]
            j = rest.find(end) if end else -1
            return (rest[:j] if j >= 0 else rest).strip()
    ends = [m.end() for m in _ANSWER_COLON.finditer(s)]
    return s[ends[-1] :].strip() if ends else None


def _letter_index(
    segment: str, letters: Sequence[str], labels: Sequence[str] | None
) -> tuple[int | None, str]:
    seg = segment.strip()
    if not seg:
        return None, "empty answer"
    first_line = seg.splitlines()[0]
    for candidate in (seg, first_line):
        idx = option_index(candidate, letters, labels)
        if idx is not None:
            return idx, ""
    upper = [x.upper() for x in letters]
    cues = [m.group(1).upper() for m in _CUE.finditer(seg)]
    cued = [c for c in cues if c in upper]
    if cued:
        return upper.index(cued[-1]), ""
    if labels:
        text = _words(seg)
        names = [_words(lab) for lab in labels[: len(letters)]]
        hits = [i for i, name in enumerate(names) if name.strip() and name in text]
        # a label inside another named label ("agree" in "strongly agree") is not a separate answer
        hits = [i for i in hits if not any(j != i and names[i] in names[j] for j in hits)]
        if len(hits) == 1:
            return hits[0], ""
        if len(hits) > 1:
            return None, "several option labels named"
    tokens = {m.group(1) for m in _UPPER_TOKEN.finditer(seg)} & set(upper)
    if len(tokens) == 1:
        return upper.index(tokens.pop()), ""
    return None, "several option letters named" if tokens else "no option letter found"


def parse_letter(text: str, letters: Sequence[str], labels: Sequence[str] | None = None) -> Parsed:
    """A one-hot distribution on the answered option (a letter, or an index when the options are
    numbered "1".."l"). Never raises."""
    if not letters:
        return Parsed.unparsed("no options")
    s = bounded(text)
    final = extract_final_answer(s)
    segment = final if final is not None else s
    if is_index(letters):
        idx, why = index_answer(segment, len(letters), labels)
    else:
        idx, why = _letter_index(segment, letters, labels)
    if idx is None:
        return Parsed.unparsed(why)
    probs = np.zeros(len(letters))
    probs[idx] = 1.0
    return Parsed(probs=probs, status="ok", detail=str(letters[idx]))


def parse_letter_samples(
    texts: Sequence[str] | str, letters: Sequence[str], labels: Sequence[str] | None = None
) -> Parsed:
    """The empirical distribution of n single answers; unparseable ones are discarded (``partial``)."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts) if isinstance(texts, Sequence) else []
    parsed = [parse_letter(t, letters, labels) for t in texts]
    good = [p.probs for p in parsed if p.probs is not None]
    n = len(parsed)
    if not good:
        return Parsed.unparsed(f"0 of {n} answers parsed", n_total=max(n, 1))
    counts = np.sum(np.stack(good), axis=0)
    return Parsed(
        probs=counts / counts.sum(),
        status="ok" if len(good) == n else "partial",
        detail=f"{len(good)} of {n} answers parsed",
        n_total=n,
        n_valid=len(good),
    )
