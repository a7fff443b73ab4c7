"""Prompt wording lives in YAML so researchers can change it without touching code.

A user file must have exactly the keys of the packaged file (the packaged file *is* the schema): a typo in a
key would otherwise silently fall back to default wording and make two runs look comparable when they are
not. Every string is compiled once as a Jinja template with ``StrictUndefined``, so a syntax error or an
unknown variable is reported with its key and file before any model is called.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
import yaml

from distalign.errors import InputError

PACKAGED = "templates.yaml"
#: mappings whose keys are data (phrase lookups), not part of the schema
FREE_FORM: frozenset[str] = frozenset(
    {"phrases.attributes", "phrases.group_values", "phrases.group_plurals", "phrases.plural_patterns"}
)

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False, trim_blocks=False
)
#: for wording whose trailing newlines are part of the prompt (the papers' own prompts, built by string
#: concatenation in the original code)
EXACT_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False, trim_blocks=False
)
#: the kind of the packaged, researcher-editable wording (see ``presets`` for the papers' own prompts)
DEFAULT_KIND = "default"


@dataclass(frozen=True)
class Templates:
    """Compiled templates addressed by dotted key (``benchmark.task.persona.seq``; list items by index).

    ``digest`` is the sha256 of the wording (not of the file's path): it is part of every cell's identity,
    so editing a template re-runs the cells that use it and moving the file does not.
    """

    source: str
    raw: Mapping[str, Any] = field(repr=False)
    compiled: Mapping[str, jinja2.Template] = field(repr=False)
    digest: str = ""
    #: which renderer reads these templates: ``default`` (the packaged schema) or a preset's name
    kind: str = DEFAULT_KIND

    def has(self, key: str) -> bool:
        return key in self.compiled

    def render(self, key: str, **ctx: Any) -> str:
        """Render one template; an unknown variable names the template key and file."""
        try:
            template = self.compiled[key]
        except KeyError:
            raise InputError(f"no template {key!r}", file=self.source) from None
        try:
            return template.render(ctx)
        except jinja2.UndefinedError as exc:
            raise InputError(f"template {key!r}: {exc.message}", file=self.source) from None

    def value(self, key: str) -> Any:
        """A raw (uncompiled) entry, e.g. a phrase map or the letters list."""
        node: Any = self.raw
        for part in key.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    @cached_property
    def letters(self) -> tuple[str, ...]:
        """The option letters, in order (read for every option of every prompt)."""
        return tuple(str(x) for x in self.value("letters"))

    def count(self, key: str) -> int:
        """Length of a list entry (e.g. how many paraphrases a framing has)."""
        node = self.value(key)
        return len(node) if isinstance(node, list) else 0


def check_shape(user: Any, schema: Any, path: str, source: str) -> None:
    """``user`` has exactly the keys and kinds of ``schema`` (the packaged file); raises naming the key."""
    where = path or "<top level>"
    if isinstance(schema, dict):
        if not isinstance(user, dict):
            raise InputError(f"key {where!r} must be a mapping", file=source)
        if path in FREE_FORM:
            for k, v in user.items():
                if not isinstance(v, str):
                    raise InputError(f"key {path}.{k} must be a string", file=source)
            return
        missing = [k for k in schema if k not in user]
        unknown = [k for k in user if k not in schema]
        if missing:
            raise InputError(f"missing key {'.'.join(filter(None, [path, str(missing[0])]))!r}", file=source)
        if unknown:
            raise InputError(
                f"unknown key {'.'.join(filter(None, [path, str(unknown[0])]))!r} "
                f"(known here: {', '.join(map(str, schema))})",
                file=source,
            )
        for k in schema:
            check_shape(user[k], schema[k], f"{path}.{k}" if path else str(k), source)
    elif isinstance(schema, list):
        if not isinstance(user, list) or not user:
            raise InputError(f"key {where!r} must be a non-empty list", file=source)
        for i, v in enumerate(user):
            if not isinstance(v, str):
                raise InputError(f"key {path}.{i} must be a string", file=source)
    elif not isinstance(user, str):
        raise InputError(f"key {where!r} must be a string (got {type(user).__name__})", file=source)


def _compile(
    node: Any, path: str, source: str, out: dict[str, jinja2.Template], env: jinja2.Environment
) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _compile(v, f"{path}.{k}" if path else str(k), source, out, env)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _compile(v, f"{path}.{i}", source, out, env)
    else:
        try:
            template = env.from_string(str(node))
        except jinja2.TemplateSyntaxError as exc:
            raise InputError(f"template {path!r}: {exc.message} (line {exc.lineno})", file=source) from None
        # Jinja keeps a template's globals as a ChainMap over the environment's and copies it on every
        # render; a sweep renders ~10 templates per prompt, and a plain dict halves Jinja's share of planning
        template.globals = dict(template.globals)
        out[path] = template


def read_yaml(path: Path | str, text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", file=path) from None
    if not isinstance(data, dict):
        raise InputError("a templates file must be a YAML mapping", file=path)
    return data


def compile_templates(
    raw: dict[str, Any],
    source: str,
    text: str | None = None,
    *,
    kind: str = DEFAULT_KIND,
    env: jinja2.Environment = _ENV,
    data: Mapping[str, Any] | None = None,
) -> Templates:
    """Compile every entry of an already shape-checked mapping. The digest covers ``text`` when given (a
    preset's wording plus the files it reads), else the wording itself (the parsed mapping), so comments
    and layout of a file do not count. ``data`` joins ``raw`` uncompiled (text inserted verbatim, e.g. a
    release's prompt files)."""
    compiled: dict[str, jinja2.Template] = {}
    _compile(raw, "", source, compiled, env)
    if text is None:
        text = json.dumps(raw, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Templates(source=source, raw={**raw, **(data or {})}, compiled=compiled, digest=digest, kind=kind)


@lru_cache(maxsize=1)
def packaged_templates() -> Templates:
    text = files("distalign.prompts").joinpath(PACKAGED).read_text(encoding="utf-8")
    return compile_templates(read_yaml(PACKAGED, text), f"distalign/prompts/{PACKAGED}")
