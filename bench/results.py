"""What a measurement produces: figures with their per-repetition samples and targets.

A ``Figure`` is one line of the table. ``value`` is the median of ``samples``
(one sample per repetition); percentiles inside a repetition are computed by
the measurement, and the figure then reports the median of the per-repetition
percentiles. A figure that could not be taken has ``value=None`` and a
``reason``. Everything here is plain data so ``docs/benchmarks.json`` can
be written and read back (``python -m bench --report-only``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b}
OPS[">="] = lambda a, b: a >= b


@dataclass(frozen=True)
class Target:
    op: str  # "<", "<=", ">", ">="
    value: float
    text: str  # as the issue states it, e.g. "≥ 100 runs/s (2-core machine)"

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return bool(OPS[self.op](value, self.value))


@dataclass
class Figure:
    key: str  # stable identifier, e.g. "throughput.sqlite-embedded.1"
    group: str  # measurement group (module) name
    label: str  # what is measured
    setup: str  # backend, workers, sizes
    unit: str
    value: float | None = None
    samples: list[float] = field(default_factory=list)
    target: Target | None = None
    note: str = ""
    reason: str = ""  # why it was not measured
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        return self.value is not None

    @property
    def met(self) -> bool | None:
        return self.target.met(self.value) if self.target else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["met"] = self.met
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        data = dict(data)
        data.pop("met", None)
        target = data.pop("target", None)
        return cls(target=Target(**target) if target else None, **data)


def figure(
    key: str,
    group: str,
    label: str,
    setup: str,
    unit: str,
    samples: Iterable[float | None],
    *,
    target: Target | None = None,
    note: str = "",
    extra: dict[str, Any] | None = None,
) -> Figure:
    """A figure from per-repetition samples (None samples are dropped); value = median."""
    kept = [float(s) for s in samples if s is not None and not math.isnan(s)]
    return Figure(
        key=key,
        group=group,
        label=label,
        setup=setup,
        unit=unit,
        value=statistics.median(kept) if kept else None,
        samples=kept,
        target=target,
        note=note,
        reason="" if kept else "no sample was taken",
        extra=extra or {},
    )


def not_measured(
    key: str, group: str, label: str, setup: str, unit: str, reason: str, target: Target | None
) -> Figure:
    return Figure(key, group, label, setup, unit, target=target, reason=reason)


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0–100), linear between closest ranks; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Group:
    """A measurement group as the report shows it."""

    name: str
    title: str
    method: str  # Markdown: how the figures are taken
    figures: list[Figure] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""  # the group failed: what happened
    load_average: list[float] | None = None  # 1/5/15-minute load when the group started

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "method": self.method,
            "figures": [f.to_json() for f in self.figures],
            "seconds": round(self.seconds, 1),
            "error": self.error,
            "load_average": self.load_average,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Group:
        return cls(
            name=data["name"],
            title=data["title"],
            method=data["method"],
            figures=[Figure.from_json(f) for f in data.get("figures", [])],
            seconds=data.get("seconds", 0.0),
            error=data.get("error", ""),
            load_average=data.get("load_average"),
        )
