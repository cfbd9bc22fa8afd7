"""One declarative mapping per node form: which field shows which key of the definition,
and how its value is converted each way.

A node form's ``KEYS`` lists, in the order the definition writes them, entries whose
``path`` is a location in the form's ``values()`` (``("data", "config", "url")``, or
``("trigger", "type")`` for the trigger's settings):

- ``Key(field, path, convert)``: the field shows the value at ``path``
  (``convert.show``); what is typed is read back there (``convert.read``; ``None``
  leaves the key out, and the schema says when it is needed).
- ``Fixed(path, value)``: a value the form always writes (``actionType``, an operator).
- ``Secret(field, ref, path, suffix)``: a credential input; the hidden ``ref`` field
  shows the name of the secret referenced at ``path``, and what is typed becomes that
  secret (the form's ``credential``).
- ``Built(path, build, rows=...)``: a value the form builds itself (the rows of a field
  list); ``build(form)`` writes it, and the form's ``initial`` shows it.

``when=when(field, *choices)`` writes an entry only while that choice field holds one
of ``choices`` (an operation, an authentication or trigger type; ``unless``: any other);
it is shown whatever the choice, so switching back restores it. The same entries say
which field a schema problem at their path belongs to (``error_fields``, ``error_rows``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.definition.limits import SECRET_REFERENCE_RE

Loc = tuple[str | int, ...]
Json = dict[str, Any]

_INT_RE = re.compile(r"^[+-]?\d{1,12}$")
_LIST_SPLIT_RE = re.compile(r"[\s,]+")


# --- conversions --------------------------------------------------------------------


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def number_text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    return str(value)


def parse_int(typed: str | None) -> int | str | None:
    """A whole number, None for nothing, or the text itself (the schema then says why)."""
    typed = (typed or "").strip()
    if not typed:
        return None
    return int(typed) if _INT_RE.fullmatch(typed) else typed


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _stripped(typed: str | None) -> str:
    return (typed or "").strip()


def _as_typed(typed: str | None) -> str:
    return typed or ""


def _joined(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else ""


def _words(typed: str | None) -> list[str] | None:
    return [word for word in _LIST_SPLIT_RE.split(typed or "") if word] or None


@dataclass(frozen=True)
class Convert:
    """How a definition value shows in a field, and how what was typed is read back
    (``read`` None: the field only shows, the key is written by another entry)."""

    show: Callable[[Any], Any]
    read: Callable[[Any], Any] | None


#: Text, trimmed when read back.
TEXT = Convert(text, _stripped)
#: Text kept as typed (bodies, summaries, templates: spaces may matter).
AS_TYPED = Convert(text, _as_typed)
#: A whole number, typed as text; nothing typed leaves the key out.
NUMBER_TEXT = Convert(number_text, parse_int)
#: Words separated by spaces or commas, as a list; none leaves the key out.
WORDS = Convert(_joined, _words)
#: Text left out when nothing is typed.
OPTIONAL_TEXT = Convert(text, lambda typed: _stripped(typed) or None)


def choice(default: str) -> Convert:
    """A choice, ``default`` when there is none."""
    return Convert(lambda value: text(value) or default, lambda chosen: chosen or default)


# --- entries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class When:
    """An entry is written while the choice ``field`` holds one of ``choices`` (with
    ``otherwise``: while it holds any other)."""

    field: str
    choices: frozenset[str]
    otherwise: bool = False

    def holds(self, form: Any) -> bool:
        field = form[self.field]
        return ((field.data or field.default) in self.choices) != self.otherwise


def when(field: str, *choices: str) -> When:
    return When(field, frozenset(choices))


def unless(field: str, *choices: str) -> When:
    return When(field, frozenset(choices), otherwise=True)


@dataclass(frozen=True)
class Key:
    field: str
    path: Loc
    convert: Convert = TEXT
    when: When | None = None
    #: What is shown when the definition has no such key.
    absent: Any = None


@dataclass(frozen=True)
class Fixed:
    path: Loc
    value: Any
    when: When | None = None
    #: The field a problem at this path is shown at, if any.
    field: str | None = None


@dataclass(frozen=True)
class Secret:
    field: str
    ref: str
    path: Loc
    suffix: str  # of the secret's generated name: <node id>_<suffix>
    when: When | None = None


@dataclass(frozen=True)
class Built:
    path: Loc
    build: Callable[[Any], Any]
    when: When | None = None
    #: The field list showing it as rows (a problem inside goes to its row).
    rows: str | None = None


Entry = Key | Fixed | Secret | Built


def _at(values: Mapping[str, Any], path: Loc, absent: Any) -> Any:
    found: Any = values
    for part in path:
        if not isinstance(found, Mapping) or part not in found:
            return absent
        found = found[part]
    return found


def fill(entries: Iterable[Entry], values: Mapping[str, Any]) -> Json:
    """The form's data for what the definition holds (``values()`` shape)."""
    data: Json = {}
    for entry in entries:
        if isinstance(entry, Key):
            data[entry.field] = entry.convert.show(_at(values, entry.path, entry.absent))
        elif isinstance(entry, Secret):
            data[entry.ref] = secret_name_of(_at(values, entry.path, None))
    return data


def read_back(form: Any, entries: Iterable[Entry]) -> Json:
    """What the form stands for in the definition (``values()`` shape), in entry order."""
    values: Json = {}
    for entry in entries:
        if entry.when is not None and not entry.when.holds(form):
            continue
        if isinstance(entry, Key):
            if entry.convert.read is None:
                continue
            value = entry.convert.read(form[entry.field].data)
        elif isinstance(entry, Fixed):
            value = entry.value
        elif isinstance(entry, Secret):
            value = form.credential(entry)
        else:
            value = entry.build(form)
        if value is not None:
            *parents, last = entry.path
            place: dict[Any, Any] = values
            for part in parents:
                place = place.setdefault(part, {})
            place[last] = value
    return values


def error_fields(entries: Iterable[Entry]) -> dict[Loc, str]:
    """The field each written path's problems are shown at."""
    found: dict[Loc, str] = {}
    for entry in entries:
        shown_at = entry.field if isinstance(entry, Key | Secret | Fixed) else None
        if isinstance(entry, Key) and entry.convert.read is None:
            shown_at = None  # shown only: another entry writes the key
        if shown_at:
            found[entry.path] = shown_at
    return found


def error_rows(entries: Iterable[Entry]) -> dict[Loc, str]:
    """The field list each path shown as rows belongs to."""
    return {entry.path: entry.rows for entry in entries if isinstance(entry, Built) and entry.rows}


# --- secret references -------------------------------------------------------------------


def secret_name_of(value: Any) -> str:
    """The name in a ``{{ secrets.<name> }}`` reference; '' for anything else."""
    match = SECRET_REFERENCE_RE.fullmatch(value) if isinstance(value, str) else None
    return match.group(1) if match else ""
