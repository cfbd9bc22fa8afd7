"""What changed between two workflow definitions, for the version history.

Both sides are plain dicts and may be invalid drafts: anything that is not
where a definition keeps it is compared as a value, never raised on.

- Nodes and edges are matched by ``id`` (a duplicated id is matched by its
  occurrence: the second ``"a"`` with the second ``"a"``); an edge whose id
  changed is reported as removed and added.
- Changed fields are dotted paths in the same notation as validation errors
  (``data.config.url``, ``trigger.conditions[0].value``,
  ``data.config.headers["X.Y"]``); lists are compared position by position.
- A node's ``position`` is never a content change: a node whose position
  differs is listed in ``nodes_moved`` (as well as in ``nodes_changed`` when
  something else changed too).
- Top-level fields other than ``nodes`` and ``edges`` are compared too,
  except ``version`` (every version has a new one). In a broken draft, a
  ``nodes``/``edges`` that is not a list, or an item in it that is not an
  object, is reported as a field change (``nodes``, ``edges[3]``).
- Values are reported as stored. Definitions hold secret *references*
  (``{{ secrets.name }}``), never secrets; nothing is resolved.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.definition import format_loc

__all__ = [
    "ChangeKind",
    "DefinitionDiff",
    "EdgeChange",
    "FieldChange",
    "NodeChange",
    "NodeMove",
    "diff_definitions",
]

ChangeKind = Literal["added", "removed", "changed"]

#: Top-level keys that are not compared as fields.
_NOT_FIELDS = frozenset({"nodes", "edges", "version"})
#: Top-level fields in the order a reader expects them.
_FIELD_ORDER = ("id", "name", "description", "trigger", "settings", "nodes", "edges")

_Path = tuple[str | int, ...]


@dataclass(frozen=True)
class FieldChange:
    """One value that differs, at ``path``.

    ``kind`` says whether the value was added (``old`` is None), removed
    (``new`` is None) or changed; ``old``/``new`` are the stored JSON values.
    """

    path: str
    kind: ChangeKind
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class NodeChange:
    """A node added, removed or changed. ``name``/``type``/``action_type``
    describe the node as it is in the newer definition (the older when removed);
    ``fields`` lists what changed (empty for added and removed nodes)."""

    id: str
    name: str
    type: str
    action_type: str | None = None
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class EdgeChange:
    """An edge added, removed or changed, described as in the newer definition
    (the older when removed); ``fields`` lists what changed."""

    id: str
    source: str
    target: str
    source_handle: str | None = None
    fields: tuple[FieldChange, ...] = ()

    @property
    def label(self) -> str:
        """``source → target`` with the branch, e.g. ``check → notify (true)``."""
        branch = f" ({self.source_handle})" if self.source_handle else ""
        return f"{self.source} → {self.target}{branch}"


@dataclass(frozen=True)
class NodeMove:
    """A node whose ``position`` changed (``None`` where it had none)."""

    id: str
    name: str
    old: tuple[float, float] | None
    new: tuple[float, float] | None


@dataclass(frozen=True)
class DefinitionDiff:
    """The difference between two definitions; see ``diff_definitions``."""

    nodes_added: tuple[NodeChange, ...] = ()
    nodes_removed: tuple[NodeChange, ...] = ()
    nodes_changed: tuple[NodeChange, ...] = ()
    nodes_moved: tuple[NodeMove, ...] = ()
    edges_added: tuple[EdgeChange, ...] = ()
    edges_removed: tuple[EdgeChange, ...] = ()
    edges_changed: tuple[EdgeChange, ...] = ()
    #: Changes to the top-level fields: ``name``, ``description``, ``trigger.*``,
    #: ``settings.*`` (and any other key but ``nodes``, ``edges``, ``version``).
    fields: tuple[FieldChange, ...] = ()

    @property
    def is_empty(self) -> bool:
        """Nothing changed, not even a position."""
        return not self.has_content_changes and not self.nodes_moved

    @property
    def has_content_changes(self) -> bool:
        """Something other than node positions changed."""
        return any(
            (
                self.nodes_added,
                self.nodes_removed,
                self.nodes_changed,
                self.edges_added,
                self.edges_removed,
                self.edges_changed,
                self.fields,
            )
        )

    @property
    def changed_sections(self) -> tuple[str, ...]:
        """Top-level fields that changed (``name``, ``trigger``, ...), in reading order."""
        roots: list[str] = []
        for change in self.fields:
            root = _root(change.path)
            if root not in roots:
                roots.append(root)
        known = [root for root in _FIELD_ORDER if root in roots]
        return tuple(known + [root for root in roots if root not in _FIELD_ORDER])

    @property
    def summary(self) -> str:
        """One line, e.g. "2 nodes added, 1 changed, 1 edge removed; trigger changed"."""
        groups: list[str] = []
        for noun, counts in (
            (
                "node",
                (
                    (len(self.nodes_added), "added"),
                    (len(self.nodes_removed), "removed"),
                    (len(self.nodes_changed), "changed"),
                    (len(self.nodes_moved), "moved"),
                ),
            ),
            (
                "edge",
                (
                    (len(self.edges_added), "added"),
                    (len(self.edges_removed), "removed"),
                    (len(self.edges_changed), "changed"),
                ),
            ),
        ):
            parts = [(count, verb) for count, verb in counts if count]
            if parts:
                first_count, first_verb = parts[0]
                words = [f"{first_count} {noun}{'' if first_count == 1 else 's'} {first_verb}"]
                words.extend(f"{count} {verb}" for count, verb in parts[1:])
                groups.append(", ".join(words))
        sections = self.changed_sections
        if sections:
            names = list(sections)
            joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            groups.append(f"{joined} changed")
        return ", ".join(groups) if groups else "No changes"


def _root(path: str) -> str:
    for index, char in enumerate(path):
        if char in ".[":
            return path[:index]
    return path


def _kind_of(value: object) -> str:
    """JSON kind: booleans are not numbers, ints and floats are."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _same_scalar(old: object, new: object) -> bool:
    if _kind_of(old) != _kind_of(new):
        return False
    if isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new):
        return True
    try:
        return bool(old == new)
    except Exception:  # an odd object in a draft: compare what we can show
        return repr(old) == repr(new)


