"""The Jinja2 sandbox that workflow templates are checked and rendered with.

Definitions are parse-checked with the same environment the engine renders
with, so a template that passes validation cannot fail later on syntax, an
unknown filter or a loader-dependent tag.
"""

from __future__ import annotations

import functools
import re
import time
import types
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, cast

from jinja2 import (
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    Undefined,
    nodes,
    pass_eval_context,
)
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.filters import do_tojson
from jinja2.nodes import EvalContext
from jinja2.sandbox import SandboxedEnvironment, SandboxedFormatter
from jinja2.utils import generate_lorem_ipsum
from markupsafe import Markup

from app.definition import template_bounds as bounds

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
#: any sequence or string it builds on the way (see app.definition.template_bounds).
MAX_OUTPUT_CHARS = 200_000
MAX_RENDER_SECONDS = 1.0
MAX_SEQUENCE = 10_000
MAX_LOOP_ITERATIONS = 100_000

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

SECRET_WHOLE = "A secret can only be placed whole in a template, as {{ secrets.<name> }}"


class TemplateSyntaxProblem(ValueError):
    """A template that cannot be used, with a message meant for the user."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno


class TemplateRenderError(ValueError):
    """A template that failed while rendering, with a message meant for the user."""


class _Secret:
    """A secret's value inside a template: it can be printed whole and nothing else."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TemplateRenderError(f"{SECRET_WHOLE}; it cannot be changed, tested or compared.")

    __str__ = __format__ = __iter__ = __len__ = __getitem__ = __contains__ = _refuse
    __bool__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _refuse
    __add__ = __radd__ = __mul__ = __rmul__ = __mod__ = __rmod__ = __reversed__ = _refuse
    __int__ = __float__ = __index__ = _refuse

    def __repr__(self) -> str:
        return "[secret]"


class _Secrets:
    """``secrets`` in a template: look a secret up by name, nothing more."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = {name: _Secret(value) for name, value in values.items()}

    def __getitem__(self, name: str) -> _Secret:
        try:
            return self._values[name]
        except KeyError:
            raise TemplateRenderError(f"This workflow has no secret named '{name}'.") from None

    def __repr__(self) -> str:
        return "[secrets]"


def _holds_secret(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    return any(isinstance(value, _Secret | _Secrets) for value in (*args, *kwargs.values()))


def _refuse_secret() -> TemplateRenderError:
    return TemplateRenderError(f"{SECRET_WHOLE}; it cannot be changed, tested or compared.")


def _guard_secrets(func: Any) -> Any:
    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if _holds_secret(args, kwargs):
            raise _refuse_secret()
        return func(*args, **kwargs)

    return guarded


class _BoundedFormatter(SandboxedFormatter):
    """``str.format`` whose fields are measured before they are formatted."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        if isinstance(value, _Secret | _Secrets):
            raise _refuse_secret()
        numbers = [bounds.spec_number(n) for n in re.findall(r"\d+", format_spec)]
        size = (len(value) if isinstance(value, str) else bounds.deep_size(value)) + sum(numbers)
        bounds.check_size(size, "format()")
        result = super().format_field(value, format_spec)
        bounds.charge(len(result))
        return result

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if isinstance(value, _Secret | _Secrets):
            raise _refuse_secret()
        if conversion is not None:
            bounds.check_deep(value, "format()")
        return super().convert_field(value, conversion)


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``~``, comparisons and ``{...}`` keys to bounded calls."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("), context.eval_ctx.autoescape)")

    @optimizeconst
    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        self.write("environment.bounded_compare(")
        self.visit(node.expr, frame)
        self.write(", (")
        for op in node.ops:
            self.write(f"({op.op!r}, ")
            self.visit(op.expr, frame)
            self.write("), ")
        self.write("))")

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self.write("{")
        for idx, item in enumerate(node.items):
            if idx:
                self.write(", ")
            self.write("environment.bounded_key(")
            self.visit(item.key, frame)
            self.write("): ")
            self.visit(item.value, frame)
        self.write("}")


