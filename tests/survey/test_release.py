"""The loaders on the public release: counts, groups and conventions from the data README."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from distalign.survey import load_global_opinions, load_nyt_books, load_opinionqa, load_survey
from distalign.survey.model import Survey

# Reference values of /work/shared/data/README.md (mean TV over pairs: uniform, human-majority one-hot).
README_BASELINES = {
    "opinionqa": (599, 0.3752, 0.4993),
    "nyt_books": (940, 0.2234, 0.5773),
    "global_opinions": (300, 0.4815, 0.3603),
}


@pytest.fixture(scope="module")
def surveys(release_dir: Path) -> dict[str, Survey]:
    return {name: load_survey(name, release_dir) for name in README_BASELINES}


def test_counts(surveys: dict[str, Survey]) -> None:
    assert len(surveys["opinionqa"].items) == 100 and len(surveys["opinionqa"]) == 599
    assert len(surveys["nyt_books"].items) == 235 and len(surveys["nyt_books"]) == 235 * 4
    assert len(surveys["global_opinions"].items) == 100 and len(surveys["global_opinions"]) == 100 * 3


def test_group_names(surveys: dict[str, Survey]) -> None:
    assert surveys["opinionqa"].groups() == [
        ("POLPARTY", "Democrat"),
        ("POLPARTY", "Republican"),
        ("SEX", "Male"),
        ("SEX", "Female"),
        ("RACE", "Black"),
        ("RACE", "White"),
    ]
    assert surveys["nyt_books"].groups() == [
        ("POLPARTY", "Democrat"),
        ("POLPARTY", "Republican"),
        ("SEX", "Male"),
        ("SEX", "Female"),
    ]
    assert {a for a, _ in surveys["global_opinions"].groups()} == {"country"}


@pytest.mark.parametrize("name", sorted(README_BASELINES))
def test_readme_baselines(surveys: dict[str, Survey], name: str) -> None:
    """The README's uniform and majority numbers hold only under the documented conventions."""
    pairs, uniform, majority = README_BASELINES[name]
    dists = surveys[name].distributions
    assert len(dists) == pairs
    tv_u = [0.5 * np.abs(d.probs - 1 / len(d.probs)).sum() for d in dists]
    tv_m = [0.5 * np.abs(d.probs - np.eye(len(d.probs))[d.probs.argmax()]).sum() for d in dists]
    assert np.mean(tv_u) == pytest.approx(uniform, abs=5e-5)
    assert np.mean(tv_m) == pytest.approx(majority, abs=5e-5)


def test_opinionqa_options_from_info_csv(surveys: dict[str, Survey]) -> None:
    item = surveys["opinionqa"].items["GAP21Q33_g_W82"]
    assert item.options == ("Top priority", "Some priority", "No priority", "Refused")
    assert item.ordinal == (1.0, 2.0, 3.0, None)
    assert item.non_substantive == (3,)
    assert item.metadata["survey"] == "Pew_American_Trends_Panel_W82"
    # MC_options of the JSON splits this list at the comma; info.csv keeps it whole.
    split = surveys["opinionqa"].items["GOVPRIORITYc_W54"]
    assert "Important, but lower priority" in split.options and split.options[-1] == "Refused"
    not_sure = surveys["opinionqa"].items["DATAUSEd_W49"]
    assert not_sure.options[-2:] == ("Not sure", "Refused") and not_sure.ordinal[-2:] == (None, None)


def test_opinionqa_zero_counts_and_empty_groups(surveys: dict[str, Survey], release_dir: Path) -> None:
    s = surveys["opinionqa"]
    assert {d.group for d in s.for_item("FEM2_W29")} == {"Democrat", "Republican", "Female", "Black", "White"}
    d = next(d for d in s.for_item("GAP21Q33_g_W82") if d.group == "Male")  # nobody Male chose "Refused"
    assert d.probs[3] == 0.0
    assert d.probs[:3] == pytest.approx(np.array([226, 257, 91]) / 574)
    assert d.n_respondents == 574


