"""Prompt wording lives in YAML so researchers can change it without touching code.

A user file must have exactly the keys of the packaged file (the packaged file *is* the schema): a typo in a
key would otherwise silently fall back to default wording and make two runs look comparable when they are
not. Every string is compiled as a Jinja template with ``StrictUndefined`` at load time, so a syntax error or
an unknown variable is reported with its key and file before any model is called.

A sweep renders tens of thousands of prompts from a few dozen templates, and most parts repeat (the same
demonstration, task line or question text in many prompts). Each template therefore records the variables it
reads: a render passes only those to Jinja (a small context is much cheaper to build), and
``render_cached`` memoises a part on their values, so a repeated part costs a dictionary look-up.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml

from distalign.errors import InputError
from distalign.prompts.fastrender import FastTemplate, compile_fast

PACKAGED = "templates.yaml"
#: mappings whose keys are data (phrase lookups), not part of the schema
FREE_FORM: frozenset[str] = frozenset(
    {"phrases.attributes", "phrases.group_values", "phrases.group_plurals", "phrases.plural_patterns"}
)

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False, trim_blocks=False
)
#: memoised parts kept per templates object; past this many the memo starts afresh (bounded memory)
MEMO_MAX_ENTRIES = 200_000
_MISSING = object()
_ROWS_SERIAL = itertools.count()


class Rows(list):  # type: ignore[type-arg]
    """A list of template rows (e.g. the options) that is not changed after it is built; it carries its
    memo key, so a list shared by many renders is not frozen again for each of them."""

    def __init__(self, rows: Any) -> None:
        super().__init__(rows)
        self.frozen = ("rows", next(_ROWS_SERIAL))  # unique per list: equal keys imply the same rows


def freeze(value: Any) -> Any:
    """A hashable stand-in that is equal only for values that render identically (1, 1.0 and True do not:
    the type is part of it). Raises ``TypeError`` for anything else, which then is simply not memoised."""
    kind = type(value)
    if kind is str:
        return value
    if kind is Rows:
        return value.frozen
    if kind is list or kind is tuple:
        return (kind, tuple(freeze(v) for v in value))
    if kind is dict:
        return (dict, tuple((k, freeze(v)) for k, v in value.items()))
    if kind is float:
        return (float, repr(value))  # -0.0 == 0.0 and nan != nan, but they render differently
    if value is None or kind is int or kind is bool:
        return (kind, value)
    raise TypeError(f"not memoisable: {kind.__name__}")


@dataclass(frozen=True)
class Templates:
    """Compiled templates addressed by dotted key (``benchmark.task.persona.seq``; list items by index)."""

    source: str
    raw: Mapping[str, Any] = field(repr=False)
    compiled: Mapping[str, jinja2.Template] = field(repr=False)
    #: the variables each template reads (sorted); a key without an entry gets the whole context
    reads: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)
    #: templates in the plain subset of Jinja, rendered without it (see ``distalign.prompts.fastrender``)
    fast: Mapping[str, FastTemplate] = field(default_factory=dict, repr=False, compare=False)
    #: rendered parts and other derived values, keyed by what they depend on (see ``render_cached``)
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def has(self, key: str) -> bool:
        return key in self.compiled

    def render(self, key: str, **ctx: Any) -> str:
        """Render one template; an unknown variable names the template key and file."""
        try:
            template = self.compiled[key]
        except KeyError:
            raise InputError(f"no template {key!r}", file=self.source) from None
        quick = self.fast.get(key)
        if quick is not None:
            try:
                return quick.render(ctx)
            except Exception:  # noqa: BLE001 - an undefined name (Fallback, KeyError) or a bad value:
                pass  # Jinja resolves it (a global) or reports it in its own words
        names = self.reads.get(key)
        if names is not None:
            ctx = {k: ctx[k] for k in names if k in ctx}
        try:
            return template.render(ctx)
        except jinja2.UndefinedError as exc:
            raise InputError(f"template {key!r}: {exc.message}", file=self.source) from None

    def render_cached(self, key: str, **ctx: Any) -> str:
        """``render``, memoised on the values of the variables the template reads: for parts that repeat
        across prompts (a rendering is a pure function of those values)."""
        names = self.reads.get(key)
        quick = self.fast.get(key)
        if names is None or (quick is not None and quick.flat):  # costs no more than its memo key
            return self.render(key, **ctx)
        try:
            memo_key = (key, *(freeze(ctx[k]) if k in ctx else _MISSING for k in names))
            hit = self.memo.get(memo_key)
        except TypeError:
            return self.render(key, **ctx)
        if hit is None:
            hit = self.render(key, **ctx)
            self.remember(memo_key, hit)
        return hit

    def remember(self, memo_key: Any, value: Any) -> None:
        """Store a derived value in the memo, starting it afresh when it is full."""
        if len(self.memo) >= MEMO_MAX_ENTRIES:
            self.memo.clear()
        self.memo[memo_key] = value

    def value(self, key: str) -> Any:
        """A raw (uncompiled) entry, e.g. a phrase map or the letters list."""
        node: Any = self.raw
        for part in key.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def count(self, key: str) -> int:
        """Length of a list entry (e.g. how many paraphrases a framing has)."""
        node = self.value(key)
        return len(node) if isinstance(node, list) else 0


def _check_shape(user: Any, schema: Any, path: str, source: str) -> None:
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
            _check_shape(user[k], schema[k], f"{path}.{k}" if path else str(k), source)
    elif isinstance(schema, list):
        if not isinstance(user, list) or not user:
            raise InputError(f"key {where!r} must be a non-empty list", file=source)
        for i, v in enumerate(user):
            if not isinstance(v, str):
                raise InputError(f"key {path}.{i} must be a string", file=source)
    elif not isinstance(user, str):
        raise InputError(f"key {where!r} must be a string (got {type(user).__name__})", file=source)


def _compile(
    node: Any,
    path: str,
    source: str,
    out: dict[str, jinja2.Template],
    reads: dict[str, tuple[str, ...]] | None = None,
    fast: dict[str, FastTemplate] | None = None,
) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _compile(v, f"{path}.{k}" if path else str(k), source, out, reads, fast)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _compile(v, f"{path}.{i}", source, out, reads, fast)
    else:
        text = str(node)
        try:
            template = out[path] = _ENV.from_string(text)
            template.globals = dict(template.globals)  # a flat copy: every render copies it
            ast = _ENV.parse(text)
            if reads is not None:
                reads[path] = tuple(sorted(jinja2.meta.find_undeclared_variables(ast)))
            if fast is not None and (quick := compile_fast(ast)) is not None:
                fast[path] = quick
        except jinja2.TemplateSyntaxError as exc:
            raise InputError(f"template {path!r}: {exc.message} (line {exc.lineno})", file=source) from None


def _read_yaml(path: Path | str, text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", file=path) from None
    if not isinstance(data, dict):
        raise InputError("a templates file must be a YAML mapping", file=path)
    return data


@lru_cache(maxsize=1)
def _packaged() -> Templates:
    text = files("distalign.prompts").joinpath(PACKAGED).read_text(encoding="utf-8")
    raw = _read_yaml(PACKAGED, text)
    compiled: dict[str, jinja2.Template] = {}
    reads: dict[str, tuple[str, ...]] = {}
    fast: dict[str, FastTemplate] = {}
    _compile(raw, "", PACKAGED, compiled, reads, fast)
    return Templates(
        source=f"distalign/prompts/{PACKAGED}", raw=raw, compiled=compiled, reads=reads, fast=fast
    )


def load_templates(path: str | Path | None = None) -> Templates:
    """The packaged templates, or a user's file validated against them (keys, types, Jinja syntax,
    and a trial render of every prompt shape so undefined variables surface now, not mid-sweep)."""
    default = _packaged()
    if path is None:
        return default
    p = Path(path)
    if not p.is_file():
        raise InputError("templates file not found", file=p)
    raw = _read_yaml(p, p.read_text(encoding="utf-8"))
    _check_shape(raw, default.raw, "", str(p))
    compiled: dict[str, jinja2.Template] = {}
    reads: dict[str, tuple[str, ...]] = {}
    fast: dict[str, FastTemplate] = {}
    _compile(raw, "", str(p), compiled, reads, fast)
    templates = Templates(source=str(p), raw=raw, compiled=compiled, reads=reads, fast=fast)
    from distalign.prompts.render import trial_render  # render needs this module; import late

    trial_render(templates)
    return templates
