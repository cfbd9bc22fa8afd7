"""Size and time bounds for every template operation that can build a big value.

The sandbox calls into this module *before* an operation runs: each check
estimates the size of the result (characters of a string, items of a list, digits
of a number) from the operands, and refuses the operation when the estimate is
over :data:`MAX_VALUE_SIZE`. What an operation did build is charged to the
render's budget (:class:`RenderBudget`), which bounds the total work of a render
and carries its deadline; every check also looks at the deadline. Each single
operation is therefore bounded in memory and time, and a render is bounded as a
whole, without a subprocess or a signal.
"""

from __future__ import annotations

import contextvars
import operator
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Set
from dataclasses import dataclass
from functools import wraps
from typing import Any, cast

from jinja2.filters import make_attrgetter
from jinja2.runtime import markup_join
from jinja2.utils import Namespace

#: The largest string (characters), list, tuple or dict (items) one operation may build.
MAX_VALUE_SIZE = 200_000
#: The largest integer (in bits) arithmetic may build: Python prints at most 4,300 digits.
MAX_INT_BITS = 14_000
#: The characters and items all operations of one render may build together.
MAX_RENDER_WORK = 4_000_000


class TemplateLimitError(ValueError):
    """A template went over a size, work or time limit (a user-readable message)."""


@dataclass
class RenderBudget:
    """What one render (or a dry run's renders together) may still spend."""

    deadline: float
    clock: Any
    seconds: float
    work_left: int = MAX_RENDER_WORK
    iterations_left: int = 100_000


_budget: contextvars.ContextVar[RenderBudget | None] = contextvars.ContextVar(
    "template_budget", default=None
)


def current_budget() -> RenderBudget | None:
    return _budget.get()


def use_budget(budget: RenderBudget | None) -> contextvars.Token[RenderBudget | None]:
    return _budget.set(budget)


def reset_budget(token: contextvars.Token[RenderBudget | None]) -> None:
    _budget.reset(token)


def _seconds(value: float) -> str:
    return "1 second" if value == 1 else f"{value:g} seconds"


def check_time() -> None:
    """Raise when the render's deadline has passed (a no-op outside a render)."""
    budget = _budget.get()
    if budget is not None and budget.clock.monotonic() > budget.deadline:
        raise TemplateLimitError(
            f"The template exceeded its time limit of {_seconds(budget.seconds)}."
        )


def refuse(what: str, size: int) -> TemplateLimitError:
    return TemplateLimitError(
        f"The template exceeded the size limit: {what} would build about {size:,} "
        f"characters or items; one value may hold at most {MAX_VALUE_SIZE:,}."
    )


def check_size(size: int, what: str) -> None:
    """Refuse an operation whose result would be larger than one value may be."""
    if size > MAX_VALUE_SIZE:
        raise refuse(what, size)


def charge(size: int) -> None:
    """Count what an operation built against the render's work budget, and the clock."""
    budget = _budget.get()
    if budget is None:
        return
    budget.work_left -= size + 1
    if budget.work_left < 0:
        raise TemplateLimitError(
            f"The template exceeded its work limit: its operations built more than "
            f"{MAX_RENDER_WORK:,} characters or items in total."
        )
    if budget.clock.monotonic() > budget.deadline:
        raise TemplateLimitError(
            f"The template exceeded its time limit of {_seconds(budget.seconds)}."
        )


def count_iteration() -> None:
    budget = _budget.get()
    if budget is None:
        return
    budget.iterations_left -= 1
    if budget.iterations_left < 0:
        raise TemplateLimitError("The template exceeded its limit of 100,000 loop iterations.")
    if budget.clock.monotonic() > budget.deadline:
        raise TemplateLimitError(
            f"The template exceeded its time limit of {_seconds(budget.seconds)}."
        )


# --- Sizes -----------------------------------------------------------------------


def int_digits(value: int) -> int:
    return int(abs(value).bit_length() * 0.30103) + 1


def shallow_size(value: Any) -> int:
    """Characters of a string, items of a container, digits of a number; else 1."""
    if isinstance(value, str | bytes | bytearray | list | tuple | dict | Set):
        return len(value)
    if isinstance(value, int):
        return int_digits(value)
    return 1


_ITERABLES: tuple[type[Any], ...] = (
    list,
    tuple,
    Set,
    type({}.keys()),
    type({}.values()),
    type({}.items()),
)


