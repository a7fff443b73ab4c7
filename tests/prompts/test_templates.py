"""User template files: same keys as the packaged file, Jinja compiled and trial-rendered at load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from distalign.errors import InputError
from distalign.prompts.presets import load_templates
from distalign.prompts.render import PromptSpec, render_prompt
from distalign.survey.model import Item


def _packaged() -> dict:
    return yaml.safe_load(Path(load_templates().source).read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "my_templates.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _item() -> Item:
    return Item("opinionqa", "Q1", "Should cats vote?", ("Yes", "No"), (1.0, 2.0))


def test_a_user_file_changes_the_wording(tmp_path: Path) -> None:
    data = _packaged()
    data["benchmark"]["task"]["persona"]["logprobs"] = (
        "Pretend to be one of the {{ group_phrase }}. Pick a letter."
    )
    data["phrases"]["group_plurals"]["Democrat"] = "members of the Democratic Party"
    templates = load_templates(_write(tmp_path, data))
    prompt = render_prompt(
        _item(), "POLPARTY", "Democrat", (), PromptSpec("benchmark", "persona", "logprobs"), templates
    )
    assert (
        "Pretend to be one of the members of the Democratic Party. Pick a letter."
        in prompt.messages[1].content
    )


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    data = _packaged()
    data["benchmark"]["task"]["persona"]["logprob"] = "typo"
    path = _write(tmp_path, data)
    with pytest.raises(InputError, match=r"benchmark\.task\.persona\.logprob") as err:
        load_templates(path)
    assert str(path) in str(err.value)


def test_missing_key_names_key_and_file(tmp_path: Path) -> None:
    data = _packaged()
    del data["supervision"]["cot"]["single"]
    path = _write(tmp_path, data)
    with pytest.raises(InputError, match=r"supervision\.cot\.single") as err:
        load_templates(path)
    assert str(path) in str(err.value)


def test_undefined_variable_is_reported_at_load(tmp_path: Path) -> None:
    data = _packaged()
    data["system"]["benchmark"] = "Hello {{ nonexistent_variable }}"
    with pytest.raises(InputError, match=r"system\.benchmark.*nonexistent_variable"):
        load_templates(_write(tmp_path, data))


def test_jinja_syntax_error_names_the_key(tmp_path: Path) -> None:
    data = _packaged()
    data["blocks"]["item"] = "{% for o in options %}unclosed"
    with pytest.raises(InputError, match=r"blocks\.item"):
        load_templates(_write(tmp_path, data))


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_templates(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed", encoding="utf-8")
    with pytest.raises(InputError, match="YAML"):
        load_templates(bad)


def test_paraphrase_index_beyond_the_framings(tmp_path: Path) -> None:
    data = _packaged()
    data["supervision"]["framing"]["sd"]["single"] = ["Only one framing for {{ group_phrase }}."]
    templates = load_templates(_write(tmp_path, data))
    spec = PromptSpec("supervision", "sd", "single", paraphrase=2)
    with pytest.raises(InputError, match="paraphrase 2"):
        render_prompt(_item(), "SEX", "Male", (), spec, templates)
