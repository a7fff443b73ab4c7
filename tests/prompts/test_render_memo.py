"""Memoised rendering: a repeated part is rendered once, and a memo hit is never a different text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from distalign.errors import InputError
from distalign.prompts.render import PromptSpec, _draw, render_prompt
from distalign.prompts.templates import MEMO_MAX_ENTRIES, Templates, _compile, load_templates
from distalign.survey.model import Example, Item


def _templates(entries: dict[str, str]) -> Templates:
    compiled: dict = {}
    reads: dict = {}
    _compile(entries, "", "test.yaml", compiled, reads)
    return Templates(source="test.yaml", raw=entries, compiled=compiled, reads=reads)


def test_reads_lists_the_variables_a_template_uses() -> None:
    t = _templates({"a": "{{ x }} {% for o in options %}{{ o.letter }}{% endfor %}"})
    assert t.reads["a"] == ("options", "x")


@pytest.mark.parametrize("a, b", [(1, 1.0), (1, True), (0.0, -0.0), ([1], (1,)), ({"k": 1}, {"k": 1.0})])
def test_values_equal_in_python_but_rendered_differently_are_not_confused(a: object, b: object) -> None:
    t = _templates({"a": "{{ x }}"})
    assert t.render_cached("a", x=a) == t.render("a", x=a)
    assert t.render_cached("a", x=b) == t.render("a", x=b)


def test_a_variable_the_template_does_not_read_does_not_split_the_memo() -> None:
    t = _templates({"a": "{{ x }}"})
    t.render_cached("a", x="1", unused="p")
    t.render_cached("a", x="1", unused="q")
    t.render_cached("a", x="2", unused="q")
    assert len(t.memo) == 2


def test_a_missing_variable_still_names_the_template() -> None:
    from distalign.errors import InputError

    t = _templates({"a": "{{ x }}"})
    with pytest.raises(InputError, match="'x' is undefined"):
        t.render_cached("a", y=1)


def test_the_memo_is_bounded() -> None:
    t = _templates({"a": "{{ x }}"})
    for i in range(MEMO_MAX_ENTRIES + 5):
        t.remember(("k", i), i)
    assert len(t.memo) <= MEMO_MAX_ENTRIES


def test_draws_match_numpy_choice() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 17))
        p = rng.random(n) * (rng.random(n) > 0.3)
        p[0] += 1e-3
        p = p / p.sum()
        seed, k = int(rng.integers(0, 2**62)), int(rng.choice([1, 30]))
        expected = np.random.default_rng(seed).choice(n, size=k, p=p)
        assert np.array_equal(_draw(seed, p, k), expected)


def test_a_shared_memo_renders_the_same_prompts_as_a_fresh_one() -> None:
    item = Item("opinionqa", "Q9", "Should dogs vote?", ("Yes", "No", "Refused"), (1.0, 2.0, None))
    examples = tuple(
        Example(f"E{i}", f"Question {i}?", ("Yes", "No", "Refused"), (0.5, 0.3, 0.2)) for i in range(6)
    )
    # the same demonstrations in other positions and for other groups: parts repeat, blocks must not
    calls = [
        (group, shown, PromptSpec("benchmark", "few_shot", fmt))
        for fmt in ("logprobs", "seq", "verbalize")
        for group in ("Democrat", "Republican")
        for shown in (examples, examples[1:], examples[::-1])
    ]
    t = load_templates()
    fresh = []
    for group, shown, spec in calls:
        t.memo.clear()
        fresh.append(render_prompt(item, "POLPARTY", group, shown, spec, t).messages)
    t.memo.clear()
    shared = [render_prompt(item, "POLPARTY", g, shown, spec, t).messages for g, shown, spec in calls]
    assert shared == fresh
    assert len(set(shared)) == len(calls)


_VALUES: tuple[object, ...] = ("Democrats", "a {b} c\n{{ d }}", "", 30, 2.5, None, True, ["A", "B"])


@pytest.mark.parametrize("value", _VALUES)
def test_plain_substitutions_render_exactly_as_jinja(value: object) -> None:
    """Templates rendered without Jinja give Jinja's output byte for byte."""
    t = load_templates()
    assert {"system.benchmark", "benchmark.example", "benchmark.task.persona.seq"} <= set(t.fast)
    for key in t.fast:
        if "options" in t.reads[key]:
            continue  # loops: see test_fastrender
        ctx = {name: value for name in t.reads[key]}
        assert t.render(key, **ctx) == t.compiled[key].render(ctx), key


def test_templates_with_filters_are_left_to_jinja(tmp_path: Path) -> None:
    t = load_templates()
    data = yaml.safe_load(Path(t.source).read_text(encoding="utf-8"))
    data["benchmark"]["turn"]["persona"] = "Now for {{ group_phrase | upper }}:"
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    user = load_templates(path)
    assert "benchmark.turn.persona" not in user.fast
    assert user.render("benchmark.turn.persona", group_phrase="women") == "Now for WOMEN:"


def test_a_missing_variable_of_a_plain_substitution_names_the_template() -> None:
    with pytest.raises(InputError, match=r"benchmark\.example.*undefined"):
        load_templates().render("benchmark.example", index=1, item_text="Q")
