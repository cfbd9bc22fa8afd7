"""The Jinja2 sandbox that workflow templates are checked and rendered with.

Definitions are parse-checked with the same environment the engine renders
with, so a template that passes validation cannot fail later on syntax, an
unknown filter or a loader-dependent tag.
"""

from __future__ import annotations

import contextvars
import operator
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import (
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    Undefined,
    nodes,
    pass_eval_context,
)
from jinja2.filters import do_tojson
from jinja2.nodes import EvalContext
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

__all__ = [
    "MAX_TEMPLATE_NESTING",
    "TemplateRenderError",
    "TemplateSyntaxProblem",
    "parse_template",
    "render",
    "template_environment",
    "template_references",
]

#: Bounds on rendering: a template's output, the time it may take, and the size of
#: any sequence or string it builds on the way (``range``, ``*``, ``**``).
MAX_OUTPUT_CHARS = 200_000
MAX_RENDER_SECONDS = 1.0
MAX_SEQUENCE = 10_000

#: Deepest expression/statement nesting accepted. Compiling a template
#: recurses over its syntax tree, so this keeps rendering safe as well.
MAX_TEMPLATE_NESTING = 64

# Tags that need a template loader; workflow templates have none.
_LOADER_TAGS: tuple[tuple[type[nodes.Node], str], ...] = (
    (nodes.Extends, "extends"),
    (nodes.Include, "include"),
    (nodes.Import, "import"),
    (nodes.FromImport, "from ... import"),
)


class TemplateSyntaxProblem(ValueError):
    """A template that cannot be used, with a message meant for the user."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno


class TemplateRenderError(ValueError):
    """A template that failed while rendering, with a message meant for the user."""


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox, with arithmetic that cannot build huge values."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int) and abs(right) > 64:
                raise TemplateRenderError("An exponent above 64 is not allowed in templates.")
            return operator.pow(left, right)
        for value, count in ((left, right), (right, left)):
            if (
                isinstance(value, str | list | tuple)
                and isinstance(count, int)
                and len(value) * max(count, 0) > MAX_OUTPUT_CHARS
            ):
                raise TemplateRenderError("A repeated text or list would be too long.")
        return operator.mul(left, right)


def _bounded_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_SEQUENCE:
        raise TemplateRenderError(f"range() may produce at most {MAX_SEQUENCE} numbers.")
    return result


@pass_eval_context
def _tojson(eval_ctx: EvalContext, value: Any, indent: int | None = None) -> Markup:
    """``tojson`` that names an undefined variable instead of failing to serialise it."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return do_tojson(eval_ctx, value, indent)


@lru_cache(maxsize=1)
def template_environment() -> SandboxedEnvironment:
    """Return the shared sandboxed environment (strict undefined, no autoescape)."""
    # Output goes into JSON bodies, headers and issue text, not HTML, so
    # autoescaping would corrupt it; the sandbox is what keeps templates safe.
    env = _BoundedSandbox(undefined=StrictUndefined, autoescape=False)
    env.globals["range"] = _bounded_range
    env.filters["tojson"] = _tojson
    return env


MAX_LOOP_ITERATIONS = 100_000


@dataclass
class _Budget:
    iterations_left: int
    deadline: float
    clock: Any


_budget: contextvars.ContextVar[_Budget] = contextvars.ContextVar("template_budget")


def _counted(iterable: Any) -> Iterator[Any]:
    """Every ``{% for %}`` loops through here: a shared budget bounds nested loops."""
    budget = _budget.get()
    for item in iterable:
        budget.iterations_left -= 1
        if budget.iterations_left < 0:
            raise TemplateRenderError(
                f"The template's loops ran more than {MAX_LOOP_ITERATIONS:,} times."
            )
        if budget.iterations_left % 1000 == 0 and budget.clock.monotonic() > budget.deadline:
            raise TemplateRenderError("The template took too long to render.")
        yield item