def _finalize(value: Any) -> Any:
    """Every ``{{ ... }}`` becomes text here: a secret is revealed, anything else measured."""
    if isinstance(value, _Secret):
        return value.reveal()
    if isinstance(value, _Secrets):
        raise _refuse_secret()
    return bounds.output(value)


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox, with every operation that can build a big value bounded first."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    code_generator_class = _BoundedCodeGenerator

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if isinstance(left, _Secret | _Secrets) or isinstance(right, _Secret | _Secrets):
            raise _refuse_secret()
        return bounds.binop(operator_name, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        bounds.check_time()
        if isinstance(obj, _Secret):
            raise _refuse_secret()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        bounds.check_time()
        if isinstance(obj, _Secret) or isinstance(argument, _Secret | _Secrets):
            raise _refuse_secret()
        if isinstance(argument, tuple):
            bounds.check_deep(argument, "a subscript")
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if isinstance(__obj, _Secret | _Secrets) or _holds_secret(args, kwargs):
            raise _refuse_secret()

        def sandboxed(obj: Any, *a: Any, **k: Any) -> Any:
            return SandboxedEnvironment.call(__self, __context, obj, *a, **k)

        return bounds.checked_call(sandboxed, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        if not isinstance(
            value, types.MethodType | types.BuiltinMethodType
        ) or value.__name__ not in (
            "format",
            "format_map",
        ):
            return None
        f_self: Any = value.__self__
        if not isinstance(f_self, str):
            return None
        str_type: type[str] = type(f_self)
        is_format_map = value.__name__ == "format_map"
        formatter = _BoundedFormatter(self)

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs = args[0]
                args = ()
            return str_type(formatter.vformat(f_self, args, kwargs))

        return functools.update_wrapper(wrapper, value)

    @staticmethod
    def bounded_concat(parts: tuple[Any, ...], autoescape: bool = False) -> str:
        return bounds.concat(parts, autoescape)

    @staticmethod
    def bounded_compare(left: Any, ops: tuple[tuple[str, Any], ...]) -> bool:
        return bounds.compare(left, ops)

    @staticmethod
    def bounded_key(value: Any) -> Any:
        if isinstance(value, _Secret | _Secrets):
            raise _refuse_secret()
        return bounds.dict_key(value)


def _bounded_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_SEQUENCE:
        raise TemplateRenderError(
            f"The template exceeded the size limit: range() may produce at most "
            f"{MAX_SEQUENCE:,} numbers."
        )
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
    env = _BoundedSandbox(undefined=StrictUndefined, autoescape=False, finalize=_finalize)
    env.globals["range"] = _bounded_range
    env.globals["lipsum"] = bounds.bounded_lipsum(generate_lorem_ipsum)
    env.filters["tojson"] = _tojson
    for name, func in list(env.filters.items()):
        passes = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
        env.filters[name] = _guard_secrets(bounds.bounded_filter(name, func, passes))
    for name, func in list(env.tests.items()):
        env.tests[name] = _guard_secrets(bounds.bounded_test(name, cast(Any, func)))
    return env


def _counted(iterable: Any) -> Iterator[Any]:
    """Every ``{% for %}`` loops through here: a shared budget bounds nested loops."""
    if isinstance(iterable, _Secret | _Secrets):
        raise _refuse_secret()
    for item in iterable:
        bounds.count_iteration()
        yield item


@lru_cache(maxsize=512)
def _compiled(source: str) -> Any:
    env = template_environment()
    tree = _parse_checked(source)  # the same checks as validation, on a tree of its own
    for node, _depth in list(_iter_tree(tree)):
        if isinstance(node, nodes.For):
            node.iter = nodes.Call(nodes.Name("__counted__", "load"), [node.iter], [], None, None)
    return env.template_class.from_code(
        env, env.compile(tree), {**env.globals, "__counted__": _counted}
    )


def render(
    source: str,
    context: Mapping[str, Any],
    *,
    clock: Any = time,
    deadline: float | None = None,
) -> str:
    """Render ``source`` in the sandbox, bounded in size, work and time.

    Raises TemplateRenderError (a ValueError) with a user-readable message for
    anything that goes wrong: undefined names, sandbox violations, limits.
    ``clock`` only needs ``monotonic()``; tests may pass their own. ``deadline``
    (on ``clock.monotonic()``) shares one time limit between several renders, as
    a dry run does; a render never runs longer than MAX_RENDER_SECONDS either way.
    """
    try:
        template = _compiled(source)
    except TemplateSyntaxProblem as error:
        raise TemplateRenderError(error.message) from None
    started = clock.monotonic()
    limit = started + MAX_RENDER_SECONDS
    seconds = MAX_RENDER_SECONDS
    if deadline is not None and deadline < limit:
        limit = deadline
    budget = bounds.RenderBudget(
        deadline=limit, clock=clock, seconds=seconds, iterations_left=MAX_LOOP_ITERATIONS
    )
    values = dict(context)
    if isinstance(values.get("secrets"), Mapping):
        values["secrets"] = _Secrets(values["secrets"])
    token = bounds.use_budget(budget)
    parts: list[str] = []
    size = 0
    try:
        bounds.check_time()
        for chunk in template.generate(values):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateRenderError(
                    f"The template exceeded the output limit: it produced more than "
                    f"{MAX_OUTPUT_CHARS:,} characters."
                )
            bounds.check_time()
            parts.append(chunk)
    except TemplateRenderError:
        raise
    except bounds.TemplateLimitError as error:
        raise TemplateRenderError(str(error)) from None
    except TemplateError as error:
        # Undefined names, sandbox refusals (SecurityError) and filter errors.
        raise TemplateRenderError(f"The template could not be rendered: {error.message}") from None
    except RecursionError:
        raise TemplateRenderError("The template recursed too deeply.") from None
    except MemoryError:
        raise TemplateRenderError("The template exceeded the memory available.") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as error:
        raise TemplateRenderError(
            f"The template could not be rendered: {type(error).__name__}: {error}"
        ) from None
    finally:
        bounds.reset_budget(token)
    return "".join(parts)


def parse_template(source: str) -> nodes.Template:
    """Parse ``source`` and check it only uses what the sandbox provides.

    Raises TemplateSyntaxProblem for syntax errors, unknown filters or tests,
    loader tags (include, import, extends), a secret used other than placed
    whole, and pathological input. The tree is the caller's own.
    """
    return _parse_checked(source)


def _parse_checked(source: str) -> nodes.Template:
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
    Raises TemplateSyntaxProblem like parse_template. Each template is parsed
    once: the answer (or the problem) is remembered, so validating a definition
    and finding its secrets do not parse the same text again.
    """
    outcome = _analysed(source) if len(source) <= _CACHED_SOURCE_CHARS else _analyse(source)
    if isinstance(outcome, TemplateSyntaxProblem):
        raise TemplateSyntaxProblem(outcome.message, outcome.lineno)
    return list(outcome)


# Without one of these a template is plain text (no line statements are configured).
_SYNTAX_MARKERS = ("{{", "{%", "{#")

# Parsed outcomes of the templates seen last; longer sources are parsed each time.
_CACHED_SOURCE_CHARS = 16_000


def _analyse(source: str) -> tuple[tuple[str, ...], ...] | TemplateSyntaxProblem:
    if not any(marker in source for marker in _SYNTAX_MARKERS):
        return ()  # plain text: nothing for Jinja to read
    try:
        return tuple(_references(_parse_checked(source)))
    except TemplateSyntaxProblem as problem:
        return problem.with_traceback(None)  # remembered: keep no frames alive


_analysed = lru_cache(maxsize=2048)(_analyse)


def _children(node: nodes.Node) -> list[nodes.Node]:
    """``node.iter_child_nodes()`` as a list, without its generators (a hot path on save)."""
    found: list[nodes.Node] = []
    for name in node.fields:
        item = getattr(node, name, None)
        if isinstance(item, list):
            found.extend(child for child in item if isinstance(child, nodes.Node))
        elif isinstance(item, nodes.Node):
            found.append(item)
    return found


def _iter_tree(tree: nodes.Node) -> Iterator[tuple[nodes.Node, int]]:
    """Yield every node with its depth, depth-first in source order, iteratively."""
    stack: list[tuple[nodes.Node, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        yield node, depth
        stack.extend((child, depth + 1) for child in reversed(_children(node)))


def _check_supported(tree: nodes.Template, env: SandboxedEnvironment) -> None:
    # One walk over the tree: the nesting, tags, filters and tests, and where
    # `secrets` appears (with each node's parent, to look at its uses afterwards).
    parents: dict[int, nodes.Node] = {}
    uses: list[nodes.Name] = []
    stack: list[tuple[nodes.Node, int]] = [(tree, 0)]
    loader_tags = tuple(tag_type for tag_type, _tag in _LOADER_TAGS)
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TEMPLATE_NESTING:
            lineno = getattr(node, "lineno", None)
            raise TemplateSyntaxProblem(
                f"The template is nested too deeply (more than "
                f"{MAX_TEMPLATE_NESTING} levels); simplify it.",
                lineno,
            )
        if isinstance(node, nodes.Name):
            if node.name == "secrets":
                uses.append(node)
        elif isinstance(node, nodes.Filter):
            if node.name not in env.filters:
                raise TemplateSyntaxProblem(
                    f"Unknown filter '{node.name}' on line {node.lineno}.", node.lineno
                )
        elif isinstance(node, nodes.Test):
            if node.name not in env.tests:
                raise TemplateSyntaxProblem(
                    f"Unknown test '{node.name}' on line {node.lineno}.", node.lineno
                )
        elif isinstance(node, loader_tags):
            tag = next(tag for tag_type, tag in _LOADER_TAGS if isinstance(node, tag_type))
            raise TemplateSyntaxProblem(
                f"'{{% {tag} %}}' is not available in workflow templates "
                f"(line {node.lineno}); write the text in place.",
                node.lineno,
            )
        for child in reversed(_children(node)):
            parents[id(child)] = node
            stack.append((child, depth + 1))
    _check_secrets(uses, parents)


# Statements whose body becomes a value the template can change before printing it.
_CAPTURING: tuple[tuple[type[nodes.Node], str], ...] = (
    (nodes.Macro, "inside a macro"),
    (nodes.CallBlock, "inside a call block"),
    (nodes.FilterBlock, "inside a filter block"),
    (nodes.AssignBlock, "inside a set block"),
    (nodes.Block, "inside a block"),
)


def _secret_use(chain: tuple[nodes.Node, ...]) -> str | None:
    """What a template does with ``secrets`` (the last node of ``chain``), or None
    when it only places one secret whole: ``{{ secrets.name }}`` directly in an output."""
    name = chain[-1]
    parent = chain[-2] if len(chain) > 1 else None
    if (
        not (
            isinstance(parent, nodes.Getattr)
            or (
                isinstance(parent, nodes.Getitem)
                and isinstance(parent.arg, nodes.Const)
                and isinstance(parent.arg.value, str)
            )
        )
        or getattr(parent, "node", None) is not name
    ):
        if isinstance(parent, nodes.Getitem):
            return "subscripts secrets with something other than a name"
        return "uses secrets without naming one"
    user = chain[-3] if len(chain) > 2 else None
    described: list[tuple[type[nodes.Node], str]] = [
        (nodes.Filter, "applies a filter to a secret"),
        (nodes.Test, "tests a secret"),
        (nodes.Compare, "compares a secret"),
        (nodes.Operand, "compares a secret"),
        (nodes.Concat, "joins a secret to other text with '~'"),
        (nodes.BinExpr, "calculates with a secret"),
        (nodes.UnaryExpr, "calculates with a secret"),
        (nodes.CondExpr, "tests or chooses a secret in a condition"),
        (nodes.For, "loops over a secret"),
        (nodes.If, "tests a secret"),
        (nodes.Assign, "assigns a secret to a variable"),
        (nodes.With, "assigns a secret to a variable"),
        (nodes.Keyword, "passes a secret to a function or macro"),
        (nodes.List, "puts a secret in a list"),
        (nodes.Tuple, "puts a secret in a list"),
        (nodes.Pair, "puts a secret in a dictionary"),
        (nodes.Slice, "slices a secret"),
    ]
    if isinstance(user, nodes.Getattr):
        grand = chain[-4] if len(chain) > 3 else None
        if isinstance(grand, nodes.Call) and grand.node is user:
            return f"calls the method '{user.attr}' on a secret"
        return f"reads the attribute '{user.attr}' of a secret"
    if isinstance(user, nodes.Getitem):
        if isinstance(user.arg, nodes.Slice):
            return "slices a secret"
        return "takes a part of a secret"
    if isinstance(user, nodes.Call):
        if user.node is parent:
            return "calls a secret"
        return "passes a secret to a function or macro"
    for node_type, text in described:
        if isinstance(user, node_type):
            return text
    if not isinstance(user, nodes.Output):
        return "uses a secret in an expression"
    for ancestor in chain[:-3]:
        for node_type, where in _CAPTURING:
            if isinstance(ancestor, node_type):
                return f"places a secret {where}, where its text can be changed"
    return None


def _check_secrets(uses: list[nodes.Name], parents: Mapping[int, nodes.Node]) -> None:
    """A secret may only be placed whole, so that no template can disclose part of it."""
    for name in uses:
        chain: list[nodes.Node] = [name]
        while id(chain[-1]) in parents:
            chain.append(parents[id(chain[-1])])
        what = _secret_use(tuple(reversed(chain)))
        if what is not None:
            raise TemplateSyntaxProblem(f"{SECRET_WHOLE}: line {name.lineno} {what}.", name.lineno)


def _target_names(target: nodes.Node) -> set[str]:
    """Names bound by an assignment or loop target (a name or a tuple of them)."""
    return {
        node.name
        for node, _depth in _iter_tree(target)
        if isinstance(node, nodes.Name) and node.ctx in ("store", "param")
    }


_MACRO_NAMES = frozenset({"caller", "varargs", "kwargs"})


def _has_binders(tree: nodes.Template) -> bool:
    """Whether ``{% set %}`` or ``{% macro %}`` occur anywhere (they are statements,
    found among the body statements of the template and of other statements)."""
    stack: list[nodes.Node] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.Assign | nodes.AssignBlock | nodes.Macro):
            return True
        if isinstance(node, nodes.Stmt):
            for name in ("body", "else_", "elif_"):
                stack.extend(getattr(node, name, None) or ())
    return False


def _references(tree: nodes.Template) -> list[tuple[str, ...]]:
    env = template_environment()
    # `{% set %}` and macro names are visible from the point of definition
    # on; treating them as bound everywhere is simpler and only more lenient.
    template_bound: set[str] = set(env.globals)
    binders = (nodes.Assign, nodes.AssignBlock, nodes.Macro)
    for binder in tree.find_all(binders) if _has_binders(tree) else ():
        if isinstance(binder, nodes.Assign | nodes.AssignBlock):
            template_bound |= _target_names(binder.target)
        elif isinstance(binder, nodes.Macro):
            template_bound.add(binder.name)

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
                push(_children(node), bound)
            elif isinstance(current, nodes.Name) and current.ctx == "load":
                if current.name not in bound and current.name not in template_bound:
                    found[(current.name, *reversed(parts))] = None
            else:
                push([current], bound)
        elif isinstance(node, nodes.Name):
            if node.ctx == "load" and node.name not in bound and node.name not in template_bound:
                found[(node.name,)] = None
        else:
            push(_children(node), bound)
    return list(found)


def clear_caches() -> None:
    """Forget every parsed and compiled template (a benchmark measures the first parse)."""
    _analysed.cache_clear()
    _compiled.cache_clear()
