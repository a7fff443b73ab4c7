"""Real items of each dataset, from the release (``release_dir``) and from the shipped fixture."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from distalign.errors import InputError
from distalign.survey.model import Example, Item, Survey

DATASETS = ("opinionqa", "nyt_books", "global_opinions")


@dataclass(frozen=True)
class Case:
    """One real (item, group) with at least five few-shot candidates."""

    survey: Survey
    item: Item
    attribute: str
    group: str
    other_group: str
    examples: tuple[Example, ...]


def pick_case(survey: Survey) -> Case:
    from distalign.prompts.fewshot import examples_for

    for item_id in survey.items:
        dists = survey.for_item(item_id)
        groups = [d.group for d in dists]
        for d in dists:
            chosen = examples_for(survey, item_id, d.group, k=5)
            others = [g for g in groups if g != d.group]
            if len(chosen) == 5 and others:
                return Case(survey, survey.items[item_id], d.attribute, d.group, others[0], chosen)
    raise AssertionError(f"{survey.name}: no item with 5 few-shot examples and two groups")


_cache: dict[tuple[str, str], Survey] = {}


def load(source: str, dataset: str, release_dir: object | None) -> Survey:
    from distalign.survey import fixture_dir, load_survey

    key = (source, dataset)
    if key not in _cache:
        root = release_dir if source == "release" else fixture_dir()
        try:
            _cache[key] = load_survey(dataset, root)
        except InputError as exc:
            if source == "fixture":
                pytest.skip(f"shipped fixture lacks {dataset}: {exc}")
            raise
    return _cache[key]


@pytest.fixture(
    params=[(s, d) for s in ("release", "fixture") for d in DATASETS], ids=lambda p: f"{p[0]}-{p[1]}"
)
def case(request: pytest.FixtureRequest) -> Case:
    source, dataset = request.param
    root = request.getfixturevalue("release_dir") if source == "release" else None
    return pick_case(load(source, dataset, root))