@lru_cache(maxsize=512)
def _compiled(source: str) -> Any:
    env = template_environment()
    tree = parse_template(source)  # the same checks as validation
    for node, _depth in list(_iter_tree(tree)):
        if isinstance(node, nodes.For):
            node.iter = nodes.Call(nodes.Name("__counted__", "load"), [node.iter], [], None, None)
    return env.template_class.from_code(
        env, env.compile(tree), {**env.globals, "__counted__": _counted}
    )


def render(source: str, context: Mapping[str, Any], *, clock: Any = time) -> str:
    """Render ``source`` in the sandbox, bounded in output size and time.

    Raises TemplateRenderError (a ValueError) with a user-readable message for
    anything that goes wrong: undefined names, sandbox violations, limits.
    ``clock`` only needs ``monotonic()``; tests may pass their own.
    """
    try:
        template = _compiled(source)
    except TemplateSyntaxProblem as error:
        raise TemplateRenderError(error.message) from None
    started = clock.monotonic()
    token = _budget.set(_Budget(MAX_LOOP_ITERATIONS, started + MAX_RENDER_SECONDS, clock))
    parts: list[str] = []
    size = 0
    try:
        for chunk in template.generate(dict(context)):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateRenderError(
                    f"The template produced more than {MAX_OUTPUT_CHARS:,} characters."
                )
            if clock.monotonic() - started > MAX_RENDER_SECONDS:
                raise TemplateRenderError("The template took too long to render.")
            parts.append(chunk)
    except TemplateRenderError:
        raise
    except TemplateError as error:
        # Undefined names, sandbox refusals (SecurityError) and filter errors.
        raise TemplateRenderError(f"The template could not be rendered: {error.message}") from None
    except RecursionError:
        raise TemplateRenderError("The template recursed too deeply.") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, MemoryError) as error:
        raise TemplateRenderError(
            f"The template could not be rendered: {type(error).__name__}: {error}"
        ) from None
    finally:
        _budget.reset(token)
    return "".join(parts)


def parse_template(source: str) -> nodes.Template:
    """Parse ``source`` and check it only uses what the sandbox provides.

    Raises TemplateSyntaxProblem for syntax errors, unknown filters or tests,
    loader tags (include, import, extends) and pathological input.
    """
    env = template_environment()
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        where = f" on line {exc.lineno}" if exc.lineno else ""
        detail = (exc.message or "invalid template").rstrip(". ")
        raise TemplateSyntaxProblem(
            f"Template syntax error{where}: {detail}.", exc.lineno
        ) from None
    except (RecursionError, MemoryError):
        raise TemplateSyntaxProblem(
            "The template is nested too deeply or is too large to read."
        ) from None
    except (ValueError, OverflowError):
        # For example an integer literal longer than Python converts.
        raise TemplateSyntaxProblem(
            "The template contains a value that cannot be read "
            "(for example a number with thousands of digits)."
        ) from None
    _check_supported(tree, env)
    return tree


def template_references(source: str) -> list[tuple[str, ...]]:
    """Return the context variable paths that ``source`` reads, in order.

    ``{{ incident.title }}`` gives ``("incident", "title")`` and
    ``{{ steps["n2"].result.key }}`` gives ``("steps", "n2", "result", "key")``.
    A path stops at the first dynamic subscript or call. Names bound inside
    the template (set, for, with, macro arguments, ``loop``) and the
    environment's globals (``range``, ``dict``...) are not references.
    Raises TemplateSyntaxProblem like parse_template.
    """
    return _references(parse_template(source))