def test_opinionqa_few_shot_candidates(surveys: dict[str, Survey], release_dir: Path) -> None:
    s = surveys["opinionqa"]
    pool = release_dir / "opinions_qa/data/human_resp/Pew_American_Trends_Panel_disagreement_100"
    sims = json.loads((pool / "question_similarity_top10.json").read_text())
    for d in s.distributions:
        ex = s.examples(d.item_id, d.group)
        assert ex and all(e.id != d.item_id for e in ex)
        assert [e.id for e in ex] == [k for k in sims[d.item_id] if k in {e.id for e in ex}]
        assert all(abs(sum(e.probs) - 1) < 1e-9 for e in ex)
    # FEM2_W29 is a candidate with no Male respondents: it never appears for the Male group.
    assert all(
        e.id != "FEM2_W29"
        for d in s.distributions
        if d.group == "Male"
        for e in s.examples(d.item_id, "Male")
    )


def test_opinionqa_500_pool(release_dir: Path) -> None:
    s = load_opinionqa(release_dir, pool="500")
    assert s.name == "opinionqa_500" and len(s.items) == 494


def test_nyt(release_dir: Path) -> None:
    s = load_nyt_books(release_dir)
    title = "The Bee Sting By Paul Murray"
    item = s.items[title]
    assert item.options == (
        "1: Very unlikely",
        "2: Somewhat unlikely",
        "3: Somewhat likely",
        "4: Very likely",
    )
    assert item.ordinal == (1.0, 2.0, 3.0, 4.0)
    assert item.metadata["genre"] == "Fiction" and title in item.question
    dem = next(d for d in s.for_item(title) if d.group == "Democrat")
    assert dem.probs == pytest.approx([9 / 20, 6 / 20, 3 / 20, 2 / 20]) and dem.n_respondents == 20
    assert len(s.examples(title, "Male")) == 10


def test_global_renormalised(release_dir: Path) -> None:
    s = load_global_opinions(release_dir)
    raw = json.loads((release_dir / "Global_Values/data/data.json").read_text())
    off = 0
    for d in s.distributions:
        stored = np.array(raw[d.item_id][d.group])
        off += abs(stored.sum() - 1) > 1e-9
        assert d.probs.sum() == pytest.approx(1.0, abs=1e-12)
        assert d.probs == pytest.approx(stored / stored.sum())
        assert d.group in raw[d.item_id]["countries"][:3]
        assert s.items[d.item_id].options == tuple(ast.literal_eval(raw[d.item_id]["MC_options"]))
    assert off > 0  # the release really needs renormalising


def test_global_ordinal_and_examples(release_dir: Path) -> None:
    s = load_global_opinions(release_dir)
    for item in s.items.values():
        subs = [o for o in item.ordinal if o is not None]
        assert subs == [float(i) for i in range(1, len(subs) + 1)]
        for label, pos in zip(item.options, item.ordinal, strict=True):
            if label in ("DK/Refused", "Don't know", "No answer") or label.startswith("Missing"):
                assert pos is None
    for d in s.distributions:
        ex = s.examples(d.item_id, d.group)
        assert len(ex) >= 5 and all(e.id != d.item_id for e in ex)
        assert all(abs(sum(e.probs) - 1) < 1e-9 and len(e.probs) == len(e.options) for e in ex)


def test_loader_count_tables_reject_unknown_labels(release_dir: Path, tmp_path: Path) -> None:
    """A count for a label outside the options would silently drop respondents: it is an error."""
    root = tmp_path / "rel"
    (root / "nytimes").mkdir(parents=True)
    data = json.loads((release_dir / "nytimes/data.json").read_text())
    first = next(iter(data))
    data[first]["Male"]["5: Certain"] = 3
    (root / "nytimes/data.json").write_text(json.dumps(data))
    (root / "nytimes/question_similarity_top10.json").write_bytes(
        (release_dir / "nytimes/question_similarity_top10.json").read_bytes()
    )
    from distalign.errors import InputError

    with pytest.raises(InputError, match="5: Certain"):
        load_nyt_books(root)
