from __future__ import annotations

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
