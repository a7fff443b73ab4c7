from __future__ import annotations

from pathlib import Path

import pytest

from distalign.errors import InputError
from distalign.survey import data_dir, fixture_dir, load_survey
from distalign.survey.paths import ENV_VAR


def test_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "distalign" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".cache" / "distalign" / "data"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert data_dir("fixture") == fixture_dir()
    assert data_dir("./fixture") == Path("fixture")


def test_fixture_dir_has_release_layout() -> None:
    root = fixture_dir()
    assert (root / "nytimes" / "data.json").is_file()
    assert (root / "Global_Values" / "data" / "question_similarity.json").is_file()


@pytest.mark.parametrize("name", ["opinionqa", "opinionqa_500", "nyt_books", "global_opinions"])
def test_missing_dataset_says_how_to_get_it(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError) as err:
        load_survey(name, tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg
    assert f"distalign data download {name}" in msg
    assert "--data-dir" in msg and ENV_VAR in msg and "--data-dir fixture" in msg


def test_env_var_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(fixture_dir()))
    assert len(load_survey("nyt_books").items) == 10