def _walk(old: object, new: object, path: _Path) -> Iterator[tuple[_Path, ChangeKind, Any, Any]]:
    """Every difference below ``path``, depth first, old keys first."""
    if old is new:
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in old:
            if key in new:
                yield from _walk(old[key], new[key], (*path, _key(key)))
            else:
                yield (*path, _key(key)), "removed", old[key], None
        for key in new:
            if key not in old:
                yield (*path, _key(key)), "added", None, new[key]
        return
    if isinstance(old, list | tuple) and isinstance(new, list | tuple):
        for index in range(max(len(old), len(new))):
            if index >= len(new):
                yield (*path, index), "removed", old[index], None
            elif index >= len(old):
                yield (*path, index), "added", None, new[index]
            else:
                yield from _walk(old[index], new[index], (*path, index))
        return
    if not _same_scalar(old, new):
        yield path, "changed", old, new


def _key(key: object) -> str:
    # A numeric key stays a key (`["1"]`), not a list index.
    return key if isinstance(key, str) else str(key)


def _fields(old: object, new: object, path: _Path = ()) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(path=format_loc(where), kind=kind, old=before, new=after)
        for where, kind, before, after in _walk(old, new, path)
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _keyed(items: object) -> dict[tuple[str, int], Mapping[str, Any]]:
    """Items of a nodes/edges list by (id, occurrence); non-objects are skipped."""
    result: dict[tuple[str, int], Mapping[str, Any]] = {}
    seen: dict[str, int] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        item_id = _text(item.get("id"))
        occurrence = seen.get(item_id, 0)
        seen[item_id] = occurrence + 1
        result[(item_id, occurrence)] = item
    return result


def _data(node: Mapping[str, Any]) -> Mapping[str, Any]:
    data = node.get("data")
    return data if isinstance(data, Mapping) else {}


def _node_change(node: Mapping[str, Any], fields: tuple[FieldChange, ...] = ()) -> NodeChange:
    data = _data(node)
    action_type = data.get("actionType")
    return NodeChange(
        id=_text(node.get("id")),
        name=_text(data.get("name")),
        type=_text(node.get("type")),
        action_type=action_type if isinstance(action_type, str) else None,
        fields=fields,
    )


def _edge_change(edge: Mapping[str, Any], fields: tuple[FieldChange, ...] = ()) -> EdgeChange:
    handle = edge.get("sourceHandle")
    return EdgeChange(
        id=_text(edge.get("id")),
        source=_text(edge.get("source")),
        target=_text(edge.get("target")),
        source_handle=handle if isinstance(handle, str) else None,
        fields=fields,
    )


def _point(value: object) -> tuple[float, float] | None:
    if not isinstance(value, Mapping):
        return None
    x, y = value.get("x"), value.get("y")
    if isinstance(x, bool) or isinstance(y, bool):
        return None
    if not isinstance(x, int | float) or not isinstance(y, int | float):
        return None
    return (float(x), float(y))