def deep_size(value: Any, limit: int = MAX_VALUE_SIZE) -> int:
    """About how long ``str(value)`` is, counting shared parts each time they appear.

    A list that holds the same big list a hundred times prints it a hundred times,
    and compares or hashes it item by item as often: this is the size that costs.
    The walk stops as soon as the size passes ``limit``, so it costs at most that.
    """
    total = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        cls = type(item)
        # Exact types first: the ABC checks below cost far more per item.
        if cls is str or cls is bytes:
            total += len(item) + 2
        elif cls is int:
            total += int_digits(item)
        elif cls is list or cls is tuple:
            total += 2 + 2 * len(item)
            if total > limit:
                return total
            stack.extend(item)
        elif cls is dict:
            total += 2 + 4 * len(item)
            if total > limit:
                return total
            stack.extend(item.keys())
            stack.extend(item.values())
        elif item is None or cls is bool or cls is float:
            total += 8
        elif isinstance(item, str | bytes | bytearray):
            total += len(item) + 2
        elif isinstance(item, int):
            total += int_digits(item)
        elif isinstance(item, Namespace):
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
            total += 12
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            if total > limit:
                return total
            for key in item:
                stack.append(key)
                stack.append(item[key])
        elif isinstance(item, _ITERABLES):
            items = cast(Collection[Any], item)
            total += 2 + 2 * len(items)
            if total > limit:
                return total
            stack.extend(items)
        else:
            total += 64
        if total > limit:
            return total
    return total


def check_deep(value: Any, what: str) -> None:
    """Refuse to print, compare or hash a value whose expanded size is over the limit."""
    size = deep_size(value)
    if size > MAX_VALUE_SIZE:
        raise refuse(what, size)


# --- Operators ---------------------------------------------------------------------

_BINOPS: Mapping[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}

_SEQUENCES = (str, bytes, bytearray, list, tuple)


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def binop(op: str, left: Any, right: Any) -> Any:
    """Apply a template operator after checking the size of what it would build."""
    check_time()
    label = f"'{op}'"
    if op == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        bits = abs(left).bit_length() * right
        if bits > MAX_INT_BITS:
            raise TemplateLimitError(
                f"The template exceeded the size limit: '**' would build a number of "
                f"about {int(bits * 0.30103):,} digits; numbers may have at most "
                f"{int(MAX_INT_BITS * 0.30103):,}."
            )
    elif op == "*":
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, _SEQUENCES) and _is_int(count):
                check_size(len(seq) * max(count, 0), label)
        if _is_int(left) and _is_int(right):
            _check_int_bits(left.bit_length() + right.bit_length(), label)
    elif op in ("+", "-"):
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            check_size(len(left) + len(right), label)
        elif _is_int(left) and _is_int(right):
            _check_int_bits(max(left.bit_length(), right.bit_length()) + 1, label)
    elif op == "%" and isinstance(left, str | bytes):
        check_size(percent_format_size(left, right), "'%' formatting")
    result = _BINOPS[op](left, right)
    charge(shallow_size(result))
    return result


def _check_int_bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise TemplateLimitError(
            f"The template exceeded the size limit: {what} would build a number of about "
            f"{int(bits * 0.30103):,} digits; numbers may have at most "
            f"{int(MAX_INT_BITS * 0.30103):,}."
        )


_PERCENT_SPEC = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d*))?"
    r"[hlL]?(?P<type>.)?",
    re.S,
)


def spec_number(digits: str) -> int:
    """A width or precision written in a format spec (very long ones as 10**12)."""
    return int(digits) if len(digits) <= 12 else 10**12


def percent_format_size(template: str | bytes, args: Any) -> int:
    """An upper bound on the length of ``template % args``."""
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    positional: list[Any]
    mapping: Mapping[Any, Any] | None = None
    if isinstance(args, tuple):
        positional = list(args)
    else:
        positional = [args]
        if isinstance(args, Mapping):
            mapping = args
    size = len(text)
    index = 0
    for match in _PERCENT_SPEC.finditer(text):
        if match["type"] == "%":
            continue
        for part in ("width", "precision"):
            spec = match[part]
            if spec == "*":
                count = positional[index] if index < len(positional) else 0
                index += 1
                size += abs(count) if _is_int(count) else 0
            elif spec:
                size += spec_number(spec)
        if match["key"] is not None and mapping is not None:
            value = mapping.get(match["key"])
        else:
            value = positional[index] if index < len(positional) else None
            index += 1
        size += deep_size(value)
        if size > MAX_VALUE_SIZE:
            return size
    return size


_COMPARISONS: Mapping[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}


