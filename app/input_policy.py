"""One input policy for every request: JSON bodies, form fields, query strings, paths.

What no input may carry, wherever it comes from:

* **NUL characters** (PostgreSQL refuses them in text and jsonb) and **lone
  surrogates** (``"\\udfff"`` in JSON: not Unicode, no database can store them);
* in JSON, **non-finite numbers** (``NaN``, ``Infinity``, and ``1e400``, which
  reads as infinity): JSON has none, PostgreSQL's jsonb refuses them;
* in JSON, nesting deeper than ``MAX_JSON_DEPTH``: deep values break every
  recursive reader after them (copies, validators, serialisers, templates).

The checks walk a value with an explicit stack, never by recursion, before any
other code copies or validates it; a body too deep for the parser itself is
refused at the field it came in. Bodies are bounded in bytes before they are
read (``MAX_CONTENT_LENGTH``, the API's own limit).

Where it applies: ``loads`` is the one JSON loader for request input (the API
body, JSON typed into a form field, an uploaded definition); the request hook
installed by ``init_app`` checks every path segment (refused as 404: no object
has such an id), query parameter and form field (422 at the parameter or field)
of every request, pages and API alike.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa
from flask import Flask, g, has_request_context, request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.definition.messages import format_loc as plain_loc
from app.errors import InvalidInput, NotFound, Problem

# Incident metadata and workflow definitions need a handful of levels; 32 leaves room
# for any real document and stays far below what recursive code can handle.
MAX_JSON_DEPTH = 32
# The highest page number a list is asked for (the API's own limit too).
MAX_PAGE = 1_000_000
# At most this many problems are reported for one value (the first ones found).
MAX_PROBLEMS = 10

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Strings and the characters that change the nesting or separate members, for locating
# a too-deep field in text the parser gave up on.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)


class JsonSyntaxError(ValueError):
    """The text is not JSON at all; ``message`` says where."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def text_problem(text: str) -> str | None:
    """What is wrong with a piece of text, or None when it may be stored."""
    if "\x00" in text:
        return "must not contain NUL characters (\\u0000)."
    if _LONE_SURROGATE.search(text):
        return "must not contain lone surrogates (like \\udfff): they are not valid Unicode."
    return None


def format_loc(parts: Iterable[str | int], prefix: str = "") -> str:
    """``("nodes", 2, "data")`` -> ``nodes[2].data``; with a prefix, ``query.status``."""
    return plain_loc([*([prefix] if prefix else []), *parts])


def _shown(key: str) -> str:
    # A key is shown in a location; one that carries the bad characters is shown escaped.
    return key if text_problem(key) is None else json.dumps(key)[1:-1]


def json_problems(
    value: Any, *, prefix: str = "", max_depth: int = MAX_JSON_DEPTH
) -> list[Problem]:
    """Every place (up to ``MAX_PROBLEMS``) where a parsed JSON value breaks the policy.

    Iterative: a value nested thousands of levels deep is walked without recursion,
    and nothing below ``max_depth`` is visited.
    """
    problems: list[Problem] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack and len(problems) < MAX_PROBLEMS:
        item, path = stack.pop()
        where = format_loc(path, prefix) or "body"
        if isinstance(item, dict | list):
            if len(path) >= max_depth:
                problems.append(
                    Problem(
                        format_loc(path[:1], prefix) or "body",
                        f"Nested more than {max_depth} levels deep; flatten the value.",
                    )
                )
                continue
            if isinstance(item, dict):
                children: list[tuple[Any, tuple[str | int, ...]]] = []
                for key, child in item.items():
                    problem = text_problem(key)
                    if problem is not None:
                        problems.append(
                            Problem(format_loc((*path, key), prefix), f"A key {problem}")
                        )
                    children.append((child, (*path, key)))
                stack.extend(reversed(children))
            else:
                stack.extend(reversed([(child, (*path, i)) for i, child in enumerate(item)]))
        elif isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                problems.append(Problem(where, f"The text {problem}"))
        elif isinstance(item, float) and not math.isfinite(item):
            problems.append(
                Problem(
                    where,
                    "Must be a finite number: JSON has no NaN or Infinity, and a number "
                    "as large as this one reads as infinity.",
                )
            )
    return problems


def _keep_non_finite(name: str) -> float:
    # NaN and Infinity are read so that the walk can refuse them at their field.
    return float(name)