def _iter_tree(tree: nodes.Node) -> Iterator[tuple[nodes.Node, int]]:
    """Yield every node with its depth, depth-first in source order, iteratively."""
    stack: list[tuple[nodes.Node, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        yield node, depth
        children = list(node.iter_child_nodes())
        stack.extend((child, depth + 1) for child in reversed(children))


def _check_supported(tree: nodes.Template, env: SandboxedEnvironment) -> None:
    for node, depth in _iter_tree(tree):
        lineno = getattr(node, "lineno", None)
        if depth > MAX_TEMPLATE_NESTING:
            raise TemplateSyntaxProblem(
                f"The template is nested too deeply (more than "
                f"{MAX_TEMPLATE_NESTING} levels); simplify it.",
                lineno,
            )
        for tag_type, tag in _LOADER_TAGS:
            if isinstance(node, tag_type):
                raise TemplateSyntaxProblem(
                    f"'{{% {tag} %}}' is not available in workflow templates "
                    f"(line {lineno}); write the text in place.",
                    lineno,
                )
        if isinstance(node, nodes.Filter) and node.name not in env.filters:
            raise TemplateSyntaxProblem(f"Unknown filter '{node.name}' on line {lineno}.", lineno)
        if isinstance(node, nodes.Test) and node.name not in env.tests:
            raise TemplateSyntaxProblem(f"Unknown test '{node.name}' on line {lineno}.", lineno)


def _target_names(target: nodes.Node) -> set[str]:
    """Names bound by an assignment or loop target (a name or a tuple of them)."""
    return {
        node.name
        for node, _depth in _iter_tree(target)
        if isinstance(node, nodes.Name) and node.ctx in ("store", "param")
    }


_MACRO_NAMES = frozenset({"caller", "varargs", "kwargs"})


def _references(tree: nodes.Template) -> list[tuple[str, ...]]:
    env = template_environment()
    # `{% set %}` and macro names are visible from the point of definition
    # on; treating them as bound everywhere is simpler and only more lenient.
    template_bound: set[str] = set(env.globals)
    for node, _depth in _iter_tree(tree):
        if isinstance(node, nodes.Assign | nodes.AssignBlock):
            template_bound |= _target_names(node.target)
        elif isinstance(node, nodes.Macro):
            template_bound.add(node.name)

    found: dict[tuple[str, ...], None] = {}
    stack: list[tuple[nodes.Node, frozenset[str]]] = [(tree, frozenset())]

    def push(children: list[nodes.Node], bound: frozenset[str]) -> None:
        stack.extend((child, bound) for child in reversed(children))

    while stack:
        node, bound = stack.pop()
        if isinstance(node, nodes.For):
            inner = bound | _target_names(node.target) | {"loop"}
            # Pushed in reverse of source order: else, body, test, iter.
            push(list(node.else_), bound)
            push(list(node.body), inner)
            if node.test is not None:
                push([node.test], inner)
            push([node.iter], bound)
        elif isinstance(node, nodes.Macro | nodes.CallBlock):
            args = {arg.name for arg in node.args}
            push(list(node.body), bound | args | _MACRO_NAMES)
            push(list(node.defaults), bound)
            if isinstance(node, nodes.CallBlock):
                push([node.call], bound)
        elif isinstance(node, nodes.With):
            targets: set[str] = set()
            for target in node.targets:
                targets |= _target_names(target)
            push(list(node.body), bound | targets)
            push(list(node.values), bound)
        elif isinstance(node, nodes.Getattr | nodes.Getitem):
            parts: list[str] = []
            current: nodes.Node = node
            while True:
                if isinstance(current, nodes.Getattr):
                    parts.append(current.attr)
                    current = current.node
                elif (
                    isinstance(current, nodes.Getitem)
                    and isinstance(current.arg, nodes.Const)
                    and isinstance(current.arg.value, str)
                ):
                    parts.append(current.arg.value)
                    current = current.node
                else:
                    break
            if not parts:
                # A dynamic subscript: both sides are ordinary expressions.
                push(list(node.iter_child_nodes()), bound)
            elif isinstance(current, nodes.Name) and current.ctx == "load":
                if current.name not in bound and current.name not in template_bound:
                    found[(current.name, *reversed(parts))] = None
            else:
                push([current], bound)
        elif isinstance(node, nodes.Name):
            if node.ctx == "load" and node.name not in bound and node.name not in template_bound:
                found[(node.name,)] = None
        else:
            push(list(node.iter_child_nodes()), bound)
    return list(found)