def compare(left: Any, ops: Iterable[tuple[str, Any]]) -> bool:
    """A chained comparison (``a == b``, ``x in list``) of values of bounded size."""
    check_time()
    check_deep(left, "comparing")
    result: Any = True
    for op, right in ops:
        check_deep(right, "comparing")
        result = _COMPARISONS[op](left, right)
        if not result:
            return result  # type: ignore[no-any-return]
        left = right
    return result  # type: ignore[no-any-return]


def concat(parts: tuple[Any, ...], autoescape: bool = False) -> str:
    """``a ~ b``: join the text of the parts, after measuring it (escaped inside an
    ``{% autoescape %}`` block, as Jinja's own join does)."""
    check_time()
    size = 0
    for part in parts:
        size += len(part) if isinstance(part, str) else deep_size(part)
        check_size(size, "'~'")
    result = markup_join(parts) if autoescape else "".join(map(str, parts))
    charge(len(result))
    return result


def output(value: Any) -> Any:
    """Every ``{{ ... }}`` passes here before it becomes text."""
    size = len(value) if isinstance(value, str) else deep_size(value)
    check_size(size, "printing a value")
    charge(size)
    return value


def dict_key(value: Any) -> Any:
    """A key of a ``{...}`` literal: hashing a tuple walks all of it."""
    if isinstance(value, tuple):
        check_deep(value, "a dictionary key")
    return value


# --- Methods called from templates ----------------------------------------------------

_TEXT = (str, bytes, bytearray)


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name)


def _size_of(value: Any) -> int:
    return value if _is_int(value) and value > 0 else 0


