"""Render the plain subset of Jinja that prompt templates use, without Jinja's per-render machinery.

A sweep renders each prompt part thousands of times, and for a short part Jinja's set-up (a context, a
generator, attribute look-ups that go through exceptions) costs several times the work itself. Templates
are still parsed by Jinja; a template whose syntax tree holds only text, constants, names, attribute
look-ups, ``not``, ``if``/``elif``/``else`` and a plain ``for`` (with ``loop.index``, ``index0``, ``first``,
``last``, ``length``, ``revindex``, ``revindex0``) is compiled to one small Python function that follows
Jinja's own rules: ``str()`` of each output, Python truthiness in tests, attribute-then-item look-up.
Anything else (filters, calls, assignments, macros, ...) is left to Jinja, and so is any render that meets
an undefined value: it raises ``Fallback`` (or ``KeyError``) and Jinja renders it instead, with its own
error for a value that is really missing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2.nodes as nodes

Ctx = Mapping[str, Any]

#: names a plain ``dict`` answers with ``getattr`` (its methods): Jinja gives those before the item
_DICT_ATTRS = frozenset(dir(dict))
#: ``loop.<attr>`` as a Python expression of the loop's position ``{i}`` (from 0) and length ``{n}``
_LOOP_ATTRS: Mapping[str, str] = {
    "index": "({i} + 1)",
    "index0": "{i}",
    "first": "({i} == 0)",
    "last": "({i} == {n} - 1)",
    "length": "{n}",
    "revindex": "({n} - {i})",
    "revindex0": "({n} - {i} - 1)",
}
_SERIAL = itertools.count()


class Fallback(Exception):
    """This render needs Jinja (an undefined value: Jinja gives the result or the error)."""


class Unsupported(Exception):
    """The template uses a construct this module does not render."""


@dataclass(frozen=True)
class FastTemplate:
    render: Callable[[Ctx], str]
    #: only text and bare names: cheaper to render again than to memoise
    flat: bool
    #: the generated function's source (for error reports and tests)
    source: str


def compile_fast(ast: nodes.Template) -> FastTemplate | None:
    """The template as a Python function, or ``None`` when it uses anything beyond the plain subset."""
    gen = _Gen()
    try:
        gen.block(ast.body, {}, 1)
    except Unsupported:
        return None
    source = "\n".join(
        ["def render(ctx):", "    out = []", "    w = out.append", *gen.lines, '    return "".join(out)']
    )
    scope: dict[str, Any] = {"_getattr": _getattr}
    exec(compile(source, f"<fast template {next(_SERIAL)}>", "exec"), scope)  # noqa: S102 - our own code
    flat = all(
        isinstance(stmt, nodes.Output)
        and all(isinstance(n, nodes.TemplateData | nodes.Const | nodes.Name) for n in stmt.nodes)
        for stmt in ast.body
    )
    return FastTemplate(scope["render"], flat, source)


class _Gen:
    """Python source for a template body. Jinja names become ``ctx[...]`` look-ups or numbered locals,
    text becomes ``repr`` literals, so nothing from the template is ever pasted in as code."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.loops = itertools.count()

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def block(self, stmts: list[nodes.Node], scope: dict[str, Any], depth: int) -> None:
        start = len(self.lines)
        text: list[str] = []
        for stmt in stmts:
            if isinstance(stmt, nodes.Output):
                for node in stmt.nodes:
                    if isinstance(node, nodes.TemplateData):
                        text.append(node.data)
                    elif isinstance(node, nodes.Const):
                        text.append(str(node.value))
                    else:
                        self.flush(text, depth)
                        self.emit(depth, f"w(str({self.expr(node, scope)}))")
                continue
            self.flush(text, depth)
            if isinstance(stmt, nodes.If):
                self.if_(stmt, scope, depth)
            elif isinstance(stmt, nodes.For):
                self.for_(stmt, scope, depth)
            else:
                raise Unsupported(type(stmt).__name__)
        self.flush(text, depth)
        if len(self.lines) == start:
            self.emit(depth, "pass")

    def flush(self, text: list[str], depth: int) -> None:
        if text:
            joined = "".join(text)
            if joined:
                self.emit(depth, f"w({joined!r})")
            text.clear()

    def expr(self, node: nodes.Node, scope: dict[str, Any]) -> str:
        if isinstance(node, nodes.Const) and isinstance(node.value, str | int | float | bool | None):
            return repr(node.value)
        if isinstance(node, nodes.Name) and node.ctx == "load":
            local = scope.get(node.name)
            if isinstance(local, str):
                return local
            if local is not None:  # the loop record itself
                raise Unsupported("loop used as a value")
            return f"ctx[{node.name!r}]"
        if isinstance(node, nodes.Not):
            return f"(not {self.expr(node.node, scope)})"
        if isinstance(node, nodes.Getattr) and node.ctx == "load":
            target = node.node
            if isinstance(target, nodes.Name) and isinstance(scope.get(target.name), tuple):
                pattern = _LOOP_ATTRS.get(node.attr)
                if pattern is None:
                    raise Unsupported(f"loop.{node.attr}")
                i, n = scope[target.name]
                return pattern.format(i=i, n=n)
            return f"_getattr({self.expr(target, scope)}, {node.attr!r})"
        raise Unsupported(type(node).__name__)

    def if_(self, node: nodes.If, scope: dict[str, Any], depth: int) -> None:
        self.emit(depth, f"if {self.expr(node.test, scope)}:")
        self.block(node.body, scope, depth + 1)
        for branch in node.elif_:
            self.emit(depth, f"elif {self.expr(branch.test, scope)}:")
            self.block(branch.body, scope, depth + 1)
        if node.else_:
            self.emit(depth, "else:")
            self.block(node.else_, scope, depth + 1)

    def for_(self, node: nodes.For, scope: dict[str, Any], depth: int) -> None:
        if node.else_ or node.test is not None or node.recursive:
            raise Unsupported("for with else, a filter or recursion")
        if not isinstance(node.target, nodes.Name) or node.target.name == "loop":
            raise Unsupported("for target")
        k = next(self.loops)
        seq, i, n, var = f"seq{k}", f"i{k}", f"n{k}", f"v{k}"
        self.emit(depth, f"{seq} = list({self.expr(node.iter, scope)})")
        self.emit(depth, f"{n} = len({seq})")
        self.emit(depth, f"for {i}, {var} in enumerate({seq}):")
        self.block(node.body, {**scope, node.target.name: var, "loop": (i, n)}, depth + 1)


def _getattr(obj: Any, attr: str) -> Any:
    """Jinja's ``Environment.getattr``: the attribute, else the item, else undefined (-> Jinja)."""
    if type(obj) is dict and attr not in _DICT_ATTRS:
        try:
            return obj[attr]
        except KeyError:
            raise Fallback(attr) from None
    try:
        return getattr(obj, attr)
    except AttributeError:
        pass
    try:
        return obj[attr]
    except (TypeError, LookupError, AttributeError):
        raise Fallback(attr) from None


__all__ = ["FastTemplate", "Fallback", "compile_fast"]
