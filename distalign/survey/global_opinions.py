"""GlobalOpinionQA (Durmus et al. 2023), the 100 questions of highest cross-country disagreement.

The evaluated groups are the first ``n_countries`` entries of each question's ``countries`` list (attribute
``country``). Stored probabilities are rounded (sums 0.998..1.002) and are renormalised.

Ordinal positions: many GlobalOpinionQA questions are not ordinal (e.g. "which country is the world's
leading economic power?"). No-opinion options ("DK/Refused", "Don't know", "No answer", "Missing; …")
are marked non-substantive (``None``); the others get positions 1..N in the order shown. Volunteered answers
such as "Both (VOL)" keep a position. Ordinal metrics are therefore meaningful only for the questions whose
options form a scale.
"""

from __future__ import annotations

from pathlib import Path

from distalign.errors import InputError
from distalign.survey.model import Example, GroupDistribution, Item, Survey
from distalign.survey.parsing import default_ordinal, literal_list, read_json, renormalised
from distalign.survey.paths import require_files

DATASET = "global_opinions"
DATA = "Global_Values/data/data.json"
SIMILARITY = "Global_Values/data/question_similarity.json"
ATTRIBUTE = "country"


def _examples(question: str, similar: dict) -> tuple[Example, ...]:
    """``{similar question: [{option: prob, ...}]}`` -> demonstrations, most similar first."""
    out: list[Example] = []
    for text, dists in similar.items():
        if text == question or not isinstance(dists, list) or not dists or not isinstance(dists[0], dict):
            continue
        table = dists[0]
        probs = renormalised([float(v) for v in table.values()])
        if probs is None or len(table) < 2:
            continue
        out.append(Example(text, text, tuple(str(k) for k in table), tuple(map(float, probs))))
    return tuple(out)


def load_global_opinions(root: str | Path, n_countries: int = 3) -> Survey:
    """100 questions x the first ``n_countries`` countries of each."""
    root = Path(root)
    require_files(root, (DATA, SIMILARITY), DATASET)
    path = root / DATA
    data = read_json(path)
    similarity = read_json(root / SIMILARITY)

    items: dict[str, Item] = {}
    dists: list[GroupDistribution] = []
    similar: dict[tuple[str, str], tuple[Example, ...]] = {}
    for question, entry in data.items():
        where = f"question {question[:60]!r}"
        raw = entry.get("MC_options")
        options = tuple(
            str(o) for o in (literal_list(raw, file=path, where=where) if isinstance(raw, str) else raw or ())
        )
        countries = [str(c) for c in entry.get("countries", ())]
        items[question] = Item(
            DATASET,
            question,
            question,
            options,
            default_ordinal(options),
            {"countries": ", ".join(countries)},
        )
        for country in countries[:n_countries]:
            stored = entry.get(country)
            if not isinstance(stored, list) or len(stored) != len(options):
                raise InputError(
                    f"expected {len(options)} probabilities for {country!r}, got {stored!r:.80}",
                    file=path,
                    where=where,
                )
            probs = renormalised(stored)
            if probs is None:
                continue
            dists.append(GroupDistribution(DATASET, question, ATTRIBUTE, country, probs))
            per_country = similarity.get(question, {}).get(country, {})
            similar[(question, country)] = _examples(question, per_country)
    return Survey(DATASET, items, tuple(dists), similar, source=str(path))
