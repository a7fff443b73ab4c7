"""Templates compiled to plain Python render exactly as Jinja does, or are left to Jinja."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import jinja2
import pytest

from distalign.prompts.fastrender import Fallback, compile_fast
from distalign.prompts.templates import _ENV, load_templates


@dataclass(frozen=True)
class _Obj:
    letter: str
    label: str


def _outcome(render: object, ctx: dict) -> str:
    try:
        return render(ctx)  # type: ignore[operator]
    except TypeError as exc:  # e.g. a loop over a number: the same error either way
        return f"TypeError: {exc}"


def _both(source: str, ctx: dict) -> tuple[str, str]:
    fast = compile_fast(_ENV.parse(source))
    assert fast is not None, source
    return _outcome(fast.render, ctx), _outcome(_ENV.from_string(source).render, ctx)


_VALUES: tuple[object, ...] = (
    "Democrats",
    "",
    "a {b}\n{{ c }}",
    0,
    30,
    2.5,
    -0.0,
    None,
    True,
    False,
    [],
    ["A"],
)

_SUPPORTED = (
    "plain text only\n",
    "{{ x }}",
    "a{{ x }}b{{ y }}c",
    "{{ 'lit' }}{{ 3 }}{{ none }}",
    "{% if x %}yes{% endif %}",
    "{% if not x %}no{% else %}yes{% endif %}",
    "{% if x %}1{% elif y %}2{% elif not z %}3{% else %}4{% endif %}",
    "{%- if x -%}\n  trimmed  \n{%- endif -%}\n",
    "{% for o in options %}{{ o.letter }}. {{ o.label }}{% if not loop.last %}\n{% endif %}{% endfor %}",
    "{% for o in options %}{{ loop.index }}/{{ loop.length }} {{ loop.index0 }} {{ loop.first }} "
    "{{ loop.revindex }} {{ loop.revindex0 }};{% endfor %}",
    "{% for o in options %}[{% for p in options %}{{ o.letter }}{{ p.letter }}{{ loop.index }}{% endfor %}"
    "{{ loop.index }}]{% endfor %}",
    "{% for x in options %}{{ x.letter }}{% endfor %}{{ x }}",  # the loop's x does not leak
    "{% for c in x %}<{{ c }}>{% endfor %}",  # strings, lists
    "{{ '{' }}{% for o in options %}\"{{ o.letter }}\": {{ o.percent }}{% if not loop.last %}, "
    "{% endif %}{% endfor %}{{ '}' }}",
    '\'); import os; (\'{{ x }}"""',  # template text is data, never code
)


@pytest.mark.parametrize("source", _SUPPORTED)
def test_the_plain_subset_renders_exactly_as_jinja(source: str) -> None:
    rng = random.Random(7)
    for x, y, z in itertools.product(_VALUES, repeat=3):
        if rng.random() > 0.15:
            continue
        for n in (0, 1, 3):
            options = [{"letter": "ABC"[i], "label": f"opt {i}", "percent": 10 * i} for i in range(n)]
            ctx = {"x": x, "y": y, "z": z, "options": options}
            fast, jinja = _both(source, ctx)
            assert fast == jinja, (source, ctx)


def test_attributes_follow_jinja_attribute_then_item_rule() -> None:
    source = "{% for o in options %}{{ o.letter }}-{{ o.label }} {% endfor %}"
    objs = [_Obj("A", "yes"), {"letter": "B", "label": "no"}]
    fast, jinja = _both(source, {"options": objs})
    assert fast == jinja == "A-yes B-no "
    # a dict's own method comes before its item, as in Jinja
    fast, jinja = _both("{{ d.copy }}", {"d": {"copy": "item"}})
    assert fast.startswith("<built-in method copy") and jinja.startswith("<built-in method copy")


def test_an_undefined_value_is_left_to_jinja() -> None:
    fast = compile_fast(_ENV.parse("{% for o in options %}{{ o.missing }}{% endfor %}"))
    assert fast is not None
    with pytest.raises(Fallback):
        fast.render({"options": [{"letter": "A"}]})
    with pytest.raises(KeyError):
        fast.render({})
    with pytest.raises(jinja2.UndefinedError):
        _ENV.from_string("{{ o.missing }}").render({"o": {"letter": "A"}})


@pytest.mark.parametrize(
    "source",
    [
        "{{ x | upper }}",
        "{{ x ~ y }}",
        "{% if x == 1 %}one{% endif %}",
        "{% if x and y %}both{% endif %}",
        "{% set a = 1 %}{{ a }}",
        "{% for o in options %}{{ loop.cycle('a', 'b') }}{% endfor %}",
        "{% for o in options %}{{ o }}{% else %}none{% endfor %}",
        "{% for o in options if o %}{{ o }}{% endfor %}",
        "{% for a, b in pairs %}{{ a }}{% endfor %}",
        "{% for o in options %}{{ loop }}{% endfor %}",
        "{{ x() }}",
        "{{ x[0] }}",
        "{% macro m() %}m{% endmacro %}{{ m() }}",
    ],
)
def test_anything_beyond_the_plain_subset_is_left_to_jinja(source: str) -> None:
    assert compile_fast(_ENV.parse(source)) is None


def test_every_packaged_template_is_compiled_and_agrees_with_jinja() -> None:
    t = load_templates()
    assert set(t.fast) == set(t.compiled)
    assert not t.fast["blocks.item"].flat and t.fast["system.benchmark"].flat
    rows = [{"letter": "A", "label": "Yes", "percent": 55}, {"letter": "B", "label": "No", "percent": 45}]
    for key in t.compiled:
        for value in ("Democrats", "", 3):
            ctx = {name: (rows if name == "options" else value) for name in t.reads[key]}
            assert t.fast[key].render(ctx) == t.compiled[key].render(ctx), key