def loads(raw: str | bytes, *, prefix: str = "", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse request JSON and apply the policy to it.

    Raises ``JsonSyntaxError`` for text that is not JSON, and ``InvalidInput``
    (422) with each problem at its location for JSON the policy refuses.
    """
    try:
        value = json.loads(raw, parse_constant=_keep_non_finite)
    except RecursionError:
        loc = _deep_field(raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass"))
        raise _refused(
            [
                Problem(
                    format_loc([loc] if loc else [], prefix) or "body",
                    f"Nested more than {max_depth} levels deep; flatten the value.",
                )
            ]
        ) from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        if isinstance(error, json.JSONDecodeError):
            raise JsonSyntaxError(
                f"{error.msg} (line {error.lineno}, column {error.colno})"
            ) from None
        raise JsonSyntaxError(str(error)) from None
    problems = json_problems(value, prefix=prefix, max_depth=max_depth)
    if problems:
        raise _refused(problems)
    return value


def _refused(problems: list[Problem]) -> InvalidInput:
    if len(problems) == 1:
        return InvalidInput(f"'{problems[0].loc}': {problems[0].message}", problems=problems)
    return InvalidInput(f"The input has {len(problems)} problems; see details.", problems=problems)


def _deep_field(raw: bytes) -> str | None:
    """The top-level member under which text nests past the parser's limit, if any."""
    depth = 0
    key: str | None = None
    expect_key = False
    for match in _JSON_TOKEN.finditer(raw):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
            expect_key = depth == 1 and token == b"{"
            if depth > MAX_JSON_DEPTH:
                return key
        elif token in (b"}", b"]"):
            depth -= 1
        elif token == b",":
            expect_key = depth == 1
        elif depth == 1 and expect_key:
            try:
                key = _shown(str(json.loads(token)))
            except ValueError:
                key = None
            expect_key = False
    return key


# --- the request hook -------------------------------------------------------------


def _pairs(values: Any) -> Iterator[tuple[str, str]]:
    for name, items in values.lists():
        for item in items:
            yield name, item


def _query_loc(name: str) -> str:
    return f"query.{name}" if request.blueprint == "api" else name


def check_request() -> None:
    """Refuse a request whose path, query string or form carries what no input may."""
    if request.routing_exception is not None:
        return  # no such URL: answered as a 404 anyway
    for value in (request.view_args or {}).values():
        if isinstance(value, str) and text_problem(value) is not None:
            raise NotFound("There is nothing at this address.")
    problems = [
        Problem(_query_loc(_shown(name)), f"The query parameter {problem}")
        for name, value in _pairs(request.args)
        for problem in [text_problem(name) or text_problem(value)]
        if problem is not None
    ]
    page = request.args.get("page", "").lstrip("0")
    if page.isascii() and page.isdigit() and (len(page) > 7 or int(page) > MAX_PAGE):
        # Lists read ``page`` themselves; past 64 bits their OFFSET breaks the database.
        problems.append(
            Problem(_query_loc("page"), f"'page' must be a number from 1 to {MAX_PAGE}.")
        )
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        fields = [
            (name, Problem(_shown(name), f"The field {problem}"))
            for name, value in _pairs(request.form)
            for problem in [text_problem(name) or text_problem(value)]
            if problem is not None
        ]
        if fields and request.blueprint != "api" and not problems:
            # A page's form shows each at its field (forms_support.TextPolicy); until
            # then nothing may be written or looked up with it (see _guard_writes).
            g.form_text_problems = [problem for _, problem in fields]
            g.unplaced_form_text = {name for name, _ in fields}
            return
        problems += [problem for _, problem in fields]
    if problems:
        raise _refused(problems[:MAX_PROBLEMS])


def deferred_form_problems() -> set[str]:
    """The names of this request's form fields with refused text not yet shown at a field.

    A page form removes the names it shows an error at (``forms_support.TextPolicy``).
    """
    if not has_request_context():
        return set()
    names: set[str] = g.get("unplaced_form_text", set())
    return names


def _refuse_if_deferred() -> None:
    problems: list[Problem] | None = g.get("form_text_problems") if has_request_context() else None
    if problems:
        g.form_text_problems = None  # once: the error page itself may read the database
        raise _refused(problems[:MAX_PROBLEMS])


def _guard_writes(session: Any, flush_context: Any, instances: Any) -> None:
    """A page request with refused text in its form changes nothing, even if its view
    forgot to check the form: the generic 422 page then, rather than a half-save."""
    if session.new or session.dirty or session.deleted:
        _refuse_if_deferred()


def _guard_statements(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    """No refused text reaches the database as a parameter (PostgreSQL answers an error)."""
    if not (has_request_context() and g.get("form_text_problems")):
        return
    rows = parameters if executemany else [parameters]
    for row in rows:
        values = row.values() if isinstance(row, dict) else row
        for value in values or ():
            if isinstance(value, str) and text_problem(value) is not None:
                _refuse_if_deferred()


def init_app(app: Flask) -> None:
    """Check every request first; refused input on pages meets the app-wide error page
    (``error_pages``), and the API's blueprint answers it as JSON."""
    app.before_request_funcs.setdefault(None, []).insert(0, check_request)
    if not sa.event.contains(Session, "before_flush", _guard_writes):  # once per process
        sa.event.listen(Session, "before_flush", _guard_writes)
        sa.event.listen(Engine, "before_cursor_execute", _guard_statements)
