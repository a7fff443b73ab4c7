"""Tiny hand-made surveys (one per benchmark dataset name) so report tests run without the release."""

from __future__ import annotations

import numpy as np
import pytest

from distalign.survey.model import GroupDistribution, Item, Survey

AGREE = ("Agree", "Neutral", "Disagree", "Refused")


def _survey(name: str, items: dict[str, dict[tuple[str, str], list[float]]]) -> Survey:
    built = {iid: Item(name, iid, f"question {iid}?", AGREE, (1.0, 2.0, 3.0, None)) for iid in items}
    dists = tuple(
        GroupDistribution(name, iid, attr, group, np.array(p))
        for iid, groups in items.items()
        for (attr, group), p in groups.items()
    )
    return Survey(name, built, dists)


@pytest.fixture
def surveys() -> dict[str, Survey]:
    party = {("POLPARTY", "Democrat"): [0.6, 0.2, 0.2, 0.0], ("POLPARTY", "Republican"): [0.1, 0.3, 0.5, 0.1]}
    return {
        "opinionqa": _survey("opinionqa", {"Q1": party, "Q2": {k: v[::-1] for k, v in party.items()}}),
        "nyt_books": _survey("nyt_books", {"Book A": {("SEX", "Male"): [0.25, 0.25, 0.5, 0.0]}}),
        "global_opinions": _survey(
            "global_opinions",
            {
                "Is it good?": {
                    ("country", "Japan"): [0.7, 0.1, 0.1, 0.1],
                    ("country", "Chile"): [0.2, 0.2, 0.2, 0.4],
                }
            },
        ),
    }
