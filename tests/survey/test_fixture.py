"""The shipped sample release loads through every loader, exactly like the release."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distalign.survey import fixture_dir, load_survey
from distalign.survey.registry import DATASET_LOADERS

EXPECTED_GROUPS = {
    "opinionqa": {"Democrat", "Republican", "Male", "Female", "Black", "White"},
    "opinionqa_500": {"Democrat", "Republican", "Male", "Female", "Black", "White"},
    "nyt_books": {"Democrat", "Republican", "Male", "Female"},
}


@pytest.mark.parametrize("name", sorted(DATASET_LOADERS))
def test_fixture_loads(name: str) -> None:
    s = load_survey(name, fixture_dir())
    assert 5 <= len(s.items) <= 20
    if name in EXPECTED_GROUPS:
        assert {g for _, g in s.groups()} == EXPECTED_GROUPS[name]
    for d in s.distributions:
        ex = s.examples(d.item_id, d.group)
        assert len(ex) >= 5, (d.item_id, d.group)
        assert len({e.id for e in ex}) == len(ex) and all(e.id != d.item_id for e in ex)


def test_fixture_alias_and_quirks() -> None:
    s = load_survey("opinionqa", "fixture")
    assert s.source.startswith(str(fixture_dir()))
    # like the release: a group without respondents is skipped, options come from info.csv (not comma-split)
    assert "Male" not in {d.group for d in s.for_item("MIDWIFE_W93")}
    robot = s.items["ROBOTAX_W91"]
    assert robot.options == ("Yes, they should", "No, they should not", "Refused")
    assert s.items["FOURDAY_W91"].ordinal == (1.0, 2.0, None, None)


def test_fixture_global_renormalised() -> None:
    s = load_survey("global_opinions", "fixture")
    raw = json.loads((fixture_dir() / "Global_Values/data/data.json").read_text())
    assert any(abs(sum(raw[d.item_id][d.group]) - 1) > 1e-9 for d in s.distributions)
    assert all(abs(d.probs.sum() - 1) < 1e-12 for d in s.distributions)


def test_fixture_is_small() -> None:
    total = sum(p.stat().st_size for p in fixture_dir().rglob("*") if p.is_file())
    assert total < 150_000


def test_fixture_invents_its_questions(release_dir: Path) -> None:
    """The sample must not reuse release rows."""
    for rel in ("nytimes/data.json", "Global_Values/data/data.json"):
        ours = json.loads((fixture_dir() / rel).read_text())
        theirs = json.loads((release_dir / rel).read_text())
        assert not set(ours) & set(theirs)
    qa = "opinions_qa/data/human_resp/Pew_American_Trends_Panel_disagreement_500/POLPARTY_data.json"
    ours = json.loads((fixture_dir() / qa).read_text())
    theirs = json.loads((release_dir / qa).read_text())
    assert not set(ours) & set(theirs)
    assert not {v["question_text"] for v in ours.values()} & {v["question_text"] for v in theirs.values()}
