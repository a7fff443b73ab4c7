"""Which templates a cell renders with (``steering.templates``): the packaged wording (null), a paper's own
prompts by preset name, or a user's YAML file checked against the packaged one.

Presets:

* ``meister2024``: the benchmark's prompts as its release builds them (:mod:`distalign.prompts.meister`);
  the release's demonstration files are read from the data folder when the preset is loaded, never copied
  into this repository. Digest: sha256 of the preset's wording and of every release file it reads.
* ``kambhatla2025``: the supervision paper's prompts, Tables 14-16, with integer-index answers
  (:mod:`distalign.prompts.kambhatla`). Digest: sha256 of its wording.

A user's file is validated in full when it is loaded (keys, kinds, Jinja syntax, and a trial render of every
prompt shape), so an undefined variable surfaces before any model is called, not mid-sweep. A file named like
a preset is read as a file when given as a path (``./meister2024``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from distalign.errors import InputError
from distalign.prompts import kambhatla, meister
from distalign.prompts.render import FORMATS, STEERINGS, PromptSpec, render_prompt, render_toy
from distalign.prompts.templates import (
    EXACT_ENV,
    Templates,
    check_shape,
    compile_templates,
    packaged_templates,
    read_yaml,
)
from distalign.survey.model import Example, Item
from distalign.survey.paths import data_dir as resolve_data_dir
from distalign.survey.paths import tool_command

#: what ``distalign data download`` calls the release's prompt files
PROMPTS_DOWNLOAD = "prompts"


def _packaged_text(name: str) -> str:
    return files("distalign.prompts").joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _kambhatla() -> Templates:
    name = f"{kambhatla.KIND}.yaml"
    text = _packaged_text(name)
    return compile_templates(read_yaml(name, text), f"distalign/prompts/{name}", text, kind=kambhatla.KIND)


def _meister(data_dir: str | Path | None) -> Templates:
    """The preset's wording plus the release's demonstration files, read from the data folder now."""
    root = resolve_data_dir(data_dir)
    hint = (
        f"the {meister.KIND} prompts read the benchmark release's prompt files, which are not in the data "
        f"folder {root}. Download them with `{tool_command()} data download {PROMPTS_DOWNLOAD}` (or point "
        "dataset.data_dir / $DISTALIGN_DATA_DIR at a folder holding the release)"
    )
    if not (root / "inputs").is_dir():
        raise InputError(hint, file=root / "inputs")
    name = f"{meister.KIND}.yaml"
    wording = _packaged_text(name)
    texts: dict[str, dict[str, dict[str, str]]] = {}
    digested = [wording]
    for (dataset, fmt, task), rel in sorted(meister.release_files().items()):
        path = root / rel
        if not path.is_file():
            raise InputError(hint, file=path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=path) from None
        texts.setdefault(dataset, {}).setdefault(fmt, {})[task] = text
        digested += [rel, text]
    return compile_templates(
        read_yaml(name, wording),
        f"distalign/prompts/{name} + {root / 'inputs'}",
        "\x1f".join(digested),
        kind=meister.KIND,
        env=EXACT_ENV,
        data={"release_files": texts},
    )


PRESETS: dict[str, Callable[[str | Path | None], Templates]] = {
    meister.KIND: _meister,
    kambhatla.KIND: lambda data_dir: _kambhatla(),
}


def load_templates(path: str | Path | None = None, *, data_dir: str | Path | None = None) -> Templates:
    """The packaged templates (``path`` None), a preset by name (see the module docstring; ``data_dir`` is
    the data folder, as ``dataset.data_dir``), or a user's file validated against the packaged one."""
    default = packaged_templates()
    if path is None:
        return default
    if isinstance(path, str) and path in PRESETS:
        return PRESETS[path](data_dir)
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
