from __future__ import annotations

import json

import pytest

from distalign.errors import InputError
from distalign.survey import fixture_dir, list_datasets, load_survey


def test_names() -> None:
    assert list_datasets() == ["opinionqa", "opinionqa_500", "nyt_books", "global_opinions", "custom"]


def test_unknown_lists_known() -> None:
    with pytest.raises(InputError, match="opinionqa, opinionqa_500, nyt_books, global_opinions, custom"):
        load_survey("opinion_qa")


def test_bad_option_is_input_error() -> None:
    with pytest.raises(InputError, match="bad options"):
        load_survey("nyt_books", fixture_dir(), pool="500")
    with pytest.raises(InputError, match="pool"):
        load_survey("opinionqa", fixture_dir(), pool="250")


def test_kwargs_reach_loader() -> None:
    assert len(load_survey("global_opinions", fixture_dir(), n_countries=2)) == 20


def test_custom_needs_path() -> None:
    with pytest.raises(InputError, match="path="):
        load_survey("custom")


@pytest.mark.parametrize("name", ["opinionqa", "nyt_books", "global_opinions", "opinionqa_500", "custom"])
def test_a_custom_survey_may_not_take_a_built_in_name(tmp_path, name: str) -> None:
    """It would silently stand in for the benchmark dataset wherever surveys are found by name."""
    row = {"item_id": "Q1", "question": "Park?", "options": ["Yes", "No"], "attribute": "SEX",
           "group": "Female", "probs": [0.5, 0.5]}  # fmt: skip
    by_column = tmp_path / "mine.jsonl"
    by_column.write_text(json.dumps({**row, "dataset": name}) + "\n")
    by_file_name = tmp_path / f"{name}.jsonl"
    by_file_name.write_text(json.dumps(row) + "\n")
    for path in (by_column, by_file_name):
        with pytest.raises(InputError, match=f"named '{name}', the name of a built-in dataset") as err:
            load_survey("custom", path=path)
        assert str(path) in str(err.value)