def method_size(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """An upper bound on the size of what calling the method ``obj`` would build."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, _TEXT):
        if name in ("ljust", "rjust", "center", "zfill"):
            return max(len(owner), _size_of(_arg(args, kwargs, 0, "width")))
        if name == "expandtabs":
            tabsize = _arg(args, kwargs, 0, "tabsize")
            tab = _size_of(8 if tabsize is None else tabsize)
            tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
            return len(owner) + tabs * tab
        if name == "replace":
            return replace_size(owner, *args, **kwargs)
        if name == "join":
            items = args[0] if args else ()
            if not isinstance(items, list | tuple):
                return 0  # joined below from a materialised list
            sizes = sum(len(item) if isinstance(item, _TEXT) else 0 for item in items)
            return sizes + max(len(items) - 1, 0) * len(owner)
        if name == "translate":
            table = args[0] if args else None
            if isinstance(table, Mapping):
                longest = max(
                    (len(v) for v in table.values() if isinstance(v, str | bytes)), default=1
                )
                return len(owner) * max(longest, 1)
        return len(owner)
    if isinstance(owner, int) and name == "to_bytes":
        return _size_of(_arg(args, kwargs, 0, "length"))
    if isinstance(owner, list | dict | set) and name in ("extend", "update", "union"):
        extra = sum(len(a) if hasattr(a, "__len__") else 0 for a in args)
        return len(owner) + extra + len(kwargs)
    return 0


def replace_size(text: Any, old: Any, new: Any, count: Any = -1) -> int:
    if not (isinstance(text, _TEXT) and isinstance(old, _TEXT) and isinstance(new, _TEXT)):
        return 0
    found = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if _is_int(count) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new) - len(old), 0)


def checked_call(func: Callable[..., Any], obj: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``obj`` through ``func`` (the sandbox's call) with its result bounded."""
    check_time()
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if (
        isinstance(owner, _TEXT)
        and name == "join"
        and args
        and not isinstance(args[0], list | tuple)
    ):
        items = list(args[0])
        check_size(len(items), "join()")
        args = (items, *args[1:])
    check_size(method_size(obj, args, kwargs), f"{name or 'the call'}()")
    result = func(obj, *args, **kwargs)
    grown = owner if isinstance(owner, list | dict | set) else result
    size = shallow_size(grown)
    check_size(size, f"{name or 'the call'}()")
    charge(shallow_size(result))
    return result


# --- Filters and tests -------------------------------------------------------------

FilterCheck = Callable[..., int]


def _text_len(value: Any) -> int:
    return len(value) if isinstance(value, str) else deep_size(value)


def _center(value: Any, width: Any = 80) -> int:
    return max(_text_len(value), _size_of(width))


def _indent(value: Any, width: Any = 4, first: bool = False, blank: bool = False) -> int:
    text_size = _text_len(value)
    lines = value.count("\n") + 1 if isinstance(value, str) else text_size
    step = len(width) if isinstance(width, str) else _size_of(width)
    return text_size + lines * step


def _wordwrap(
    value: Any,
    width: Any = 79,
    break_long_words: bool = True,
    wrapstring: Any = None,
    break_on_hyphens: bool = True,
) -> int:
    text_size = _text_len(value)
    joint = len(wrapstring) if isinstance(wrapstring, str) else 1
    return text_size + (text_size + 1) * joint


def _truncate(
    value: Any, length: Any = 255, killwords: bool = False, end: Any = "...", *_: Any
) -> int:
    return _text_len(value) + (len(end) if isinstance(end, str) else 0)


def _format(value: Any, *args: Any, **kwargs: Any) -> int:
    if not isinstance(value, str):
        return _text_len(value)
    return percent_format_size(value, kwargs or args)


def _join(value: Any, d: Any = "", attribute: Any = None) -> int:
    items = value if isinstance(value, list | tuple) else []
    return deep_size(items) + max(len(items) - 1, 0) * (len(d) if isinstance(d, str) else 0)


def _replace(value: Any, old: Any, new: Any, count: Any = None) -> int:
    text = value if isinstance(value, str) else ""
    return replace_size(text, str(old), str(new), -1 if count is None else count)


def _count(value: Any, size: Any, *_: Any, **__: Any) -> int:
    return _size_of(size)


def _deep(value: Any, *_: Any, **__: Any) -> int:
    return deep_size(value)


def _tojson(value: Any, indent: Any = None) -> int:
    size = deep_size(value)
    return size + size * _size_of(indent)


def _urlize(
    value: Any,
    trim_url_limit: Any = None,
    nofollow: bool = False,
    target: Any = None,
    rel: Any = None,
    *_: Any,
    **__: Any,
) -> int:
    text = value if isinstance(value, str) else ""
    extra = sum(len(x) for x in (target, rel) if isinstance(x, str)) + 64
    return 3 * len(text) + len(text.split()) * extra


#: Filters whose result can be much bigger than their input, or that compare, hash or
#: print nested values: the size they would build, estimated before they run.
FILTER_CHECKS: Mapping[str, FilterCheck] = {
    "center": _center,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "truncate": _truncate,
    "format": _format,
    "join": _join,
    "replace": _replace,
    "batch": _count,
    "slice": _count,
    "tojson": _tojson,
    "string": _deep,
    "pprint": _deep,
    "urlencode": _deep,
    "xmlattr": _deep,
    "urlize": _urlize,
    "sort": _deep,
    "unique": _deep,
    "dictsort": _deep,
    "groupby": _deep,
    "min": _deep,
    "max": _deep,
    "sum": _deep,
}

# Filters that iterate a lazy value before checking it.
_MATERIALISE = frozenset({"join", "sum", "sort", "unique", "min", "max", "groupby"})


def bounded_filter(name: str, func: Callable[..., Any], passes: int) -> Callable[..., Any]:
    """Wrap a filter (or test) so that it checks its size first and charges its result.

    ``passes`` is how many leading arguments Jinja passes itself (context, eval
    context or environment) before the value.
    """
    estimate = FILTER_CHECKS.get(name)

    @wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        check_time()
        if len(args) > passes:
            value = args[passes]
            if name in _MATERIALISE and not isinstance(value, list | tuple | str | Mapping):
                value = list(value)
                check_size(len(value), f"the '{name}' filter")
                args = (*args[:passes], value, *args[passes + 1 :])
            if name == "sum":
                _check_sum(args[0], value, *args[passes + 1 :], **kwargs)
            if estimate is not None:
                check_size(estimate(*args[passes:], **kwargs), f"the '{name}' filter")
        result = func(*args, **kwargs)
        size = shallow_size(result)
        check_size(size, f"the '{name}' filter")
        charge(size)
        return result

    return bounded


def _check_sum(environment: Any, values: Any, attribute: Any = None, start: Any = 0) -> None:
    """Adding lists copies them again at every step: ``sum`` adds numbers only."""
    getter = make_attrgetter(environment, attribute) if attribute is not None else None
    items = [getter(v) if getter else v for v in values] if isinstance(values, list | tuple) else []
    if not all(isinstance(item, int | float) for item in [*items, start]):
        raise TemplateLimitError("The 'sum' filter adds numbers only.")


def bounded_test(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Tests compare values (``in``, ``eq``, ``sameas``...): their arguments are measured."""

    @wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        check_time()
        for value in (*args, *kwargs.values()):
            check_deep(value, f"the '{name}' test")
        return func(*args, **kwargs)

    return bounded


def bounded_lipsum(func: Callable[..., str]) -> Callable[..., str]:
    @wraps(func)
    def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
        check_size(_size_of(n) * _size_of(max) * 12, "lipsum()")
        result = func(n, html, min, max)
        charge(len(result))
        return result

    return lipsum
