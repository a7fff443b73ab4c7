"""Which templates a cell renders with: the packaged wording, or a user's YAML file checked against it.

A user's file is validated in full when it is loaded (keys, kinds, Jinja syntax, and a trial render of every
prompt shape), so an undefined variable surfaces before any model is called, not mid-sweep.
"""

from __future__ import annotations

from pathlib import Path

from distalign.errors import InputError
from distalign.prompts.render import FORMATS, STEERINGS, PromptSpec, render_prompt, render_toy
from distalign.prompts.templates import (
    Templates,
    check_shape,
    compile_templates,
    packaged_templates,
    read_yaml,
)
from distalign.survey.model import Example, Item


def load_templates(path: str | Path | None = None) -> Templates:
    """The packaged templates (``path`` None), or a user's file validated against them."""
    default = packaged_templates()
    if path is None:
        return default
    p = Path(path)
    if not p.is_file():
        raise InputError("templates file not found", file=p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=p) from None
    raw = read_yaml(p, text)
    check_shape(raw, default.raw, "", str(p))
    templates = compile_templates(raw, str(p))
    trial_render(templates)
    return templates


def trial_render(templates: Templates) -> None:
    """Render every prompt shape on made-up items so a user's templates fail at load, not mid-sweep."""
    item = Item("trial", "q1", "Is this a trial?", ("Yes", "No", "Refused"), (1.0, 2.0, None))
    book = Item("nyt_books", "A Book", "A Book", ("1", "2", "3", "4"), (1.0, 2.0, 3.0, 4.0), {"genre": "g"})
    examples = tuple(
        Example(f"e{i}", f"Example {i}?", ("Yes", "No", "Refused"), (0.5, 0.4, 0.1)) for i in range(5)
    )
    for it in (item, book):
        for protocol, steerings in STEERINGS.items():
            for steering in steerings:
                for fmt in FORMATS[protocol]:
                    variants = [{}] if protocol == "benchmark" else [{}, {"cot": True}, {"few_shot": True}]
                    for extra in variants:
                        spec = PromptSpec(protocol, steering, fmt, **extra)  # type: ignore[arg-type]
                        render_prompt(it, "SEX", "Female", examples, spec, templates)
    for fmt in FORMATS["benchmark"]:
        render_toy(0.7, fmt, templates=templates)