def _without(item: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != key}


def _compare(
    old_items: object, new_items: object
) -> tuple[
    list[Mapping[str, Any]],
    list[Mapping[str, Any]],
    list[tuple[Mapping[str, Any], Mapping[str, Any]]],
]:
    """(added, removed, kept as (old, new) pairs), in the newer order (removed: older)."""
    old_keyed, new_keyed = _keyed(old_items), _keyed(new_items)
    added = [item for key, item in new_keyed.items() if key not in old_keyed]
    removed = [item for key, item in old_keyed.items() if key not in new_keyed]
    kept = [(old_keyed[key], item) for key, item in new_keyed.items() if key in old_keyed]
    return added, removed, kept


def diff_definitions(old: Mapping[str, Any], new: Mapping[str, Any]) -> DefinitionDiff:
    """What changed from ``old`` to ``new`` (see the module docstring for the rules)."""
    old = old if isinstance(old, Mapping) else {}
    new = new if isinstance(new, Mapping) else {}

    added, removed, kept = _compare(old.get("nodes"), new.get("nodes"))
    nodes_changed: list[NodeChange] = []
    nodes_moved: list[NodeMove] = []
    for before, after in kept:
        fields = _fields(_without(before, "position"), _without(after, "position"))
        if fields:
            nodes_changed.append(_node_change(after, fields))
        old_position, new_position = before.get("position"), after.get("position")
        if _fields(old_position, new_position) or ("position" in before) != ("position" in after):
            nodes_moved.append(
                NodeMove(
                    id=_text(after.get("id")),
                    name=_text(_data(after).get("name")),
                    old=_point(old_position),
                    new=_point(new_position),
                )
            )

    edges_added, edges_removed, edges_kept = _compare(old.get("edges"), new.get("edges"))
    edges_changed = [
        _edge_change(after, fields)
        for before, after in edges_kept
        if (fields := _fields(before, after))
    ]

    top_old = {key: value for key, value in old.items() if key not in _NOT_FIELDS}
    top_new = {key: value for key, value in new.items() if key not in _NOT_FIELDS}
    malformed = _malformed(old, new, "nodes") + _malformed(old, new, "edges")
    return DefinitionDiff(
        nodes_added=tuple(_node_change(node) for node in added),
        nodes_removed=tuple(_node_change(node) for node in removed),
        nodes_changed=tuple(nodes_changed),
        nodes_moved=tuple(nodes_moved),
        edges_added=tuple(_edge_change(edge) for edge in edges_added),
        edges_removed=tuple(_edge_change(edge) for edge in edges_removed),
        edges_changed=tuple(edges_changed),
        fields=_sorted_fields(_fields(top_old, top_new) + malformed),
    )


def _malformed(old: Mapping[str, Any], new: Mapping[str, Any], key: str) -> tuple[FieldChange, ...]:
    """Changes the id matching cannot see: ``nodes``/``edges`` that are not lists,
    or list items that are not objects (compared by index)."""
    before, after = old.get(key), new.get(key)
    if not isinstance(before, list) or not isinstance(after, list):
        if key not in old and key not in new:
            return ()
        if not _fields(before, after) and (key in old) == (key in new):
            return ()
        kind: ChangeKind = "added" if key not in old else "removed" if key not in new else "changed"
        return (FieldChange(key, kind, before, after),)
    changes: list[FieldChange] = []
    for index in range(max(len(before), len(after))):
        item_before = before[index] if index < len(before) else None
        item_after = after[index] if index < len(after) else None
        junk_before = index < len(before) and not isinstance(item_before, Mapping)
        junk_after = index < len(after) and not isinstance(item_after, Mapping)
        if not (junk_before or junk_after):
            continue
        if index >= len(before):
            changes.append(FieldChange(f"{key}[{index}]", "added", None, item_after))
        elif index >= len(after):
            changes.append(FieldChange(f"{key}[{index}]", "removed", item_before, None))
        elif _fields(item_before, item_after):
            changes.append(FieldChange(f"{key}[{index}]", "changed", item_before, item_after))
    return tuple(changes)


def _sorted_fields(changes: Sequence[FieldChange]) -> tuple[FieldChange, ...]:
    """Top-level changes grouped in reading order (stable within a group)."""

    def rank(change: FieldChange) -> int:
        root = _root(change.path)
        return _FIELD_ORDER.index(root) if root in _FIELD_ORDER else len(_FIELD_ORDER)

    return tuple(sorted(changes, key=rank))
